"""Everything dockerscope knows about Docker. No Textual import may appear in this package."""

from dockerscope.service.connection import Connection, resolve_connection
from dockerscope.service.docker_service import DockerService
from dockerscope.service.errors import (
    DaemonAnswerInvalid,
    DaemonError,
    DaemonPermissionDenied,
    DaemonUnreachable,
    DockerServiceError,
    ObjectNotFound,
)
from dockerscope.service.file_analysis import FileChange, FileStatus, ImageFiles, filesystem_at
from dockerscope.service.layer_contents import ContentsUnavailable, ImageContents, SourceChoice
from dockerscope.service.layer_files import EntryType, LayerEntry, ProgressCallback, ReadCancelled, ReadProgress
from dockerscope.service.layers import map_history
from dockerscope.service.models import (
    BaseImage,
    Change,
    ChangeKind,
    ContainerDetail,
    ContainerSummary,
    DaemonInfo,
    EventBatch,
    ImageContext,
    ImageDetail,
    ImageSummary,
    LayerKind,
    LayerRow,
    LayerStack,
    MappingQuality,
    Snapshot,
    WatchUpdate,
    WritableLayer,
)
from dockerscope.service.sharing import chain_ids
from dockerscope.service.watcher import Watcher

__all__ = [
    "BaseImage",
    "Change",
    "ChangeKind",
    "Connection",
    "ContainerDetail",
    "ContainerSummary",
    "ContentsUnavailable",
    "DaemonAnswerInvalid",
    "DaemonError",
    "DaemonInfo",
    "DaemonPermissionDenied",
    "DaemonUnreachable",
    "DockerService",
    "DockerServiceError",
    "EntryType",
    "EventBatch",
    "FileChange",
    "FileStatus",
    "ImageContents",
    "ImageContext",
    "ImageDetail",
    "ImageFiles",
    "ImageSummary",
    "LayerEntry",
    "LayerKind",
    "LayerRow",
    "LayerStack",
    "MappingQuality",
    "ObjectNotFound",
    "ProgressCallback",
    "ReadCancelled",
    "ReadProgress",
    "Snapshot",
    "SourceChoice",
    "WatchUpdate",
    "Watcher",
    "WritableLayer",
    "chain_ids",
    "filesystem_at",
    "map_history",
    "resolve_connection",
]
