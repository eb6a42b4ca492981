"""An `ImageSource` that serves a recording from memory: the answers a daemon gave, by API path
(`/images/json`, `/images/{id}/json`, `/containers/{id}/changes`…), and, when recorded, the listing
of every layer and of every container's writable layer. No daemon, no HTTP, no docker-py client.

The packaged demo (`demo.py`) is one; the tests replay others. What a recording lacks, the source
says it cannot do: no containers pane without container answers, no layer contents without
listings, and never an update stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dockerscope import clock
from dockerscope.service.answers import (
    build_image_detail,
    container_summaries,
    engine_name,
    image_summaries,
    listed_size,
    object_list,
    one_object,
    sorted_changes,
)
from dockerscope.service.errors import DockerServiceError, ObjectNotFound
from dockerscope.service.file_analysis import analyze_layers
from dockerscope.service.file_reading import SinkOpener
from dockerscope.service.image_context import ImageContexts
from dockerscope.service.layer_contents import (
    WRITABLE_LAYER,
    ContentsUnavailable,
    ImageContents,
    ImageLayers,
    SourceChoice,
    diff_ids,
)
from dockerscope.service.layer_files import LayerListing, ProgressCallback, ReadProgress, check_cancel, gc_paused
from dockerscope.service.models import (
    ContainerDetail,
    ContainerSummary,
    DaemonInfo,
    EventBatch,
    ImageContext,
    ImageDetail,
    ImageSummary,
    Snapshot,
    WritableLayer,
)
from dockerscope.service.sharing import chain_ids
from dockerscope.service.source import EventFeed, SourceCapabilities
from dockerscope.service.values import text

# Where recorded listings come from, as `ImageContents.sources` names it.
RECORDED = "recording"


@dataclass(frozen=True)
class Recording:
    """What a recorded source serves. `answers`: API path (no version prefix, no query) to the JSON
    the daemon answered; `/containers/json` is the list asked with sizes. `layers`: diff id to
    listing; `writable`: container id to its writable layer's listing."""

    answers: Mapping[str, Any]
    layers: Mapping[str, LayerListing] = field(default_factory=dict)
    writable: Mapping[str, LayerListing] = field(default_factory=dict)


