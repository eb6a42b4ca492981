"""The async facade over docker-py's low-level APIClient."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import docker
import requests
from docker.errors import APIError, DockerException, NotFound

from dockerscope import clock
from dockerscope.service.connection import Connection
from dockerscope.service.errors import (
    DaemonPermissionDenied,
    DaemonUnreachable,
    DockerServiceError,
    ObjectNotFound,
)
from dockerscope.service.layers import map_history
from dockerscope.service.models import DaemonInfo, ImageDetail, ImageSummary, Snapshot
from dockerscope.service.threads import DaemonThreadPool

T = TypeVar("T")

DETAIL_CACHE_SIZE = 64
_PERMISSION = re.compile(r"permission denied|errno 13\b", re.IGNORECASE)
_REASONS = (
    (re.compile(r"no such file or directory|errno 2\b", re.IGNORECASE), "the socket does not exist"),
    (re.compile(r"connection refused", re.IGNORECASE), "connection refused"),
    (re.compile(r"timed out|timeout", re.IGNORECASE), "no answer (timed out)"),
    (
        re.compile(r"name or service not known|nodename nor servname|getaddrinfo", re.IGNORECASE),
        "host name not found",
    ),
)


def _describe_failure(exc: BaseException) -> str:
    text = str(exc)
    for pattern, reason in _REASONS:
        if pattern.search(text):
            return reason
    return text.splitlines()[0][:200] if text else type(exc).__name__


class DockerService:
    """Reads images and their details from one daemon.

    Every blocking docker-py call runs in a worker thread with its own APIClient (a requests
    session is not promised to be thread-safe). A poll shares one in-flight request set: callers
    that ask while a poll runs get that poll's result, so polls never overlap.
    """

    def __init__(self, connection: Connection, timeout: float = 10.0) -> None:
        self.connection = connection
        self.timeout = timeout
        self._pool = DaemonThreadPool(workers=4, name="dockerscope")
        self._local = threading.local()
        self._clients: list[docker.APIClient] = []
        self._clients_lock = threading.Lock()
        self._api_version: str | None = None
        self._daemon: DaemonInfo | None = None
        self._poll: asyncio.Future[Snapshot] | None = None
        self._details: OrderedDict[tuple[str, tuple[str, ...]], ImageDetail] = OrderedDict()
        self._request_count = 0

    @property
    def host(self) -> str:
        return self.connection.host

    @property
    def request_count(self) -> int:
        """API requests sent so far (the version handshake of each new client included)."""
        return self._request_count

    def _count_request(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._request_count += 1

    def _client(self) -> docker.APIClient:
        client: docker.APIClient | None = getattr(self._local, "client", None)
        if client is None:
            with self._clients_lock:
                version = self._api_version or "auto"
            client = docker.APIClient(version=version, timeout=self.timeout, **self.connection.client_kwargs)
            client.hooks["response"].append(self._count_request)
            if version == "auto":
                self._request_count += 1  # the handshake ran before the hook was attached
            with self._clients_lock:
                self._api_version = client.api_version
                self._clients.append(client)
            self._local.client = client
        return client

    def _forget_clients(self) -> None:
        """Drop every client so the next call renegotiates (the daemon may have been replaced)."""
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
            self._api_version = None
        self._local = threading.local()
        self._daemon = None

    def _translate(self, exc: Exception) -> DockerServiceError:
        if isinstance(exc, NotFound):
            return ObjectNotFound(self.host, str(exc.explanation or "not found"))
        if isinstance(exc, APIError):
            return DockerServiceError(self.host, str(exc.explanation or exc))
        if _PERMISSION.search(str(exc)) or any(isinstance(inner, PermissionError) for inner in _causes(exc)):
            return DaemonPermissionDenied(self.host, "permission denied on the daemon socket")
        return DaemonUnreachable(self.host, _describe_failure(exc))

    async def _run(self, call: Callable[[docker.APIClient], T]) -> T:
        def job() -> T:
            return call(self._client())

        try:
            return await asyncio.wrap_future(self._pool.submit(job))
        except (DockerException, requests.RequestException, OSError) as exc:
            error = self._translate(exc)
            if isinstance(error, DaemonUnreachable | DaemonPermissionDenied):
                self._forget_clients()
            raise error from exc

    async def daemon_info(self) -> DaemonInfo:
        if self._daemon is None:
            version = await self._run(lambda client: client.version(api_version=False))
            self._daemon = DaemonInfo(
                host=self.host,
                engine_version=str(version.get("Version", "?")),
                api_version=str(self._api_version or version.get("ApiVersion", "?")),
                os_type=str(version.get("Os", "")),
            )
        return self._daemon

    async def snapshot(self) -> Snapshot:
        """List images and containers: two requests per poll, whatever the number of objects."""
        if self._poll is not None and not self._poll.done():
            return await asyncio.shield(self._poll)
        self._poll = asyncio.ensure_future(self._take_snapshot())
        return await asyncio.shield(self._poll)

    async def _take_snapshot(self) -> Snapshot:
        daemon = await self.daemon_info()
        images, containers = await asyncio.gather(
            self._run(lambda client: client.images()),
            self._run(lambda client: client.containers(all=True)),
        )
        users: dict[str, int] = {}
        for container in containers:
            image_id = str(container.get("ImageID") or "")
            users[image_id] = users.get(image_id, 0) + 1
        summaries = tuple(_image_summary(raw, users) for raw in images)
        running = sum(1 for c in containers if c.get("State") == "running")
        return Snapshot(
            daemon=daemon,
            images=summaries,
            container_count=len(containers),
            running_count=running,
            taken_at=clock.utc_now(),
        )

    async def image_detail(self, image: ImageSummary) -> ImageDetail:
        """Inspect and history of one image, cached by id and tags (only tags change on an id)."""
        key = (image.id, image.tags)
        cached = self._details.get(key)
        if cached is not None:
            self._details.move_to_end(key)
            return cached
        inspect, history = await asyncio.gather(
            self._run(lambda client: client.inspect_image(image.id)),
            self._run(lambda client: client.history(image.id)),
        )
        diff_ids = (inspect.get("RootFS") or {}).get("Layers") or []
        detail = ImageDetail(id=image.id, inspect=inspect, layers=map_history(history, diff_ids))
        self._details[key] = detail
        while len(self._details) > DETAIL_CACHE_SIZE:
            self._details.popitem(last=False)
        return detail

    def close(self) -> None:
        self._pool.shutdown()
        self._forget_clients()


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or current in seen:
            continue
        seen.append(current)
        stack.extend([current.__cause__, current.__context__, *current.args])
    return seen


def _image_summary(raw: Mapping[str, Any], users: Mapping[str, int]) -> ImageSummary:
    image_id = str(raw.get("Id") or "")
    tags = tuple(str(tag) for tag in raw.get("RepoTags") or () if tag and tag != "<none>:<none>")
    created = raw.get("Created")
    return ImageSummary(
        id=image_id,
        tags=tags,
        created=datetime.fromtimestamp(created, tz=timezone.utc)
        if isinstance(created, int | float) and created > 0
        else None,
        size=max(int(raw.get("Size") or 0), 0),
        containers=users.get(image_id, 0),
    )
