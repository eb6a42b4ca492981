"""`?`: every key binding, read from the widgets' own BINDINGS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "plus": "+",
    "minus": "-",
    "escape": "Esc",
    "enter": "Enter",
    "space": "Space",
    "equals_sign": "=",
    "tab": "Tab",
    "shift+tab": "Shift+Tab",
}


def key_label(keys: str) -> str:
    return " ".join(KEY_NAMES.get(key.strip(), key.strip()) for key in keys.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close help")]

    def __init__(self, sections: Iterable[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__()
        self._sections = list(sections)

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(Text("dockerscope keys", style="bold"), id="help-title")
            yield DataTable(id="help-table", cursor_type="none", show_header=False)
            yield Static(Text("Esc, q or ? closes this help", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Where", "Key", "Action")
        for where, bindings in self._sections:
            for binding in bindings:
                if isinstance(binding, Binding) and binding.description:
                    table.add_row(
                        Text(where, style="dim"),
                        Text(key_label(binding.key), style="bold"),
                        Text(binding.description),
                    )
