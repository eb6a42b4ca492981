"""A second `ImageSource`: daemon answers recorded by scripts/record-daemon.py, served from memory.

No daemon, no HTTP, no docker-py client: it shows the UI depends on the protocol alone, and how
small a complete source can be. It has images, their details and how they relate; no containers,
no update stream and no layer contents, so the UI's answers to a source that lacks them are
tested too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from dockerscope import clock
from dockerscope.service import (
    ContainerDetail,
    ContainerSummary,
    ContentsUnavailable,
    DaemonInfo,
    DockerServiceError,
    EventBatch,
    EventFeed,
    ImageContents,
    ImageContext,
    ImageDetail,
    ImageSummary,
    ObjectNotFound,
    ProgressCallback,
    Snapshot,
    SourceCapabilities,
    SourceChoice,
)
from dockerscope.service.answers import build_image_detail, image_summaries, object_list, one_object
from dockerscope.service.image_context import ImageContexts
from dockerscope.service.layer_contents import diff_ids
from dockerscope.service.sharing import chain_ids
from dockerscope.service.values import text

ENGINE = "Recording"


class RecordedSource:
    """Serves a recording: a mapping of API paths (`/images/json`, `/images/{id}/json`…) to answers."""

    def __init__(self, recording: Mapping[str, Any], host: str = "recording.json") -> None:
        self._recording = recording
        self._host = host
        self._contexts = ImageContexts(self.image_detail, self._chain, asyncio.to_thread)
        self.closed = False
        self.polls = 0
        self.stream_requests = 0

    @property
    def host(self) -> str:
        return self._host

    @property
    def capabilities(self) -> SourceCapabilities:
        return SourceCapabilities(containers=False, events=False, layer_contents=False, fast_path=False)

    def _answer(self, path: str) -> object:
        if path not in self._recording:
            raise ObjectNotFound(self._host, f"not in the recording: {path}")
        return self._recording[path]

    async def daemon_info(self) -> DaemonInfo:
        version = one_object(self._host, self._answer("/version"), "the version")
        return DaemonInfo(
            host=self._host,
            engine_version=text(version.get("Version")) or "?",
            api_version=text(version.get("ApiVersion")) or "?",
            engine=ENGINE,
        )

    async def snapshot(self) -> Snapshot:
        self.polls += 1
        return Snapshot(
            daemon=await self.daemon_info(),
            images=tuple(image_summaries(self._host, self._answer("/images/json"))),
            containers=(),
            taken_at=clock.utc_now(),
        )

    async def refresh(self, batch: EventBatch) -> Snapshot:
        return await self.snapshot()

    def open_event_stream(self) -> EventFeed:
        self.stream_requests += 1
        raise DockerServiceError(self._host, "a recording has no update stream")

    async def image_detail(self, image: ImageSummary) -> ImageDetail:
        return await self.image_detail_of(image.id)

    async def image_detail_of(self, reference: str) -> ImageDetail:
        inspect = one_object(self._host, self._answer(f"/images/{reference}/json"), "the image inspect")
        history = object_list(self._host, self._answer(f"/images/{reference}/history"), "the image history")
        return build_image_detail(reference, inspect, history)

    async def _chain(self, image_id: str) -> tuple[str, ...]:
        return chain_ids(diff_ids(one_object(self._host, self._answer(f"/images/{image_id}/json"), "an inspect")))

    async def image_context(self, image: ImageSummary, snapshot: Snapshot) -> ImageContext:
        return await self._contexts.context(image, snapshot)

    async def container_detail(self, container: ContainerSummary) -> ContainerDetail:
        raise ObjectNotFound(self._host, "a recording has no containers")

    async def image_contents(
        self,
        image_id: str,
        *,
        choice: SourceChoice = SourceChoice.AUTO,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        raise ContentsUnavailable("a recording holds no layer contents")

    async def container_contents(
        self,
        container_id: str,
        *,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        raise ContentsUnavailable("a recording holds no layer contents")

    def take_cache_problem(self) -> str | None:
        return None

    def close(self) -> None:
        self.closed = True
