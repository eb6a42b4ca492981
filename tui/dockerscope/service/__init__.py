"""Everything dockerscope knows about Docker. No Textual import may appear in this package."""

from dockerscope.service.connection import Connection, resolve_connection
from dockerscope.service.docker_service import DockerService
from dockerscope.service.errors import (
    DaemonPermissionDenied,
    DaemonUnreachable,
    DockerServiceError,
    ObjectNotFound,
)
from dockerscope.service.layers import map_history
from dockerscope.service.models import (
    DaemonInfo,
    ImageDetail,
    ImageSummary,
    LayerKind,
    LayerRow,
    LayerStack,
    MappingQuality,
    Snapshot,
)

__all__ = [
    "Connection",
    "DaemonInfo",
    "DaemonPermissionDenied",
    "DaemonUnreachable",
    "DockerService",
    "DockerServiceError",
    "ImageDetail",
    "ImageSummary",
    "LayerKind",
    "LayerRow",
    "LayerStack",
    "MappingQuality",
    "ObjectNotFound",
    "Snapshot",
    "map_history",
    "resolve_connection",
]
