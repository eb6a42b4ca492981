"""The one-line status: daemon, versions, counts, last refresh and connection state."""

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

    def show_snapshot(self, snapshot: Snapshot) -> None:
        daemon = snapshot.daemon
        line = Text.assemble(("● connected", "green"))
        line.append(" · ")
        line.append_text(plain(daemon.host))
        line.append_text(plain(f" · Docker {daemon.engine_version} (API {daemon.api_version})"))
        line.append(
            f" · {counted(len(snapshot.images), 'image')} · {counted(snapshot.container_count, 'container')}"
            f" ({snapshot.running_count} running) · refreshed {snapshot.taken_at.astimezone():%H:%M:%S}"
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
