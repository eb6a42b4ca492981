"""The one-line status: daemon, versions, counts, last refresh and connection state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dockerscope.service import DockerServiceError, Snapshot
from dockerscope.ui.format import plain


class StatusBar(Static):
    def show_connecting(self, host: str) -> None:
        line = plain(host)
        line.append(" · connecting…", style="yellow")
        self.update(line)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        daemon = snapshot.daemon
        line = plain(daemon.host)
        line.append(" · ")
        line.append_text(plain(f"Docker {daemon.engine_version} · API {daemon.api_version}"))
        line.append(
            f" · {len(snapshot.images)} images · {snapshot.container_count} containers"
            f" ({snapshot.running_count} running)"
            f" · refreshed {snapshot.taken_at.astimezone():%H:%M:%S} · "
        )
        line.append("● connected", style="green")
        self.update(line)

    def show_problem(self, error: DockerServiceError) -> None:
        line = plain(error.host)
        line.append(" · ")
        line.append_text(plain(error.reason, style="red"))
        line.append(" · retrying…", style="yellow")
        self.update(line)

    def show_notice(self, notice: str) -> None:
        self.update(Text(notice, style="yellow"))
