"""Immutable snapshots of what the daemon reported; the UI only ever reads these."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockerscope.service.errors import DockerServiceError
from dockerscope.service.values import short_id


@dataclass(frozen=True)
class DaemonInfo:
    """What answers at `host`: the engine's name (`Docker`, `Podman`), its version and API version."""

    host: str
    engine_version: str
    api_version: str
    engine: str = "Docker"
    # A recorded snapshot shown as a demo (`dockerscope --demo`), not a live engine.
    demo: bool = False

    @property
    def label(self) -> str:
        """How the status line names it."""
        return engine_label(self.engine, self.engine_version, self.api_version)


def engine_label(engine: str, engine_version: str, api_version: str) -> str:
    """`Docker 20.10.24 (API 1.41)`; a source without versions (an archive) by its engine alone."""
    version = f" {engine_version}" if engine_version else ""
    api = f" (API {api_version})" if api_version else ""
    return f"{engine}{version}{api}"


@dataclass(frozen=True)
class ImageSummary:
    """One row of the image list, from a single `GET /images/json`."""

    id: str
    tags: tuple[str, ...]
    created: datetime | None
    size: int
    containers: int

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def dangling(self) -> bool:
        return not self.tags

    @property
    def name(self) -> str:
        """What the image is called in a list: its first tag, else `<none>`."""
        return self.tags[0] if self.tags else "<none>"


@dataclass(frozen=True)
class ContainerSummary:
    """One row of the container list, from a single `GET /containers/json?all=1`."""

    id: str
    name: str
    image: str
    image_id: str
    state: str
    status: str
    created: datetime | None
    exit_code: int | None

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class Snapshot:
    """Everything one poll learned."""

    daemon: DaemonInfo
    images: tuple[ImageSummary, ...]
    containers: tuple[ContainerSummary, ...]
    taken_at: datetime

    @property
    def container_count(self) -> int:
        return len(self.containers)

    @property
    def running_count(self) -> int:
        return sum(1 for container in self.containers if container.state == "running")


@dataclass(frozen=True)
class EventBatch:
    """What a burst of daemon events touched: refresh these and nothing else.

    `all_images` asks for the whole image list again: an event named an image by something other
    than its id (a pull names a reference), or touched too many images to inspect one by one.
    """

    image_ids: frozenset[str] = frozenset()
    container_ids: frozenset[str] = frozenset()
    all_images: bool = False

    def __bool__(self) -> bool:
        return bool(self.image_ids or self.container_ids or self.all_images)

    def __or__(self, other: EventBatch) -> EventBatch:
        return EventBatch(
            image_ids=self.image_ids | other.image_ids,
            container_ids=self.container_ids | other.container_ids,
            all_images=self.all_images or other.all_images,
        )


@dataclass(frozen=True)
class WatchUpdate:
    """One step of the watcher: a fresh snapshot or the error that prevented it.

    `live` tells whether the event stream is connected (changes show at once) or dockerscope is
    polling while it reconnects."""

    snapshot: Snapshot | None
    error: DockerServiceError | None
    live: bool


class LayerKind(enum.Enum):
    LAYER = "layer"
    EMPTY = "empty"
    UNKNOWN = "unknown"


class MappingQuality(enum.Enum):
    EXACT = "exact"
    INFERRED = "inferred"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class LayerRow:
    """One history entry, oldest first, with the RootFS layer it made (if any)."""

    number: int
    created: datetime | None
    created_by: str
    instruction: str
    size: int
    kind: LayerKind
    diff_id: str | None
    comment: str
    chain_id: str | None = None
    # Position of its layer in RootFS.Layers (oldest first); None when it made none, or unplaced.
    layer_index: int | None = None

    @property
    def short_diff_id(self) -> str:
        return short_id(self.diff_id) if self.diff_id else ""


@dataclass(frozen=True)
class LayerStack:
    rows: tuple[LayerRow, ...]
    layer_count: int
    total_size: int
    quality: MappingQuality
    note: str

    def instructions(self) -> dict[int, str]:
        """The instruction that made each placed layer, by layer index."""
        return {row.layer_index: row.instruction for row in self.rows if row.layer_index is not None}


@dataclass(frozen=True)
class ImageDetail:
    """The inspect document and layer stack of one image, and the chain ids of its layers."""

    id: str
    inspect: Mapping[str, Any]
    layers: LayerStack
    chain: tuple[str, ...] = ()


class ChangeKind(enum.Enum):
    """`docker diff` kinds, numbered as the API numbers them."""

    CHANGED = 0
    ADDED = 1
    DELETED = 2


@dataclass(frozen=True)
class Change:
    path: str
    kind: ChangeKind


@dataclass(frozen=True)
class WritableLayer:
    """A container's thin read-write layer on top of its image's layers."""

    size: int | None
    root_fs_size: int | None
    changes: tuple[Change, ...]

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for change in self.changes if change.kind is kind)


@dataclass(frozen=True)
class ContainerDetail:
    id: str
    inspect: Mapping[str, Any]
    image: ImageDetail | None
    writable: WritableLayer


@dataclass(frozen=True)
class BaseImage:
    """The local image whose whole layer chain is the bottom of another image's chain."""

    image_ids: tuple[str, ...]
    names: tuple[str, ...]
    layer_count: int
    history_count: int | None


@dataclass(frozen=True)
class ImageContext:
    """What an image shares with the other local images.

    `sharers` maps each chain id of the image to the other images that hold it (empty when none).
    `shared_size + unique_size + unknown_size` is the image's size; `unknown_size` is the weight of
    layers an ambiguous history mapping could not place on either side. `complete` is False when
    images vanished while the context was worked out.
    """

    sharers: Mapping[str, tuple[str, ...]]
    base: BaseImage | None
    shared_size: int
    unique_size: int
    complete: bool
    unknown_size: int = 0
