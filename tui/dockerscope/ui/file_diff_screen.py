"""`Enter` on a modified file of a comparison: the two versions, read as each image's final
filesystem holds them, as a unified diff; binary files and files over a MiB get their sizes and
whether their bytes differ. Reading runs in a worker; Escape cancels."""

from __future__ import annotations

import threading
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ComparedImage,
    FileNotReadable,
    ImageSource,
    ReadCancelled,
    VersionsCompared,
    compare_versions,
)
from dockerscope.ui.diff_lines import DiffLines
from dockerscope.ui.format import human_size, plain
from dockerscope.ui.key_footer import KeyFooter
from dockerscope.ui.messages import Problem, VersionsFailed, VersionsLoaded


class FileDiffScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back / cancel", id="diff.close"),
    ]

    def __init__(
        self, source: ImageSource, path: str, sides: tuple[ComparedImage, ComparedImage], names: tuple[str, str]
    ) -> None:
        super().__init__()
        self._source = source
        self._path = path
        self._sides = sides
        self._names = names
        self._cancel = threading.Event()
        self._result: VersionsCompared | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="diff-title")
        yield Static(Text("reading both versions… Esc cancels", style="dim"), id="diff-status")
        yield DiffLines(id="diff-lines")
        yield KeyFooter()

    def on_mount(self) -> None:
        title = Text.assemble(("Diff of ", "bold"))
        title.append_text(plain("/" + self._path, style="bold", max_chars=300))
        title.append("\nA ", style="bold")
        title.append_text(plain(self._names[0], style="red", max_chars=120))
        title.append("  →  B ", style="bold")
        title.append_text(plain(self._names[1], style="green", max_chars=120))
        self.query_one("#diff-title", Static).update(title)
        self._read()

    def on_unmount(self) -> None:
        self._cancel.set()

    @work(group="versions", exclusive=True)
    async def _read(self) -> None:
        left, right = self._sides
        try:
            result = await compare_versions(self._source, self._path, left, right, ("a", "b"), cancel=self._cancel)
        except ReadCancelled:
            return
        except FileNotReadable as error:
            self.post_message(VersionsFailed(Problem("The file cannot be read", str(error))))
            return
        except Exception as error:  # any failure is shown; a worker that raises would end the app
            self.post_message(VersionsFailed(Problem.of(error)))
            return
        self.post_message(VersionsLoaded(result))

    def on_versions_loaded(self, message: VersionsLoaded) -> None:
        result = self._result = message.result
        sizes = f"A {human_size(result.before.size)} · B {human_size(result.after.size)}"
        status = Text(sizes + " · ")
        if result.same:
            status.append("the same bytes (only the metadata differs)", style="yellow")
        elif result.no_diff:
            status.append_text(plain(f"{result.no_diff}: no line diff · the bytes differ", style="yellow"))
        else:
            status.append(f"{len(result.diff):,} diff lines", style="bold")
        status.append(f" · read from {sanitize(result.before.source)}", style="dim")
        self.query_one("#diff-status", Static).update(status)
        lines = self.query_one(DiffLines)
        lines.show(result.diff)
        self.set_focus(lines)

    def on_versions_failed(self, message: VersionsFailed) -> None:
        problem = message.problem
        self.app.notify(
            sanitize(f"{problem.headline}: {problem.reason}"),
            title="Could not compare the file",
            severity="error",
            markup=False,
        )
        self.dismiss()

    def action_close(self) -> None:
        if self._result is None:
            self._cancel.set()
            self.app.notify("Reading the file was cancelled.", markup=False)
        self.dismiss()
