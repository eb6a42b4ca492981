"""The one seam between where images come from and what shows them.

The UI and `dockerscope analyze` know a source only through `ImageSource`: they never import a
concrete one. `DockerService` (any Docker-compatible daemon) is one implementation; an image
archive, an OCI layout or a demo recording is another, as long as it gives the same models.

A source says what it can do in its `SourceCapabilities`, and the UI leaves out what it cannot:
no containers pane without containers, polls only without events, no layer contents view without
layer listings. Every method may raise `DockerServiceError` (the source cannot answer) or
`ObjectNotFound` (the object is gone); the layer readers may also raise `ReadCancelled` and
`ContentsUnavailable`. Every string a source hands over is hostile: the UI sanitises it.

How to add a source: implement `ImageSource`, give it to `dockerscope.ui.create_app` or to
`analyze`, and run the UI tests on it (tests/recorded_source.py is a small complete example).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from dockerscope.service.file_reading import SinkOpener
from dockerscope.service.layer_contents import ImageContents, ImageLayers, SourceChoice
from dockerscope.service.layer_files import ProgressCallback
from dockerscope.service.models import (
    ContainerDetail,
    ContainerSummary,
    DaemonInfo,
    EventBatch,
    ImageContext,
    ImageDetail,
    ImageSummary,
    Snapshot,
)


@dataclass(frozen=True)
class SourceCapabilities:
    """What a source can give beyond images, their inspect documents and their layer stacks."""

    # Containers, their details and their writable layers.
    containers: bool
    # An update stream (`open_event_stream`); without one the watcher polls.
    events: bool
    # What each layer adds, changes and removes (`image_contents`, `container_contents`).
    layer_contents: bool
    # Layers can be read from the engine's own layer directories (overlay2) instead of an export.
    fast_path: bool
    # The bytes of files in layers (`read_layer_files`): the file view, extraction, file diffs.
    file_contents: bool = False


class EventFeed(Protocol):
    """An open update stream: iterated in a thread of its own, it yields what each change touched
    (never an empty batch) until it ends; `close()` from any thread ends it, more than once too."""

    def __iter__(self) -> Iterator[EventBatch]: ...

    def close(self) -> None: ...


class ImageSource(Protocol):
    """Where images (and maybe containers) come from. Coroutines run on the UI's event loop, so
    a source does its blocking work in threads of its own."""

    @property
    def host(self) -> str:
        """Where the source is, as the user named it (a daemon address, a file path)."""
        ...

    @property
    def capabilities(self) -> SourceCapabilities: ...

    async def daemon_info(self) -> DaemonInfo:
        """The engine's name and version (and its API version, when it has one)."""
        ...

    async def snapshot(self) -> Snapshot:
        """Everything listed now: images and containers. Concurrent callers may share one answer."""
        ...

    async def refresh(self, batch: EventBatch) -> Snapshot:
        """The latest snapshot with what `batch` touched brought up to date."""
        ...

    def open_event_stream(self) -> EventFeed:
        """Blocking: called in a thread of its own, only when `capabilities.events`."""
        ...

    async def image_detail(self, image: ImageSummary) -> ImageDetail:
        """Inspect document, history and layer stack of a listed image."""
        ...

    async def image_detail_of(self, reference: str) -> ImageDetail:
        """The same for an image named by id or reference (`app:1`)."""
        ...

    async def image_context(self, image: ImageSummary, snapshot: Snapshot) -> ImageContext:
        """How the image relates to the others of the snapshot: shared layers, size split, base."""
        ...

    async def container_detail(self, container: ContainerSummary) -> ContainerDetail:
        """Inspect document, writable layer and image of a container (with `capabilities.containers`)."""
        ...

    async def image_contents(
        self,
        image_id: str,
        *,
        choice: SourceChoice = SourceChoice.AUTO,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        """What every layer adds, modifies and removes (with `capabilities.layer_contents`).
        Raises ReadCancelled once `cancel` is set; `on_progress` is called from the reading thread."""
        ...

    async def image_layers(
        self,
        image_id: str,
        *,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageLayers:
        """Every layer's listing, read as `image_contents` reads them but not analysed: what a
        comparison of final filesystems needs (with `capabilities.layer_contents`)."""
        ...

    async def container_contents(
        self,
        container_id: str,
        *,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        """The layers of a container's image with its writable layer on top."""
        ...

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
        """Hand the bytes of files in layers to sinks (with `capabilities.file_contents`).

        `wanted` maps a layer's index (oldest first, as in `ImageFiles.layers`; with
        `container_id`, the index above the image's layers is the container's writable layer) to
        paths in that layer's own listing (`LayerEntry.path` form, regular files). For each one
        found, `open_sink(layer, path, size)` is called in the reading thread and the sink gets
        the file's bytes; a path not found gets no sink (the caller says so). Nothing outside a
        layer is read: no symlink is followed out of a layer's directory. Returns where the bytes
        came from (`overlay2`, `export`, `archive`, ...). Raises ReadCancelled once `cancel` is set,
        ContentsUnavailable when the layers cannot be read here."""
        ...

    def take_cache_problem(self) -> str | None:
        """Why a layer cache is not used, once; None when there is nothing (more) to say."""
        ...

    def close(self) -> None:
        """Release threads and connections; the source is not used afterwards."""
        ...
