"""The inspect pane: a whole `docker inspect` document as a lazily built tree.

The document comes from the daemon, so its size and shape are the daemon's to choose: nesting
deeper than `MAX_DEPTH` is not opened (Textual lays a tree out recursively), a branch shows at most
`json_labels.MAX_CHILDREN` children, and one press of `+` stops opening branches once it has added
`EXPAND_ALL_NODES` nodes. No walk over the tree recurses."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dockerscope.ui.clipboard import copy_text
from dockerscope.ui.format import plain
from dockerscope.ui.json_labels import children_of, is_branch, label_for, more_label, too_deep_label

# Real inspect documents nest some six levels; anything past this is shown as a closed branch.
MAX_DEPTH = 40
# Nodes one press of `+` adds before it stops (the last branch it opens may pass it by up to
# MAX_CHILDREN): a press on a huge document answers at once, the next press goes on.
EXPAND_ALL_NODES = 2_000


@dataclass
class JsonNode:
    """A value in the document under its key in the parent, `depth` levels below the document;
    `built` turns true once its children are in the tree."""

    value: Any
    key: str | None = None
    built: bool = False
    depth: int = 0


NodePath = tuple[str | None, ...]


class InspectTree(Tree[JsonNode]):
    """Children are added when a node is first expanded, so huge values never stall the UI."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Toggle node", show=False),
        Binding("space", "toggle_node", "Toggle node", show=False),
        Binding("plus", "expand_everything", "Expand all", id="inspect.expand_all"),
        Binding("minus", "collapse_everything", "Collapse all", id="inspect.collapse_all"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("y", "copy_value", "Copy the value (a branch as JSON)", id="inspect.copy", show=False),
        Binding("Y", "copy_path", "Copy the JSON path", id="inspect.copy_path", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("inspect", data=JsonNode(None, built=True), id=id)
        self.show_root = True
        self.guide_depth = 3

    def show_document(self, title: str, document: Mapping[str, Any] | None, keep_view: bool = False) -> None:
        """Replace the tree with `document`, top level expanded. With `keep_view` (a new version
        of the same object's document), the nodes that were open are opened again and the cursor
        and scroll position stay where they were."""
        expanded = {_path(node) for node in _walk(self.root) if node.is_expanded} if keep_view else set()
        cursor = _path(self.cursor_node) if keep_view and self.cursor_node is not None else None
        scroll = self.scroll_y
        self.clear()
        self.root.set_label(plain(title, style="bold"))
        if document is None:
            self.root.data = JsonNode(None, built=True)
            return
        self.root.data = JsonNode(document)
        self._build_children(self.root)
        self.root.expand()
        if keep_view:
            self._reopen(expanded)
            self.call_after_refresh(self._restore_position, cursor, scroll)

    def _reopen(self, expanded: set[NodePath]) -> None:
        """Open again the nodes at the paths in `expanded` (breadth first, so parents come first)."""
        pending = deque(self.root.children)
        while pending:
            node = pending.popleft()
            if node.allow_expand and _path(node) in expanded:
                self._build_children(node)
                node.expand()
                pending.extend(node.children)

    def _restore_position(self, cursor: NodePath | None, scroll: float) -> None:
        target = next((node for node in _walk(self.root) if _path(node) == cursor), None)
        if target is not None and target.line >= 0:
            self.move_cursor(target)
        self.scroll_to(y=scroll, animate=False)

    def _build_children(self, node: TreeNode[JsonNode]) -> None:
        data = node.data
        if data is None or data.built:
            return
        data.built = True
        depth = data.depth + 1
        children = children_of(data.value)
        for key, value in children:
            if is_branch(value) and depth >= MAX_DEPTH:
                node.add(too_deep_label(key, value), data=JsonNode(value, key, built=True, depth=depth))
            else:
                node.add(label_for(key, value), data=JsonNode(value, key, depth=depth), allow_expand=is_branch(value))
        hidden = len(data.value) - len(children) if is_branch(data.value) else 0
        if hidden:
            node.add(more_label(hidden), data=JsonNode(None, built=True, depth=depth))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[JsonNode]) -> None:
        self._build_children(event.node)

    def action_expand_everything(self) -> None:
        """Open closed branches breadth first until EXPAND_ALL_NODES nodes were added; a further
        press opens the next ones."""
        added = 0
        pending = deque([self.root])
        while pending:
            node = pending.popleft()
            if node.allow_expand and not node.is_expanded:
                if added >= EXPAND_ALL_NODES:
                    self.notify("Opened as much as one press may; + opens more.", markup=False)
                    return
                self._build_children(node)
                node.expand()
                added += len(node.children)
            pending.extend(child for child in node.children if child.allow_expand)

    def action_copy_value(self) -> None:
        node = self.cursor_node
        if node is None or node.data is None or (node.data.key is None and node is not self.root):
            return  # no node, or the "… more" line
        value = node.data.value
        if isinstance(value, str):
            copy_text(self, value, "value")
        else:
            copy_text(self, json.dumps(value, indent=2, ensure_ascii=False, default=str), "JSON")

    def action_copy_path(self) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None and (node.data.key is not None or node is self.root):
            copy_text(self, json_path(_path(node)), "JSON path")

    def action_collapse_everything(self) -> None:
        for node in [node for node in _walk(self.root) if node.is_expanded and node is not self.root]:
            node.collapse()
        self.root.expand()


def json_path(keys: NodePath) -> str:
    """`.Config.Env[2]`: object keys after a dot, or quoted in brackets when they are not plain
    names (`["com.example.label"]`); array indexes as their own brackets; the document itself `.`."""
    parts = []
    for key in keys:
        if key is None:
            continue
        if key.startswith("[") and key.endswith("]") and key[1:-1].isdigit():
            parts.append(key)
        elif key.isidentifier():
            parts.append("." + key)
        else:
            parts.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(parts) or "."


def _path(node: TreeNode[JsonNode]) -> NodePath:
    """The keys from the root down to the node: names the same place in a new version of a document."""
    keys: list[str | None] = []
    current: TreeNode[JsonNode] | None = node
    while current is not None and current.parent is not None:
        keys.append(current.data.key if current.data else None)
        current = current.parent
    return tuple(reversed(keys))


def _walk(node: TreeNode[JsonNode]) -> Iterator[TreeNode[JsonNode]]:
    """The node and every node below it that is in the tree (built), depth first, without recursion."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(reversed(current.children))
