"""Everything dockerscope knows about engines, images and layers. No Textual import may appear in
this package. The UI and `analyze` import from here only, and know a source only as `ImageSource`."""

from dockerscope.service.archive_source import ArchiveUnreadable, is_archive_path, open_archive
from dockerscope.service.ci_rules import RuleStatus, Thresholds, evaluate, parse_bytes, parse_ratio
from dockerscope.service.compare import (
    ChangeType,
    ComparedLayer,
    ConfigChange,
    FileDifference,
    LayerComparison,
    compare_config,
    compare_files,
    compare_layers,
)
from dockerscope.service.connection import Connection, SocketPlace, found_sockets, resolve_connection, socket_places
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
from dockerscope.service.hosts import HostCatalog, HostChoice, HostProbe
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
from dockerscope.service.source import EventFeed, ImageSource, SourceCapabilities
from dockerscope.service.values import short_id
from dockerscope.service.watcher import Watcher

__all__ = [
    "ArchiveUnreadable",
    "BaseImage",
    "Change",
    "ChangeKind",
    "ChangeType",
    "ComparedLayer",
    "ConfigChange",
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
    "EventFeed",
    "FileChange",
    "FileDifference",
    "FileStatus",
    "HostCatalog",
    "HostChoice",
    "HostProbe",
    "ImageContents",
    "ImageContext",
    "ImageDetail",
    "ImageFiles",
    "ImageSource",
    "ImageSummary",
    "LayerComparison",
    "LayerEntry",
    "LayerKind",
    "LayerRow",
    "LayerStack",
    "MappingQuality",
    "ObjectNotFound",
    "ProgressCallback",
    "ReadCancelled",
    "ReadProgress",
    "RuleStatus",
    "Snapshot",
    "SocketPlace",
    "SourceCapabilities",
    "SourceChoice",
    "Thresholds",
    "WatchUpdate",
    "Watcher",
    "WritableLayer",
    "chain_ids",
    "compare_config",
    "compare_files",
    "compare_layers",
    "evaluate",
    "filesystem_at",
    "found_sockets",
    "is_archive_path",
    "map_history",
    "open_archive",
    "parse_bytes",
    "parse_ratio",
    "resolve_connection",
    "short_id",
    "socket_places",
]
