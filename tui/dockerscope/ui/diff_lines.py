"""The lines of a unified diff, coloured: only the lines on screen are drawn, so a diff of tens of
thousands of lines scrolls as quickly as a short one."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from dockerscope.ui.format import plain

# A line of a file can be a MiB long: it is shown cut.
LINE_CHARS = 2000
TAB_SIZE = 8


def diff_text(line: str) -> Text:
    """One diff line, sanitised: headers bold, hunks cyan, additions green, removals red."""
    if line.startswith(("+++", "---")):
        style = "bold"
    elif line.startswith("@@"):
        style = "cyan"
    elif line.startswith("+"):
        style = "green"
    elif line.startswith("-"):
        style = "red"
    else:
        style = ""
    text = plain(line.expandtabs(TAB_SIZE), max_chars=LINE_CHARS)
    text.stylize(style)  # a span: Text.render leaves the base style to its caller
    return text


class DiffLines(ScrollView, can_focus=True):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Text] = []

    @property
    def lines(self) -> list[Text]:
        return list(self._lines)

    def show(self, lines: Sequence[str]) -> None:
        self._lines = [diff_text(line) for line in lines]
        width = max((text.cell_len for text in self._lines), default=0)
        self.virtual_size = Size(width, len(self._lines))
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        segments = list(self._lines[index].render(self.app.console, end=""))
        return Strip(segments).apply_style(self.rich_style).crop_extend(scroll_x, scroll_x + width, self.rich_style)
