"""The live filter above the image list."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class FilterInput(Input):
    """Typing filters live; Enter keeps the filter and returns to the list; Escape clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear_filter", "Clear filter", id="filter.clear")]

    class Done(Message):
        """The user left the filter (the list should take focus again)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="filter tags and ids…", id=id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.value:
            self.display = False
        self.post_message(self.Done())

    def action_clear_filter(self) -> None:
        self.value = ""
        self.display = False
        self.post_message(self.Done())
