"""Typed messages workers post to the UI; widgets change only in their handlers."""

from __future__ import annotations

from textual.message import Message

from dockerscope.service import DockerServiceError, ImageDetail, Snapshot


class SnapshotReady(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class DaemonFailed(Message):
    def __init__(self, error: DockerServiceError) -> None:
        super().__init__()
        self.error = error


class DetailReady(Message):
    def __init__(self, detail: ImageDetail) -> None:
        super().__init__()
        self.detail = detail


class DetailFailed(Message):
    def __init__(self, image_id: str, error: DockerServiceError) -> None:
        super().__init__()
        self.image_id = image_id
        self.error = error
