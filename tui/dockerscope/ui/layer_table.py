"""The layer pane's table: one row per history entry, oldest first, the base image's layers
below a boundary line, and a container's writable layer on top."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from dockerscope.service import ChangeKind, ImageContext, LayerKind, LayerRow, LayerStack, WritableLayer
from dockerscope.ui.format import human_size, plain, relative_time

BASE_BOUNDARY_KEY = "base"
WRITABLE_KEY = "rw"


def changes_summary(writable: WritableLayer) -> str:
    return (
        f"{writable.count(ChangeKind.ADDED)} added, {writable.count(ChangeKind.CHANGED)} changed, "
        f"{writable.count(ChangeKind.DELETED)} deleted"
    )


class LayerTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Details", id="layers.details"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class Chosen(Message):
        """Enter on a row: a history entry (its row), or the writable layer (row None)."""

        def __init__(self, row: LayerRow | None) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._rows: dict[str, LayerRow] = {}
        self._has_writable = False

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self.add_column("#", key="number")
        self.add_column("Size", key="size")
        self.add_column("Created", key="created")
        self.add_column("Layer", key="layer")
        self.add_column("Shared", key="shared")
        self.add_column("Instruction", key="instruction")

    def show_stack(
        self,
        stack: LayerStack | None,
        context: ImageContext | None = None,
        writable: WritableLayer | None = None,
    ) -> None:
        # Columns are rebuilt too: their widths must fit the new rows, not the last image's.
        cursor = self.cursor_row
        self.clear(columns=True)
        self._add_columns()
        self._rows = {}
        self._has_writable = writable is not None
        if stack is not None:
            base = context.base if context else None
            for index, row in enumerate(stack.rows):
                if base and base.history_count is not None and index == base.history_count:
                    self._add_boundary(base.names)
                self._add_history_row(
                    row, context, is_base=bool(base and base.history_count and index < base.history_count)
                )
        if writable is not None:
            self.add_row(
                Text("RW", style="bold magenta"),
                Text(human_size(writable.size) if writable.size is not None else "?", style="bold magenta"),
                Text(""),
                Text("writable", style="bold magenta"),
                Text(""),
                Text(f"container layer: {changes_summary(writable)}", style="magenta"),
                key=WRITABLE_KEY,
            )
            self.move_cursor(row=self.row_count - 1, scroll=True)
        elif 0 < cursor < self.row_count:
            self.move_cursor(row=cursor)

    def _add_boundary(self, names: tuple[str, ...]) -> None:
        label = Text("── base image above this line: ", style="blue")
        label.append_text(plain(", ".join(names), style="bold blue", max_chars=200))
        label.append(" ──", style="blue")
        self.add_row(Text("──", style="blue"), Text(""), Text(""), Text(""), Text(""), label, key=BASE_BOUNDARY_KEY)

    def _add_history_row(self, row: LayerRow, context: ImageContext | None, is_base: bool) -> None:
        style = "dim" if row.kind is LayerKind.EMPTY else ""
        if row.kind is LayerKind.UNKNOWN or (row.kind is LayerKind.LAYER and not row.diff_id):
            layer = Text("?", style="yellow")
        elif row.diff_id:
            layer = Text(row.short_diff_id, style="cyan")
        else:
            layer = Text("—", style="dim")
        shared = Text("")
        if context is not None and row.chain_id:
            others = len(context.sharers.get(row.chain_id, ()))
            shared = Text(f"{others} other" if others else "only here", style="" if others else "dim")
        number = Text(str(row.number), style="blue" if is_base else style, justify="right")
        key = str(row.number)
        self._rows[key] = row
        self.add_row(
            number,
            Text(human_size(row.size), style=style, justify="right"),
            Text(relative_time(row.created), style=style),
            layer,
            shared,
            plain(row.instruction, style=style, max_chars=300),
            key=key,
        )

    def action_choose(self) -> None:
        if not self.row_count:
            return
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value or ""
        if key == WRITABLE_KEY:
            self.post_message(self.Chosen(None))
        elif key in self._rows:
            self.post_message(self.Chosen(self._rows[key]))
