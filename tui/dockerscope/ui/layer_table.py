"""The layer pane's table: one row per history entry, oldest first."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from dockerscope.service import LayerKind, LayerStack
from dockerscope.ui.format import human_size, plain, relative_time


class LayerTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self.add_column("#", key="number")
        self.add_column("Size", key="size")
        self.add_column("Created", key="created")
        self.add_column("Layer", key="layer")
        self.add_column("Instruction", key="instruction")

    def show_stack(self, stack: LayerStack | None) -> None:
        # Columns are rebuilt too: their widths must fit the new image's rows, not the last one's.
        self.clear(columns=True)
        self._add_columns()
        if stack is None:
            return
        for row in stack.rows:
            style = "dim" if row.kind is LayerKind.EMPTY else ""
            if row.kind is LayerKind.UNKNOWN:
                layer = Text("?", style="yellow")
            elif row.diff_id:
                layer = Text(row.short_diff_id, style="cyan")
            elif row.kind is LayerKind.LAYER:
                layer = Text("?", style="yellow")
            else:
                layer = Text("—", style="dim")
            self.add_row(
                Text(str(row.number), style=style, justify="right"),
                Text(human_size(row.size), style=style, justify="right"),
                Text(relative_time(row.created), style=style),
                layer,
                plain(row.instruction, style=style, max_chars=300),
                key=str(row.number),
            )
