"""The live filter above a list or tree."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input


class FilterInput(Input):
    """Typing filters live; Enter keeps the filter and returns to the list; Escape clears it.

    Focus moves back with `Screen.set_focus`, at once: keys typed or pasted right after Enter
    must reach the list, not this input."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "keep_filter", "Keep filter", id="filter.keep"),
        Binding("escape", "clear_filter", "Clear filter", id="filter.clear"),
    ]

    def __init__(
        self, *, returns_focus_to: str, placeholder: str = "filter tags and ids…", id: str | None = None
    ) -> None:
        super().__init__(placeholder=placeholder, id=id)
        self._returns_focus_to = returns_focus_to

    def open(self) -> None:
        """Show the field (disabled until then, so Escape reaches its screen) and focus it."""
        self.disabled = False
        self.display = True
        self.screen.set_focus(self)

    def action_keep_filter(self) -> None:
        if not self.value:
            self.display = False
        self.screen.set_focus(self.screen.query_one(self._returns_focus_to))

    def action_clear_filter(self) -> None:
        self.value = ""
        self.display = False
        self.screen.set_focus(self.screen.query_one(self._returns_focus_to))