class RecordedSource:
    """Serves a `Recording`. `containers`: show the recorded containers (their list, inspect and
    changes must then be recorded); `engine`: the engine's name as shown (default: the one the
    version answer names); `demo`: the status line marks everything as a demo."""

    def __init__(
        self,
        recording: Recording,
        host: str,
        *,
        containers: bool,
        engine: str | None = None,
        demo: bool = False,
    ) -> None:
        self._recording = recording
        self._host = host
        self._containers = containers
        self._engine = engine
        self._demo = demo
        self._contexts = ImageContexts(self.image_detail, self._chain, asyncio.to_thread)

    @property
    def host(self) -> str:
        return self._host

    @property
    def capabilities(self) -> SourceCapabilities:
        return SourceCapabilities(
            containers=self._containers,
            events=False,
            layer_contents=bool(self._recording.layers),
            fast_path=False,
        )

    def _answer(self, path: str) -> object:
        if path not in self._recording.answers:
            raise ObjectNotFound(self._host, f"not in the recording: {path}")
        return self._recording.answers[path]

    async def daemon_info(self) -> DaemonInfo:
        version = one_object(self._host, self._answer("/version"), "the version")
        return DaemonInfo(
            host=self._host,
            engine_version=text(version.get("Version")) or "?",
            api_version=text(version.get("ApiVersion")) or "?",
            engine=self._engine or engine_name(version),
            demo=self._demo,
        )

    def _listed_containers(self) -> list[Mapping[str, Any]]:
        if not self._containers:
            return []
        return object_list(self._host, self._answer("/containers/json"), "the container list")

    async def snapshot(self) -> Snapshot:
        containers = tuple(container_summaries(self._host, self._listed_containers()))
        users = Counter(container.image_id for container in containers)
        images = image_summaries(self._host, self._answer("/images/json"))
        return Snapshot(
            daemon=await self.daemon_info(),
            images=tuple(replace(image, containers=users[image.id]) for image in images),
            containers=containers,
            taken_at=clock.utc_now(),
        )

    async def refresh(self, batch: EventBatch) -> Snapshot:
        return await self.snapshot()

    def open_event_stream(self) -> EventFeed:
        raise DockerServiceError(self._host, "a recording has no update stream")

    async def image_detail(self, image: ImageSummary) -> ImageDetail:
        return await self.image_detail_of(image.id)

    async def image_detail_of(self, reference: str) -> ImageDetail:
        inspect = one_object(self._host, self._answer(f"/images/{reference}/json"), "the image inspect")
        history = object_list(self._host, self._answer(f"/images/{reference}/history"), "the image history")
        detail = build_image_detail(reference, inspect, history)
        self._contexts.remember(detail)
        return detail

    async def _chain(self, image_id: str) -> tuple[str, ...]:
        return chain_ids(diff_ids(one_object(self._host, self._answer(f"/images/{image_id}/json"), "an inspect")))

    async def image_context(self, image: ImageSummary, snapshot: Snapshot) -> ImageContext:
        return await self._contexts.context(image, snapshot)

    async def container_detail(self, container: ContainerSummary) -> ContainerDetail:
        if not self._containers:
            raise ObjectNotFound(self._host, "the recording has no containers")
        inspect = one_object(self._host, self._answer(f"/containers/{container.id}/json"), "the container inspect")
        listed = next((raw for raw in self._listed_containers() if raw.get("Id") == container.id), None)
        if listed is None:
            raise ObjectNotFound(self._host, f"no such container: {container.id}")
        changes = object_list(self._host, self._answer(f"/containers/{container.id}/changes"), "the changes")
        try:
            image: ImageDetail | None = await self.image_detail_of(container.image_id)
        except ObjectNotFound:
            image = None
        return ContainerDetail(
            id=container.id,
            inspect=inspect,
            image=image,
            writable=WritableLayer(
                size=listed_size(listed, "SizeRw"),
                root_fs_size=listed_size(listed, "SizeRootFs"),
                changes=sorted_changes(changes),
            ),
        )

    def _layers_of(self, image_id: str) -> list[tuple[str, LayerListing]]:
        if not self._recording.layers:
            raise ContentsUnavailable("the recording holds no layer contents")
        inspect = one_object(self._host, self._answer(f"/images/{image_id}/json"), "the image inspect")
        layers = diff_ids(inspect)
        missing = [diff_id for diff_id in layers if diff_id not in self._recording.layers]
        if missing:
            raise ContentsUnavailable(f"the recording holds no listing of layer {missing[0]}")
        return [(diff_id, self._recording.layers[diff_id]) for diff_id in layers]

    async def image_contents(
        self,
        image_id: str,
        *,
        choice: SourceChoice = SourceChoice.AUTO,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        if choice is not SourceChoice.AUTO:
            raise ContentsUnavailable(f"a recording has no {choice.value} source")
        layers = self._layers_of(image_id)
        return await asyncio.to_thread(_analyze, layers, cancel, on_progress)

    async def image_layers(
        self,
        image_id: str,
        *,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageLayers:
        return ImageLayers(tuple(self._layers_of(image_id)), (RECORDED,), 0.0)

    async def container_contents(
        self,
        container_id: str,
        *,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        if not self._containers:
            raise ObjectNotFound(self._host, "the recording has no containers")
        inspect = one_object(self._host, self._answer(f"/containers/{container_id}/json"), "the container inspect")
        writable = self._recording.writable.get(container_id)
        if writable is None:
            raise ContentsUnavailable("the recording holds no listing of the container's writable layer")
        layers = self._layers_of(text(inspect.get("Image")))
        return await asyncio.to_thread(_analyze, [*layers, (WRITABLE_LAYER, writable)], cancel, on_progress)

    async def read_layer_files(
        self,
        image_id: str,
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        *,
        container_id: str | None = None,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> str:
        raise ContentsUnavailable("a recording holds the layers' listings, not their files' bytes")

    def take_cache_problem(self) -> str | None:
        return None

    def close(self) -> None:
        """Nothing to release: the recording is in memory."""


def _analyze(
    layers: Sequence[tuple[str, LayerListing]],
    cancel: threading.Event | None,
    on_progress: ProgressCallback | None,
) -> ImageContents:
    """Replay recorded listings, reporting each layer as read. Blocking: run it in a thread."""
    started = time.perf_counter()
    for done in range(len(layers) + 1):
        check_cancel(cancel)
        if on_progress is not None:
            on_progress(ReadProgress(done, len(layers), 0, None))
    with gc_paused():
        files = analyze_layers(layers)
    check_cancel(cancel)
    return ImageContents(files, (RECORDED,), time.perf_counter() - started)
