"""Typed messages workers post to the UI; widgets change only in their handlers."""

from __future__ import annotations

from textual.message import Message

from dockerscope.service import ContainerDetail, DockerServiceError, ImageContext, ImageDetail, WatchUpdate
from dockerscope.service.layer_contents import ImageContents
from dockerscope.service.layer_files import ReadProgress


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
    def __init__(self, object_id: str, error: DockerServiceError) -> None:
        super().__init__()
        self.object_id = object_id
        self.error = error


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
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
