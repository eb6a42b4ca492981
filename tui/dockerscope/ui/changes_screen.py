"""Enter on a container's writable layer: what `docker diff` reports, path by path."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from dockerscope.service import ChangeKind, WritableLayer
from dockerscope.ui.format import human_size, plain
from dockerscope.ui.layer_table import changes_summary

KIND_MARKS = {ChangeKind.ADDED: ("A", "green"), ChangeKind.CHANGED: ("C", "yellow"), ChangeKind.DELETED: ("D", "red")}


class ChangesScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, container_name: str, writable: WritableLayer) -> None:
        super().__init__()
        self._container_name = container_name
        self._writable = writable

    def compose(self) -> ComposeResult:
        writable = self._writable
        size = human_size(writable.size) if writable.size is not None else "unknown size"
        if writable.root_fs_size is not None:
            size += f" (whole filesystem {human_size(writable.root_fs_size)})"
        title = Text.assemble(("Writable layer of ", "bold"))
        title.append_text(plain(self._container_name, style="bold"))
        title.append(f" · {size} · {changes_summary(self._writable)}")
        with Vertical(id="changes"):
            yield Static(title)
            yield DataTable(id="changes-table", cursor_type="row", show_header=False)
            yield Static(Text("A added · C changed · D deleted · Esc closes", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Kind", "Path")
        for change in sorted(self._writable.changes, key=lambda change: change.path):
            mark, style = KIND_MARKS[change.kind]
            table.add_row(Text(mark, style=f"bold {style}"), plain(change.path, max_chars=1000))
        table.focus()
