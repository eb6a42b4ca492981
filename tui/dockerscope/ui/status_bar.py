"""The one-line status: live or polling, daemon, versions, counts, last update."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dockerscope.service import DockerServiceError, Snapshot
from dockerscope.ui.format import counted, plain


class StatusBar(Static):
    def show_connecting(self, host: str) -> None:
        line = Text.assemble(("● connecting", "yellow"))
        line.append(" · ")
        line.append_text(plain(host))
        self.update(line)

    def show_snapshot(self, snapshot: Snapshot, live: bool) -> None:
        """`live`: the event stream is up and changes show at once; else dockerscope polls."""
        daemon = snapshot.daemon
        if live:
            line = Text.assemble(("● live", "green"))
        else:
            line = Text.assemble(("● polling", "yellow"), (" (event stream down, reconnecting)", "yellow"))
        line.append(" · ")
        line.append_text(plain(daemon.host))
        line.append_text(plain(f" · Docker {daemon.engine_version} (API {daemon.api_version})"))
        line.append(
            f" · {counted(len(snapshot.images), 'image')} · {counted(snapshot.container_count, 'container')}"
            f" ({snapshot.running_count} running) · updated {snapshot.taken_at.astimezone():%H:%M:%S}"
        )
        self.update(line)

    def show_problem(self, error: DockerServiceError) -> None:
        line = Text.assemble(("● disconnected", "red"))
        line.append(" · ")
        line.append_text(plain(error.host))
        line.append(" · ")
        line.append_text(plain(error.reason))
        line.append(" · retrying…", style="yellow")
        self.update(line)
