"""Typed messages workers post to the UI; widgets change only in their handlers."""

from __future__ import annotations

from textual.message import Message

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ContainerDetail,
    ContentsUnavailable,
    DockerServiceError,
    ImageContents,
    ImageContext,
    ImageDetail,
    ReadProgress,
    WatchUpdate,
)

# A daemon's error text can be any length; a notification shows this much of it.
REASON_CHARS = 300


class Problem:
    """What went wrong, as two lines safe to show: the kind of trouble and the (sanitised) reason.

    Workers turn every exception into one of these, so an error type nobody expected (a bug, or
    a service promise broken by a strange answer) is shown instead of ending the app."""

    def __init__(self, headline: str, reason: str) -> None:
        self.headline = sanitize(headline, max_chars=REASON_CHARS)
        self.reason = sanitize(reason, max_chars=REASON_CHARS)

    @classmethod
    def of(cls, error: Exception) -> Problem:
        if isinstance(error, DockerServiceError):
            return cls(error.headline, error.reason)
        if isinstance(error, ContentsUnavailable):
            return cls("The layers cannot be read", str(error))
        return cls("Unexpected error", f"{type(error).__name__}: {error}")


class WatchUpdated(Message):
    def __init__(self, update: WatchUpdate) -> None:
        super().__init__()
        self.update = update


class DetailReady(Message):
    def __init__(self, detail: ImageDetail) -> None:
        super().__init__()
        self.detail = detail


class ContainerDetailReady(Message):
    def __init__(self, detail: ContainerDetail) -> None:
        super().__init__()
        self.detail = detail


class ContextReady(Message):
    """Sharing and base image of `image_id`, worked out after its details."""

    def __init__(self, image_id: str, context: ImageContext) -> None:
        super().__init__()
        self.image_id = image_id
        self.context = context


class DetailFailed(Message):
    def __init__(self, object_id: str, problem: Problem) -> None:
        super().__init__()
        self.object_id = object_id
        self.problem = problem


class ContentsProgress(Message):
    """How far reading the layers has come (posted from the reading thread)."""

    def __init__(self, progress: ReadProgress) -> None:
        super().__init__()
        self.progress = progress


class ContentsLoaded(Message):
    def __init__(self, contents: ImageContents) -> None:
        super().__init__()
        self.contents = contents


class ContentsFailed(Message):
    def __init__(self, problem: Problem) -> None:
        super().__init__()
        self.problem = problem
