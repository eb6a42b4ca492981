"""A second `ImageSource` for the tests: daemon answers recorded by scripts/record-daemon.py, served
from memory by the package's `RecordedSource` (which also serves the demo).

No daemon, no HTTP, no docker-py client: it shows the UI depends on the protocol alone. It has
images, their details and how they relate; no containers, no update stream and no layer contents,
so the UI's answers to a source that lacks them are tested too. It counts what the app asks of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockerscope.service import EventFeed, Snapshot
from dockerscope.service.recorded_source import RecordedSource as PackagedRecordedSource
from dockerscope.service.recorded_source import Recording

ENGINE = "Recording"


class RecordedSource(PackagedRecordedSource):
    """Serves a recording: a mapping of API paths (`/images/json`, `/images/{id}/json`…) to answers."""

    def __init__(self, recording: Mapping[str, Any], host: str = "recording.json") -> None:
        super().__init__(Recording(recording), host, containers=False, engine=ENGINE)
        self.closed = False
        self.polls = 0
        self.stream_requests = 0

    async def snapshot(self) -> Snapshot:
        self.polls += 1
        return await super().snapshot()

    def open_event_stream(self) -> EventFeed:
        self.stream_requests += 1
        return super().open_event_stream()

    def close(self) -> None:
        self.closed = True
