"""Shown while no data has come from the daemon (unreachable, or answering with errors or
garbage); the app keeps retrying behind it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Static

from dockerscope.service import DockerServiceError
from dockerscope.ui.format import plain
from dockerscope.ui.key_footer import KeyFooter

if TYPE_CHECKING:
    from dockerscope.ui.app import DockerscopeApp

_SENTENCE_END = re.compile(r"(?<=[.?])\s+(?=[A-Z])")


class ConnectionScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "demo", "Demo (a recorded daemon)", id="connection.demo"),
    ]

    def __init__(self, error: DockerServiceError, retry_seconds: float) -> None:
        super().__init__()
        self._error = error
        self._retry_seconds = retry_seconds
        self._attempts = 1

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(self._message(), id="connection-problem")
        yield KeyFooter()

    def show_error(self, error: DockerServiceError) -> None:
        self._error = error
        self._attempts += 1
        # query, not query_one: a failure can arrive before the screen has composed its widgets.
        for problem in self.query("#connection-problem").results(Static):
            problem.update(self._message())

    def _message(self) -> Text:
        text = Text.assemble(plain(self._error.headline, style="bold red"), "\n\n")
        text.append("Host:    ")
        text.append_text(plain(self._error.host, style="bold"))
        if self._error.origin:
            text.append("\nFrom:    ")
            text.append_text(plain(self._error.origin))
        text.append("\nProblem: ")
        text.append_text(plain(self._error.reason))
        if self._error.searched:
            text.append("\n\nNo daemon was named, and no socket exists in any of these places:")
            for place in self._error.searched:
                text.append("\n  ")
                text.append_text(plain(place))
        text.append("\n")
        # One sentence a line: a hint can be wider than the screen.
        for sentence in _SENTENCE_END.split(self._error.hint):
            text.append("\n")
            text.append_text(plain(sentence, style="italic"))
        text.append(
            f"\n\nRetrying every {self._retry_seconds:g} s (attempt {self._attempts:d}); "
            "dockerscope opens as soon as the daemon answers. r retries now, q quits.",
            style="dim",
        )
        return text

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`d` shows only when the app has a demo to open."""
        return action != "demo" or self._app_with_demo() is not None

    def action_demo(self) -> None:
        app = self._app_with_demo()
        if app is not None:
            app.open_demo()

    def _app_with_demo(self) -> DockerscopeApp | None:
        from dockerscope.ui.app import DockerscopeApp

        return self.app if isinstance(self.app, DockerscopeApp) and self.app.demo is not None else None
