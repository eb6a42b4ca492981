"""The inspect pane: a whole `docker inspect` document as a lazily built tree."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dockerscope.ui.format import plain
from dockerscope.ui.json_labels import children_of, is_branch, label_for


@dataclass
class JsonNode:
    """A value in the document under its key in the parent; `built` turns true once its children
    are in the tree."""

    value: Any
    key: str | None = None
    built: bool = False


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
            self._reopen(self.root, expanded)
            self.call_after_refresh(self._restore_position, cursor, scroll)

    def _reopen(self, node: TreeNode[JsonNode], expanded: set[NodePath]) -> None:
        for child in node.children:
            if child.allow_expand and _path(child) in expanded:
                self._build_children(child)
                child.expand()
                self._reopen(child, expanded)

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
        for key, value in children_of(data.value):
            node.add(label_for(key, value), data=JsonNode(value, key), allow_expand=is_branch(value))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[JsonNode]) -> None:
        self._build_children(event.node)

    def _build_all(self, node: TreeNode[JsonNode]) -> None:
        self._build_children(node)
        for child in node.children:
            if child.allow_expand:
                self._build_all(child)

    def action_expand_everything(self) -> None:
        self._build_all(self.root)
        self.root.expand_all()

    def action_collapse_everything(self) -> None:
        self.root.collapse_all()
        self.root.expand()


def _path(node: TreeNode[JsonNode]) -> NodePath:
    """The keys from the root down to the node: names the same place in a new version of a document."""
    keys: list[str | None] = []
    current: TreeNode[JsonNode] | None = node
    while current is not None and current.parent is not None:
        keys.append(current.data.key if current.data else None)
        current = current.parent
    return tuple(reversed(keys))


def _walk(node: TreeNode[JsonNode]) -> Iterator[TreeNode[JsonNode]]:
    """The node and every node below it that is in the tree (built)."""
    yield node
    for child in node.children:
        yield from _walk(child)
