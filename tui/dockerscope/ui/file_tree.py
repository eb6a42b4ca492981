"""The tree of a layer's paths: a mark for how the layer touched each path, then size, mode and owner
in columns on the right. Directories fill in when opened, so a layer of 60,000 files shows at once."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dockerscope.service import EntryType, FileStatus, LayerEntry
from dockerscope.ui.clipboard import copy_text
from dockerscope.ui.file_view import FileNode, FileView, SortOrder
from dockerscope.ui.format import human_size, plain

MARKS = {
    FileStatus.ADDED: ("+", "green"),
    FileStatus.MODIFIED: ("~", "yellow"),
    FileStatus.REMOVED: ("-", "red"),
    FileStatus.UNCHANGED: (" ", ""),
}
TYPE_BITS = {
    EntryType.FILE: stat.S_IFREG,
    EntryType.HARDLINK: stat.S_IFREG,
    EntryType.DIR: stat.S_IFDIR,
    EntryType.SYMLINK: stat.S_IFLNK,
    EntryType.OTHER: stat.S_IFIFO,
}
# Size, mode and owner, right-aligned; the name gets the rest of the line.
DETAILS_WIDTH = 10 + 1 + 10 + 1 + 11
# Enter opens a file (the file view) or a directory (expands it); a click does the same.
OPEN = Binding("enter", "select_cursor", "Open file / directory", id="contents.open")
COPY_PATH = Binding("y", "copy_path", "Copy the path", id="contents.copy", show=False)
# With this few nodes or less, a filter opens every directory that leads to a match.
EXPAND_ALL_LIMIT = 400


def mode_and_owner(entry: LayerEntry, between: str = " ") -> str:
    """`-rw-r--r-- 0:0`: the mode bits as `ls -l` shows them and the owner's uid:gid."""
    return f"{stat.filemode(TYPE_BITS[entry.type] | entry.mode)}{between}{entry.uid}:{entry.gid}"


def details(node: FileNode, sizes_known: bool = True) -> str:
    entry = node.entry
    if entry is None or not sizes_known:
        size = human_size(node.size) if node.status is FileStatus.REMOVED or node.is_dir else ""
        return f"{size:>10} {'':>10} {'':>11}"
    mode, owner = mode_and_owner(entry).split(" ")
    return f"{human_size(node.size):>10} {mode} {owner[:11]:>11}"


class FileTree(Tree[FileNode]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        OPEN,
        COPY_PATH,
    ]

    @dataclass
    class FileChosen(Message):
        """Enter on a row that is not a directory."""

        node: FileNode

    def __init__(
        self,
        *,
        id: str | None = None,
        describe: Callable[[FileNode], str] | None = None,
        details_width: int = DETAILS_WIDTH,
    ) -> None:
        """`describe`: the text right of a row's name in place of size, mode and owner (a
        comparison shows what changed), `details_width` characters wide."""
        super().__init__("/", id=id)
        self._describe = describe
        self._details_width = details_width
        self.show_root = False
        self.guide_depth = 3
        self._view = FileView(layer=0, opaque=frozenset())
        self._order = SortOrder.NAME
        self._sizes_known = True

    def show_view(self, view: FileView, order: SortOrder, sizes_known: bool = True) -> None:
        """Show a new view; directories that were open stay open when they are still there."""
        opened = {node.data.path for node in self._open_nodes() if node.data is not None}
        cursor = self.cursor_node.data.path if self.cursor_node and self.cursor_node.data else None
        self._view, self._order, self._sizes_known = view, order, sizes_known
        self.clear()
        expand_all = view.matches <= EXPAND_ALL_LIMIT and len(view.children) <= EXPAND_ALL_LIMIT
        self._fill(self.root, "", opened, expand_all)
        target = next((node for node in self._all_nodes() if node.data and node.data.path == cursor), None)
        if target is not None:
            self.move_cursor(target)
        else:
            self.cursor_line = 0

    def _fill(self, parent: TreeNode[FileNode], path: str, opened: set[str], expand_all: bool) -> None:
        for child in self._view.children_of(path, self._order):
            has_children = child.is_dir and self._view.has_children(child.path)
            node = parent.add(plain(child.name), child, allow_expand=has_children)
            if has_children and (expand_all or child.path in opened):
                self._fill(node, child.path, opened, expand_all)
                node.expand()

    def _open_nodes(self) -> list[TreeNode[FileNode]]:
        return [node for node in self._all_nodes() if node.is_expanded]

    def _all_nodes(self) -> list[TreeNode[FileNode]]:
        found: list[TreeNode[FileNode]] = []
        stack = list(self.root.children)
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(node.children)
        return found

    def action_copy_path(self) -> None:
        data = self.cursor_node.data if self.cursor_node is not None else None
        if data is not None:
            copy_text(self, "/" + data.path, "path")

    def action_select_cursor(self) -> None:
        data = self.cursor_node.data if self.cursor_node is not None else None
        if data is not None and not data.is_dir:
            self.post_message(self.FileChosen(data))
        else:
            super().action_select_cursor()

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[FileNode]) -> None:
        node = event.node
        if node.data is not None and not node.children:
            self._fill(node, node.data.path, set(), expand_all=False)

    def render_label(self, node: TreeNode[FileNode], base_style: Style, style: Style) -> Text:
        data = node.data
        if data is None:
            return super().render_label(node, base_style, style)
        mark, color = MARKS[data.status]
        icon = (self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE) if node.allow_expand else "  "
        guides = data.path.count("/") * self.guide_depth  # top-level paths have no guide
        name_width = max(self.size.width - guides - 2 - 2 - self._details_width - 2, 8)
        name_style = color or ("bold" if data.is_dir else "")
        if data.status is FileStatus.REMOVED:
            name_style += " strike"
        name = data.name + ("/" if data.is_dir else "")
        if data.entry is not None and data.entry.link and data.entry.type is EntryType.SYMLINK:
            name += f" → {data.entry.link}"
        label = Text.assemble((icon, base_style), (f"{mark} ", f"bold {color}" if color else ""))
        label.append_text(plain(name, style=name_style, max_chars=name_width * 2))
        if data.opaque:
            label.append(" (opaque)", style="magenta")
        label.truncate(name_width + 4, overflow="ellipsis", pad=True)
        label.append(" ")
        style_of_details = "dim" if data.status is FileStatus.UNCHANGED else ""
        if self._describe is not None:
            described = plain(self._describe(data), style=style_of_details, max_chars=None)
            described.truncate(self._details_width, overflow="ellipsis")
            label.append_text(described)
        else:
            label.append(details(data, self._sizes_known), style=style_of_details)
        label.stylize(style)
        return label
