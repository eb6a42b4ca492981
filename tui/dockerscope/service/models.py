"""Immutable snapshots of what the daemon reported; the UI only ever reads these."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DaemonInfo:
    host: str
    engine_version: str
    api_version: str
    os_type: str


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
        return self.id.removeprefix("sha256:")[:12]

    @property
    def dangling(self) -> bool:
        return not self.tags

    @property
    def name(self) -> str:
        """What the image is called in a list: its first tag, else `<none>`."""
        return self.tags[0] if self.tags else "<none>"


@dataclass(frozen=True)
class Snapshot:
    """Everything one poll learned."""

    daemon: DaemonInfo
    images: tuple[ImageSummary, ...]
    container_count: int
    running_count: int
    taken_at: datetime


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

    @property
    def short_diff_id(self) -> str:
        return self.diff_id.removeprefix("sha256:")[:12] if self.diff_id else ""


@dataclass(frozen=True)
class LayerStack:
    rows: tuple[LayerRow, ...]
    layer_count: int
    total_size: int
    quality: MappingQuality
    note: str


@dataclass(frozen=True)
class ImageDetail:
    """The inspect document and layer stack of one image."""

    id: str
    inspect: Mapping[str, Any]
    layers: LayerStack
