"""The one-line status: live or polling, daemon, versions, counts, last update; or, once the
daemon stopped answering, why, and how old the data on screen is."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from dockerscope.service import DockerServiceError, Snapshot
from dockerscope.ui.format import counted, plain


class StatusBar(Static):
    # When the snapshot on screen was taken; None until the first one.
    _shown_at: datetime | None = None

    def show_connecting(self, host: str) -> None:
        line = Text.assemble(("● connecting", "yellow"))
        line.append(" · ")
        line.append_text(plain(host))
        self.update(line)

    def show_snapshot(self, snapshot: Snapshot, live: bool, has_events: bool = True) -> None:
        """`live`: the event stream is up and changes show at once; else dockerscope polls, because
        the stream is down or (`has_events` False) the source has none."""
        self._shown_at = snapshot.taken_at
        daemon = snapshot.daemon
        if daemon.demo:
            self._show_demo(snapshot)
            return
        if live:
            line = Text.assemble(("● live", "green"))
        elif not has_events:
            line = Text.assemble(("● polling", "green"))
        else:
            line = Text.assemble(("● polling", "yellow"), (" (event stream down, reconnecting)", "yellow"))
        line.append(" · ")
        line.append_text(plain(daemon.host))
        line.append_text(plain(f" · {daemon.label}"))
        line.append(
            f" · {counted(len(snapshot.images), 'image')} · {counted(snapshot.container_count, 'container')}"
            f" ({snapshot.running_count} running) · updated {snapshot.taken_at.astimezone():%H:%M:%S}"
        )
        self.update(line)

    def _show_demo(self, snapshot: Snapshot) -> None:
        """A recorded snapshot: marked as a demo, with the engine it was recorded from."""
        daemon = snapshot.daemon
        line = Text.assemble((" DEMO ", "bold black on yellow"), " ")
        line.append_text(
            plain(f"recorded snapshot of {daemon.engine} {daemon.engine_version} (API {daemon.api_version})")
        )
        line.append(
            f" · {counted(len(snapshot.images), 'image')} · {counted(snapshot.container_count, 'container')}"
            f" ({snapshot.running_count} running) · nothing here is live"
        )
        self.update(line)

    def show_problem(self, error: DockerServiceError) -> None:
        """The daemon failed; the data of the last snapshot, if any, stays on screen and is stale."""
        line = Text.assemble(("● disconnected", "red"))
        line.append(" · ")
        line.append_text(plain(error.host))
        line.append(" · ")
        line.append_text(plain(error.reason))
        if self._shown_at is not None:
            line.append(f" · showing data from {self._shown_at.astimezone():%H:%M:%S} (stale)", style="yellow")
        line.append(" · retrying…", style="yellow")
        self.update(line)
