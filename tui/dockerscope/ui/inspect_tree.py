"""The inspect pane: a whole `docker inspect` document as a lazily built tree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dockerscope.ui.format import plain
from dockerscope.ui.json_labels import children_of, is_branch, label_for


@dataclass
class JsonNode:
    """A value in the document; `built` turns true once its children are in the tree."""

    value: Any
    built: bool = False


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

    def show_document(self, title: str, document: Mapping[str, Any] | None) -> None:
        """Replace the tree with `document`, top level expanded."""
        self.clear()
        self.root.set_label(plain(title, style="bold"))
        if document is None:
            self.root.data = JsonNode(None, built=True)
            return
        self.root.data = JsonNode(document)
        self._build_children(self.root)
        self.root.expand()

    def _build_children(self, node: TreeNode[JsonNode]) -> None:
        data = node.data
        if data is None or data.built:
            return
        data.built = True
        for key, value in children_of(data.value):
            node.add(label_for(key, value), data=JsonNode(value), allow_expand=is_branch(value))

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
