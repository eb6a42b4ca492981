"""Typed messages workers post to the UI; widgets change only in their handlers.

Messages are dataclasses, as Textual's own are (`Message.__post_init__` does what its `__init__`
does). `repr=False` keeps Message's short repr: a generated one would write out a whole snapshot
or layer listing wherever Textual logs a message."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ComparedImage,
    ContainerDetail,
    ContentsUnavailable,
    DockerServiceError,
    ExtractPlan,
    ExtractProgress,
    ExtractResult,
    HostProbe,
    ImageContents,
    ImageContext,
    ImageDetail,
    ReadProgress,
    VersionsCompared,
    Watcher,
    WatchUpdate,
)
from dockerscope.ui.compare_files import ComparedFiles

# A daemon's error text can be any length; a notification shows this much of it.
REASON_CHARS = 300


@dataclass(frozen=True)
class Problem:
    """What went wrong, as two lines safe to show: the kind of trouble and the (sanitised) reason.

    Workers turn every exception into one of these, so an error type nobody expected (a bug, or
    a service promise broken by a strange answer) is shown instead of ending the app. Both lines
    are sanitised however a Problem is made."""

    headline: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "headline", sanitize(self.headline, max_chars=REASON_CHARS))
        object.__setattr__(self, "reason", sanitize(self.reason, max_chars=REASON_CHARS))

    @classmethod
    def of(cls, error: Exception) -> Problem:
        if isinstance(error, DockerServiceError):
            return cls(error.headline, error.reason)
        if isinstance(error, ContentsUnavailable):
            return cls("The layers cannot be read", str(error))
        return cls("Unexpected error", f"{type(error).__name__}: {error}")


@dataclass(repr=False)
class WatchUpdated(Message):
    update: WatchUpdate
    # Which watcher sent it: an update still queued when the app switched hosts is dropped.
    watcher: Watcher


@dataclass(repr=False)
class DetailReady(Message):
    detail: ImageDetail


@dataclass(repr=False)
class ContainerDetailReady(Message):
    detail: ContainerDetail


@dataclass(repr=False)
class ContextReady(Message):
    """Sharing and base image of `image_id`, worked out after its details."""

    image_id: str
    context: ImageContext


@dataclass(repr=False)
class DetailFailed(Message):
    object_id: str
    problem: Problem


@dataclass(repr=False)
class ContentsProgress(Message):
    """How far reading the layers has come (posted from the reading thread)."""

    progress: ReadProgress


@dataclass(repr=False)
class ContentsLoaded(Message):
    contents: ImageContents


@dataclass(repr=False)
class ContentsFailed(Message):
    problem: Problem


@dataclass(repr=False)
class HostProbed(Message):
    """What the probe of row `index` of the host list learned."""

    index: int
    probe: HostProbe


@dataclass(repr=False)
class ExtractPlanned(Message):
    """What `x` will write, worked out in a worker."""

    plan: ExtractPlan


@dataclass(repr=False)
class ExtractProgressed(Message):
    """How far writing an extraction has come (posted from the reading thread)."""

    progress: ExtractProgress


@dataclass(repr=False)
class ExtractFinished(Message):
    result: ExtractResult


@dataclass(repr=False)
class ExtractFailed(Message):
    """The extraction ended early: `problem` says why, None when it was cancelled."""

    problem: Problem | None


@dataclass(repr=False)
class CompareDetailsReady(Message):
    """The details of the two images a comparison shows (left: the marked one)."""

    left: ImageDetail
    right: ImageDetail


@dataclass(repr=False)
class CompareBaseFound(Message):
    """The names of the local image both compared images are built on (empty: none found)."""

    names: tuple[str, ...]


@dataclass(repr=False)
class CompareFilesReady(Message):
    """Both images' final filesystems and their differences."""

    left: ComparedImage
    right: ComparedImage
    compared: ComparedFiles


@dataclass(repr=False)
class CompareFailed(Message):
    """Reading the two images' details (the comparison then closes) or their files failed."""

    problem: Problem


@dataclass(repr=False)
class VersionsLoaded(Message):
    """Both versions of a file, compared."""

    result: VersionsCompared


@dataclass(repr=False)
class VersionsFailed(Message):
    problem: Problem
