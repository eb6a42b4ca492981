"""`x` in the layer contents: write a file or directory, as of the layer on show, to disk.

The modal asks for the destination (the current directory and the path's name), asks again before
replacing what is there, then shows a progress bar while the files are written; `Esc` cancels and
the partial output is removed. The plan is worked out and the files written in a worker; the
reading thread only posts messages."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, ProgressBar, Static

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    DestinationExists,
    EntryType,
    ExtractError,
    ExtractPlan,
    ExtractProgress,
    FileNotReadable,
    ImageFiles,
    ImageSource,
    ReadCancelled,
    default_destination,
    extract_files,
    plan_extraction,
)
from dockerscope.ui.format import counted, human_size, plain
from dockerscope.ui.messages import ExtractFailed, ExtractFinished, ExtractPlanned, ExtractProgressed, Problem
from dockerscope.ui.read_progress import ProgressThrottle


@dataclass(frozen=True)
class ExtractRequest:
    """What `x` asks for: `path` as of layer `as_of` of an image (or a container's layers)."""

    source: ImageSource
    image_id: str
    container_id: str | None
    files: ImageFiles
    as_of: int
    path: str


class ExtractScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="extract.cancel")]

    def __init__(self, request: ExtractRequest) -> None:
        super().__init__()
        self._request = request
        self._plan: ExtractPlan | None = None
        self._cancel = threading.Event()
        self._writing = False
        # The destination the user was told exists: Enter on it again replaces it.
        self._replace_armed: str | None = None
        self._throttle = ProgressThrottle()
        self._shown_destination = ""

    def compose(self) -> ComposeResult:
        request = self._request
        with Vertical(id="extract"):
            title = Text.assemble(("Extract ", "bold"))
            title.append_text(plain(f"/{request.path}", style="bold", max_chars=200))
            title.append(f" as of layer {request.as_of + 1}", style="bold")
            yield Static(title, id="extract-title")
            yield Static(Text("working out what to write…", style="dim"), id="extract-what")
            yield Input(value=default_destination(request.path), placeholder="destination", id="extract-destination")
            yield Static(Text(""), id="extract-note")
            yield ProgressBar(id="extract-bar", show_eta=False)
            yield Static(Text("Enter extracts · Esc cancels", style="dim"), id="extract-keys")

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False
        self._make_plan()

    def on_unmount(self) -> None:
        self._cancel.set()

    @work(group="extract-plan", exclusive=True)
    async def _make_plan(self) -> None:
        request = self._request
        try:
            plan = await asyncio.to_thread(plan_extraction, request.files, request.as_of, request.path)
        except FileNotReadable as error:
            self.post_message(ExtractFailed(Problem("Nothing to extract", str(error))))
            return
        self.post_message(ExtractPlanned(plan))

    def on_extract_planned(self, message: ExtractPlanned) -> None:
        plan = self._plan = message.plan
        what = Text()
        if plan.image_path != plan.asked:
            what.append_text(plain(f"/{plan.image_path}", max_chars=200))
            what.append(" (symlinks followed) · ")
        what.append(f"{counted(plan.file_count, 'file')} · {human_size(plan.byte_count)}")
        if plan.is_directory:
            directories = sum(1 for entry in plan.entries if entry.entry.type is EntryType.DIR)
            what.append(f" · {directories} director{'y' if directories == 1 else 'ies'}")
        self.query_one("#extract-what", Static).update(what)

    @on(Input.Submitted)
    def _confirmed(self, event: Input.Submitted) -> None:
        destination = event.value.strip()
        if self._writing or self._plan is None or not destination:
            return
        destination = os.path.expanduser(destination)
        note = self.query_one("#extract-note", Static)
        if os.path.lexists(destination) and self._replace_armed != destination:
            self._replace_armed = destination
            where = os.path.abspath(destination)
            note.update(plain(f"{where} exists: Enter again replaces it", style="bold yellow", max_chars=300))
            return
        self._start(destination, replace=self._replace_armed == destination)

    def _start(self, destination: str, *, replace: bool) -> None:
        self._writing = True
        self._shown_destination = destination
        field = self.query_one(Input)
        field.disabled = True
        self.query_one(ProgressBar).display = True
        self.query_one("#extract-note", Static).update(Text("writing…"))
        self.query_one("#extract-keys", Static).update(Text("Esc cancels and removes what was written", style="dim"))
        self._write(destination, replace)

    @work(group="extract-write", exclusive=True)
    async def _write(self, destination: str, replace: bool) -> None:
        request, plan = self._request, self._plan
        assert plan is not None
        try:
            result = await extract_files(
                request.source,
                request.image_id,
                plan,
                destination,
                container_id=request.container_id,
                replace=replace,
                cancel=self._cancel,
                on_progress=self._report,
            )
        except ReadCancelled:
            self.post_message(ExtractFailed(None))
            return
        except DestinationExists as error:
            self.post_message(ExtractFailed(Problem("The destination exists", str(error))))
            return
        except (ExtractError, FileNotReadable) as error:
            self.post_message(ExtractFailed(Problem("Could not extract", str(error))))
            return
        except Exception as error:  # any failure is shown; a worker that raises would end the app
            self.post_message(ExtractFailed(Problem.of(error)))
            return
        self.post_message(ExtractFinished(result))

    def _report(self, progress: ExtractProgress) -> None:
        """Called in the reading thread: post now and then, never touch a widget."""
        if self._throttle.due():
            self.post_message(ExtractProgressed(progress))

    def on_extract_progressed(self, message: ExtractProgressed) -> None:
        progress = message.progress
        bar = self.query_one(ProgressBar)
        bar.update(total=max(progress.bytes_total, 1), progress=min(progress.bytes_done, progress.bytes_total))
        self.query_one("#extract-note", Static).update(
            Text(
                f"{progress.files_done} of {counted(progress.files_total, 'file')} · "
                f"{human_size(progress.bytes_done)} of {human_size(progress.bytes_total)}"
            )
        )

    def on_extract_finished(self, message: ExtractFinished) -> None:
        result, plan = message.result, self._plan
        assert plan is not None
        text = (
            f"Extracted /{plan.image_path} ({counted(result.files, 'file')}, {human_size(result.bytes)}) "
            f"to {self._shown_destination}"
        )
        if result.skipped:
            text += f"; {result.skipped} skipped (devices, fifos, sockets)"
        if result.missing:
            text += f"; {len(result.missing)} listed but not found in the layers"
        self.app.notify(sanitize(text, max_chars=600), title="Extracted", markup=False)
        self.dismiss()

    def on_extract_failed(self, message: ExtractFailed) -> None:
        problem = message.problem
        if problem is None:
            self.app.notify("Extraction cancelled: nothing was written.", markup=False)
        else:
            self.app.notify(
                sanitize(f"{problem.headline}: {problem.reason}"), title="Extract", severity="error", markup=False
            )
        self.dismiss()

    def action_cancel(self) -> None:
        if self._writing:
            self._cancel.set()
            self.query_one("#extract-note", Static).update(Text("cancelling…", style="yellow"))
            return
        self.dismiss()
