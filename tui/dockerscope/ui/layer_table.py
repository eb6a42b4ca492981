"""The layer pane's table: one row per history entry, oldest first, the base image's layers
below a boundary line, and a container's writable layer on top."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from dockerscope.service import ChangeKind, ImageContext, LayerKind, LayerRow, LayerStack, WritableLayer
from dockerscope.ui.clipboard import copy_text
from dockerscope.ui.format import human_size, plain, relative_time

BASE_BOUNDARY_KEY = "base"
WRITABLE_KEY = "rw"
ELIDED_KEY = "elided"
# A real image has a few dozen history entries; the image's author chooses how many, and each row
# costs the table time on the UI thread. Beyond this many, the oldest and newest halves are shown.
MAX_HISTORY_ROWS = 1000


def changes_summary(writable: WritableLayer) -> str:
    return (
        f"{writable.count(ChangeKind.ADDED)} added, {writable.count(ChangeKind.CHANGED)} changed, "
        f"{writable.count(ChangeKind.DELETED)} deleted"
    )


COLUMNS = (
    ("#", "number"),
    ("Size", "size"),
    ("Created", "created"),
    ("Layer", "layer"),
    ("Shared", "shared"),
    ("Instruction", "instruction"),
)


def _boundary_cells(names: tuple[str, ...]) -> tuple[Text, ...]:
    label = Text("── base image above this line: ", style="blue")
    label.append_text(plain(", ".join(names), style="bold blue", max_chars=200))
    label.append(" ──", style="blue")
    return (Text("──", style="blue"), Text(""), Text(""), Text(""), Text(""), label)


def _history_cells(row: LayerRow, context: ImageContext | None, is_base: bool) -> tuple[Text, ...]:
    style = "dim" if row.kind is LayerKind.EMPTY else ""
    if row.kind is LayerKind.UNKNOWN or (row.kind is LayerKind.LAYER and not row.diff_id):
        layer = Text("?", style="yellow")
    elif row.diff_id:
        layer = plain(row.short_diff_id, style="cyan")
    else:
        layer = Text("—", style="dim")
    shared = Text("")
    if context is not None and row.chain_id:
        others = len(context.sharers.get(row.chain_id, ()))
        shared = Text(f"{others} other" if others else "only here", style="" if others else "dim")
    return (
        Text(str(row.number), style="blue" if is_base else style, justify="right"),
        Text(human_size(row.size), style=style, justify="right"),
        Text(relative_time(row.created), style=style),
        layer,
        shared,
        plain(row.instruction, style=style, max_chars=300),
    )


def _elided_cells(hidden: int) -> tuple[Text, ...]:
    label = Text(f"… {hidden:,} more history entries not shown …", style="yellow")
    return (Text("…", style="yellow"), Text(""), Text(""), Text(""), Text(""), label)


def _writable_cells(writable: WritableLayer) -> tuple[Text, ...]:
    return (
        Text("RW", style="bold magenta"),
        Text(human_size(writable.size) if writable.size is not None else "?", style="bold magenta"),
        Text(""),
        Text("writable", style="bold magenta"),
        Text(""),
        Text(f"container layer: {changes_summary(writable)}", style="magenta"),
    )


class LayerTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Contents", id="layers.contents"),
        Binding("i", "choose(True)", "Layer details", id="layers.details"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("y", "copy", "Copy the layer's diff id", id="layers.copy", show=False),
    ]

    @dataclass(repr=False)
    class Chosen(Message):
        """Enter (contents) or i (`details`) on a row: a history entry (its row), or the writable
        layer (row None)."""

        row: LayerRow | None
        details: bool = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._rows: dict[str, LayerRow] = {}

    def on_mount(self) -> None:
        self._add_columns([])

    def _add_columns(self, rows: list[tuple[str, tuple[Text, ...]]]) -> None:
        """Columns sized to their content. Widths are set explicitly: the table's own automatic
        widths were seen stuck at the header's width when the table is rebuilt twice in a row
        (details, then sharing a moment later)."""
        for position, (label, key) in enumerate(COLUMNS):
            width = max([len(label), *(cells[position].cell_len for _, cells in rows)])
            self.add_column(label, key=key, width=width)

    def show_stack(
        self,
        stack: LayerStack | None,
        context: ImageContext | None = None,
        writable: WritableLayer | None = None,
        keep_cursor: bool = False,
    ) -> None:
        """Show an image's layers (and a container's writable layer on top). `keep_cursor`: the
        same object again, so the cursor stays on its row and the view does not move; otherwise
        the cursor starts on the writable layer, if any."""
        rows: list[tuple[str, tuple[Text, ...]]] = []
        self._rows = {}
        if stack is not None:
            base = context.base if context else None
            base_entries = base.history_count if base and base.history_count else 0
            hidden = max(len(stack.rows) - MAX_HISTORY_ROWS, 0)
            newest_from = len(stack.rows) - MAX_HISTORY_ROWS // 2
            for index, row in enumerate(stack.rows):
                if hidden and MAX_HISTORY_ROWS // 2 <= index < newest_from:
                    if index == MAX_HISTORY_ROWS // 2:
                        rows.append((ELIDED_KEY, _elided_cells(hidden)))
                    continue
                if base is not None and base_entries and index == base_entries:
                    rows.append((BASE_BOUNDARY_KEY, _boundary_cells(base.names)))
                self._rows[str(row.number)] = row
                rows.append((str(row.number), _history_cells(row, context, is_base=index < base_entries)))
        if writable is not None:
            rows.append((WRITABLE_KEY, _writable_cells(writable)))
        cursor, scroll = self.cursor_row, self.scroll_y
        cursor_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value if self.row_count else None
        self.clear(columns=True)
        self._add_columns(rows)
        for key, cells in rows:
            self.add_row(*cells, key=key)
        keys = [key for key, _ in rows]
        if keep_cursor and cursor_key in keys:
            self.move_cursor(row=keys.index(cursor_key), scroll=False)
            self.call_after_refresh(self.scroll_to, y=scroll, animate=False)
        elif writable is not None:
            self.move_cursor(row=self.row_count - 1, scroll=True)
        elif 0 < cursor < self.row_count:
            self.move_cursor(row=cursor)

    def action_copy(self) -> None:
        if not self.row_count:
            return
        row = self._rows.get(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value or "")
        if row is not None and row.diff_id:
            copy_text(self, row.diff_id, "diff id")
        else:
            self.notify("This row has no layer of its own to copy the diff id of.", markup=False)

    def action_choose(self, details: bool = False) -> None:
        if not self.row_count:
            return
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value or ""
        if key == WRITABLE_KEY:
            self.post_message(self.Chosen(None, details))
        elif key in self._rows:
            self.post_message(self.Chosen(self._rows[key], details))
