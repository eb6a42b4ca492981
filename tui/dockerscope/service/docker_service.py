"""The async facade over docker-py's low-level APIClient."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar

import docker
import requests
from docker.errors import APIError, DockerException, NotFound

from dockerscope import clock
from dockerscope.service.connection import Connection
from dockerscope.service.errors import (
    DaemonAnswerInvalid,
    DaemonError,
    DaemonPermissionDenied,
    DaemonUnreachable,
    DockerServiceError,
    ObjectNotFound,
)
from dockerscope.service.events import WATCHED_TYPES, EventStream
from dockerscope.service.json_answer import decode_in_pieces
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_contents import (
    ContentsUnavailable,
    ImageContents,
    SourceChoice,
    analyze_container,
    analyze_image,
    diff_ids,
)
from dockerscope.service.layer_files import ProgressCallback, ReadCancelled
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
    Snapshot,
    WritableLayer,
)
from dockerscope.service.sharing import (
    SizeSplit,
    base_candidates,
    chain_ids,
    describe_base,
    find_sharers,
    history_is_prefix,
    layer_sizes,
    split_sizes,
)
from dockerscope.service.threads import DaemonThreadPool
from dockerscope.service.values import count, parse_timestamp, text, unix_time

T = TypeVar("T")

DETAIL_CACHE_SIZE = 64
# Analysed images kept in memory (an image id's layers never change): going back to a layer just
# looked at is instant. A 60,000-file image takes some 30 MB, so only a couple.
CONTENTS_KEPT = 2
# Image inspects run at most this many at a time for a context, leaving a worker of the pool free
# so a poll or a detail the user asked for is not queued behind them all.
CONTEXT_CONCURRENCY = 3
# An event burst touching more images than this lists them all in one request instead.
MAX_IMAGE_INSPECTS = 16
# Seconds a layer read may wait for the next bytes: a daemon builds a big export as it streams it.
LAYER_READ_TIMEOUT = 120.0
# A reason holds daemon text; this much of it is plenty to say what went wrong.
REASON_CHARS = 300
# An exit code is a 32-bit number: a longer one is not read (int() refuses thousands of digits).
_EXIT_CODE = re.compile(r"^Exited \((-?\d{1,10})\)")
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


# What a malformed answer raises on its way through requests, docker-py and the parsers.
_ANSWER_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's text, cut short (it may quote a daemon's answer)."""
    try:
        message = str(exc)
    except Exception:  # an error whose text cannot even be made
        message = ""
    line = message.splitlines()[0] if message.strip() else type(exc).__name__
    return line[:REASON_CHARS]


def _describe_failure(exc: BaseException) -> str:
    message = _first_line(exc)
    for pattern, reason in _REASONS:
        if pattern.search(message):
            return reason
    return message


def _http_status(causes: Iterable[BaseException]) -> tuple[int, str] | None:
    """The status and reason of an HTTP error answer among the causes (the version handshake wraps
    it in a plain DockerException)."""
    for cause in causes:
        response = getattr(cause, "response", None)
        if isinstance(cause, requests.HTTPError) and response is not None:
            return int(response.status_code), str(response.reason or "")[:REASON_CHARS]
    return None


def _is_malformed_answer(exc: BaseException) -> bool:
    """A parse or type error on a daemon's answer (requests' own URL and header errors are
    ValueErrors too, but they are about the address, not the answer)."""
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return True
    return isinstance(exc, _ANSWER_ERRORS) and not isinstance(exc, requests.RequestException)


class DockerService:
    """Reads images and their details from one daemon.

    Every blocking docker-py call runs in a worker thread with its own APIClient (a requests
    session is not promised to be thread-safe). A poll shares one in-flight request set: callers
    that ask while a poll runs get that poll's result, so polls never overlap.
    """

    def __init__(self, connection: Connection, timeout: float = 10.0, cache: LayerCache | None = None) -> None:
        self.connection = connection
        self.timeout = timeout
        self.cache = cache if cache is not None else LayerCache()
        self._pool = DaemonThreadPool(workers=4, name="dockerscope")
        self._local = threading.local()
        self._clients: list[docker.APIClient] = []
        self._clients_lock = threading.Lock()
        self._api_version: str | None = None
        self._daemon: DaemonInfo | None = None
        self._poll: asyncio.Future[Snapshot] | None = None
        self._prefetched: Future[tuple[Mapping[str, Any], list[ImageSummary], list[ContainerSummary]]] | None = None
        self._details: OrderedDict[tuple[str, tuple[str, ...]], ImageDetail] = OrderedDict()
        self._contents: OrderedDict[str, ImageContents] = OrderedDict()
        # Chain ids by image id: an id names one config, so an entry never goes stale.
        self._chains: dict[str, tuple[str, ...]] = {}
        self._chain_round: asyncio.Future[set[str]] | None = None
        self._latest: Snapshot | None = None
        self._request_count = 0
        self._cache_problem_told = False

    @property
    def host(self) -> str:
        return self.connection.host

    @property
    def request_count(self) -> int:
        """API requests sent so far (the version handshake of each new client included)."""
        return self._request_count

    def take_cache_problem(self) -> str | None:
        """Why the layer cache is not used (its directory is someone else's, or open to others),
        the first time it is asked once the cache has found out; None otherwise, so it is said once."""
        if self.cache.problem is None or self._cache_problem_told:
            return None
        self._cache_problem_told = True
        return self.cache.problem

    def _count_request(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._request_count += 1

    def _new_client(self, timeout: float | None = None) -> docker.APIClient:
        with self._clients_lock:
            version = self._api_version or "auto"
        client = docker.APIClient(version=version, timeout=timeout or self.timeout, **self.connection.client_kwargs)
        client.hooks["response"].extend([self._count_request, decode_in_pieces])
        if version == "auto":
            self._request_count += 1  # the handshake ran before the hook was attached
        with self._clients_lock:
            self._api_version = client.api_version
            self._clients.append(client)
        return client

    def _client(self) -> docker.APIClient:
        client: docker.APIClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
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

    def _translate(self, exc: BaseException) -> DockerServiceError:
        """The typed error for whatever a call raised: every failure, whatever the daemon answered,
        becomes one of the service's errors."""
        if isinstance(exc, DockerServiceError):
            return exc
        if isinstance(exc, NotFound):
            return ObjectNotFound(self.host, text(exc.explanation)[:REASON_CHARS] or "not found")
        if isinstance(exc, APIError):
            explanation = text(exc.explanation)[:REASON_CHARS] or _first_line(exc)
            status = exc.status_code
            return DaemonError(self.host, f"HTTP {status}: {explanation}" if status else explanation)
        causes = _causes(exc)
        if (answer := _http_status(causes)) is not None:
            return DaemonError(self.host, f"HTTP {answer[0]} {answer[1]} ({_first_line(exc)})")
        if any(_is_malformed_answer(cause) for cause in causes):
            return DaemonAnswerInvalid(self.host, f"unexpected answer: {_first_line(exc)}")
        if _PERMISSION.search(_first_line(exc)) or any(isinstance(inner, PermissionError) for inner in causes):
            return DaemonPermissionDenied(self.host, "permission denied on the daemon socket")
        if isinstance(exc, DockerException | requests.RequestException | OSError):
            return DaemonUnreachable(self.host, _describe_failure(exc))
        return DaemonAnswerInvalid(self.host, f"unexpected answer: {type(exc).__name__}: {_first_line(exc)}")

    def _submit(self, call: Callable[[docker.APIClient], T]) -> Future[T]:
        return self._pool.submit(lambda: call(self._client()))

    async def _run(self, call: Callable[[docker.APIClient], T]) -> T:
        return await self._result_of(self._submit(call))

    async def _run_long(self, call: Callable[[docker.APIClient], T]) -> T:
        """A long job (reading layers) on a daemon thread and a client of its own, so polls and
        details never queue behind it."""
        job: Future[T] = Future()

        def work() -> None:
            try:
                client = self._new_client(timeout=LAYER_READ_TIMEOUT)
                try:
                    job.set_result(call(client))
                finally:
                    with self._clients_lock:
                        if client in self._clients:
                            self._clients.remove(client)
                    client.close()
            except BaseException as exc:
                if not job.done():
                    job.set_exception(exc)

        threading.Thread(target=work, name="dockerscope-layers", daemon=True).start()
        return await self._result_of(job)

    async def _result_of(self, job: Future[T]) -> T:
        """The job's result. Whatever it raises leaves as one of the service's errors, except a
        cancelled read and a layer source that cannot be used, which the caller asked about."""
        try:
            return await asyncio.wrap_future(job)
        except (DockerServiceError, ReadCancelled, ContentsUnavailable):
            raise
        except Exception as exc:
            error = self._translate(exc)
            if isinstance(error, DaemonUnreachable | DaemonPermissionDenied):
                self._forget_clients()
            raise error from exc

    def _objects(self, answer: object, what: str) -> list[Mapping[str, Any]]:
        """A list answer whose items must all be objects; anything else is an invalid answer."""
        if not isinstance(answer, list) or not all(isinstance(item, Mapping) for item in answer):
            raise DaemonAnswerInvalid(self.host, f"{what} is not a list of objects")
        return answer

    def _object(self, answer: object, what: str) -> Mapping[str, Any]:
        if not isinstance(answer, Mapping):
            raise DaemonAnswerInvalid(self.host, f"{what} is not an object")
        return answer

    def _images(self, answer: object) -> list[ImageSummary]:
        return [_image_summary(raw) for raw in self._objects(answer, "the image list")]

    def _containers(self, answer: object) -> list[ContainerSummary]:
        return [_container_summary(raw) for raw in self._objects(answer, "the container list")]

    def prefetch(self) -> None:
        """Send the first poll's requests now, from a worker thread, so the daemon answers while
        the UI is still loading; the next `snapshot()` takes that answer instead of asking again."""
        self._prefetched = self._submit(
            lambda client: (
                self._object(client.version(api_version=False), "the version"),
                self._images(client.images()),
                self._containers(client.containers(all=True)),
            )
        )

    async def daemon_info(self) -> DaemonInfo:
        if self._daemon is None:
            self._remember_daemon(
                await self._run(lambda client: self._object(client.version(api_version=False), "the version"))
            )
        assert self._daemon is not None
        return self._daemon

    def _remember_daemon(self, version: Mapping[str, Any]) -> None:
        self._daemon = DaemonInfo(
            host=self.host,
            engine_version=text(version.get("Version"))[:REASON_CHARS] or "?",
            api_version=text(self._api_version or version.get("ApiVersion"))[:REASON_CHARS] or "?",
        )

    async def snapshot(self) -> Snapshot:
        """List images and containers: two requests per poll, whatever the number of objects."""
        if self._poll is not None and not self._poll.done():
            return await asyncio.shield(self._poll)
        self._poll = asyncio.ensure_future(self._take_snapshot())
        return await asyncio.shield(self._poll)

    async def _take_snapshot(self) -> Snapshot:
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            version, images, containers = await self._result_of(prefetched)
            self._remember_daemon(version)
            daemon = await self.daemon_info()
        else:
            daemon = await self.daemon_info()
            images, containers = await asyncio.gather(
                self._run(lambda client: self._images(client.images())),
                self._run(lambda client: self._containers(client.containers(all=True))),
            )
        return self._publish(daemon, images, containers)

    def _publish(
        self, daemon: DaemonInfo, images: Iterable[ImageSummary], containers: Iterable[ContainerSummary]
    ) -> Snapshot:
        """The new latest snapshot, each image's container count taken from the containers."""
        container_list = tuple(containers)
        users = Counter(container.image_id for container in container_list)
        snapshot = Snapshot(
            daemon=daemon,
            images=tuple(
                image if image.containers == users[image.id] else replace(image, containers=users[image.id])
                for image in images
            ),
            containers=container_list,
            taken_at=clock.utc_now(),
        )
        self._latest = snapshot
        return snapshot

    async def refresh(self, batch: EventBatch) -> Snapshot:
        """Apply what a burst of events touched to the latest snapshot: the touched containers in
        one filtered list request, each touched image by one inspect, the whole image list only
        when an event did not name images by id or named too many. A full poll if there is no
        snapshot yet."""
        latest = self._latest
        if latest is None:
            return await self.snapshot()
        images = {image.id: image for image in latest.images}
        containers = {container.id: container for container in latest.containers}
        image_ids = sorted(batch.image_ids)
        whole_image_list = batch.all_images or len(image_ids) > MAX_IMAGE_INSPECTS

        async def fetch_containers() -> None:
            if not batch.container_ids:
                return
            ids = sorted(batch.container_ids)
            listed = await self._run(lambda client: self._containers(client.containers(all=True, filters={"id": ids})))
            fresh = {summary.id: summary for summary in listed}
            for container_id in ids:
                if container_id in fresh:
                    containers[container_id] = fresh[container_id]
                else:
                    containers.pop(container_id, None)

        async def fetch_image(image_id: str) -> bool:
            """Refresh one image in place; False when the daemon knows it by another id."""
            try:
                summary = await self._run(
                    lambda client: _image_from_inspect(self._object(client.inspect_image(image_id), "an image inspect"))
                )
            except ObjectNotFound:
                images.pop(image_id, None)
                return True
            if summary.id != image_id:
                return False
            images[image_id] = summary
            return True

        image_fetches = [] if whole_image_list else [fetch_image(image_id) for image_id in image_ids]
        _, *found = await asyncio.gather(fetch_containers(), *image_fetches)
        if whole_image_list or not all(found):
            listed_images = await self._run(lambda client: self._images(client.images()))
            images = {summary.id: summary for summary in listed_images}
        return self._publish(latest.daemon, images.values(), containers.values())

    def open_event_stream(self) -> EventStream:
        """Subscribe to image and container events. Blocking: call it, and iterate the stream, in a
        thread of its own; the stream holds its connection on a client of its own until closed."""
        try:
            client = self._new_client()
            stream = client.events(decode=True, filters={"type": list(WATCHED_TYPES)})
        except Exception as exc:
            raise self._translate(exc) from exc
        return EventStream(stream, client)

    async def image_detail(self, image: ImageSummary) -> ImageDetail:
        """Inspect and history of one image, cached by id and tags (only tags change on an id)."""
        key = (image.id, image.tags)
        cached = self._details.get(key)
        if cached is not None:
            self._details.move_to_end(key)
            return cached
        detail = await self._fetch_image_detail(image.id)
        self._details[key] = detail
        while len(self._details) > DETAIL_CACHE_SIZE:
            self._details.popitem(last=False)
        return detail

    async def _fetch_image_detail(self, image_id: str) -> ImageDetail:
        inspect, history = await asyncio.gather(
            self._run(lambda client: self._object(client.inspect_image(image_id), "the image inspect")),
            self._run(lambda client: self._objects(client.history(image_id), "the image history")),
        )
        # Mapping and chain ids cost time in proportion to what the daemon sent: not on the loop.
        detail = await self._result_of(self._pool.submit(lambda: _image_detail(image_id, inspect, history)))
        self._chains[detail.id] = detail.chain
        return detail

    async def image_detail_of(self, reference: str) -> ImageDetail:
        """Inspect and history of an image named by id or reference (`app:1`), uncached."""
        return await self._fetch_image_detail(reference)

    async def image_contents(
        self,
        image_id: str,
        *,
        choice: SourceChoice = SourceChoice.AUTO,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        """What every layer of the image adds, modifies and removes, and the space it wastes.
        Raises ReadCancelled once `cancel` is set, ContentsUnavailable when `choice` cannot be used.
        `use_cache=False` reads (and stores) nothing from the disk cache or memory."""
        kept = self._contents.get(image_id) if use_cache and choice is SourceChoice.AUTO else None
        if kept is not None:
            self._contents.move_to_end(image_id)
            return replace(kept, sources=("memory",), seconds=0.0)
        cache = self.cache if use_cache else None
        contents = await self._run_long(
            lambda client: analyze_image(
                client,
                image_id,
                host=self.connection.host,
                choice=choice,
                cache=cache,
                cancel=cancel,
                on_progress=on_progress,
            )
        )
        if use_cache:
            self._contents[image_id] = contents
            while len(self._contents) > CONTENTS_KEPT:
                self._contents.popitem(last=False)
        return contents

    async def container_contents(
        self,
        container_id: str,
        *,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        """The layers of a container's image with its writable layer on top (the last layer)."""
        return await self._run_long(
            lambda client: analyze_container(
                client,
                container_id,
                host=self.connection.host,
                cache=self.cache,
                cancel=cancel,
                on_progress=on_progress,
            )
        )

    async def container_detail(self, container: ContainerSummary) -> ContainerDetail:
        """Inspect, writable layer and image of one container; never cached, since the writable
        layer changes while the container runs. Raises ObjectNotFound when the container is gone."""
        inspect, listed, changes, image = await asyncio.gather(
            self._run(lambda client: self._object(client.inspect_container(container.id), "the container inspect")),
            # Only the list endpoint reports SizeRw; the daemon walks the layer for it, so ask for
            # this one container alone.
            self._run(
                lambda client: self._objects(
                    client.containers(all=True, size=True, filters={"id": [container.id]}), "the container list"
                )
            ),
            self._run(
                lambda client: _changes(self._objects(client.diff(container.id) or [], "the container's changes"))
            ),
            self._container_image(container.image_id),
        )
        sizes = next((raw for raw in listed if raw.get("Id") == container.id), None)
        if sizes is None:
            raise ObjectNotFound(self.host, f"no such container: {container.id}")
        return ContainerDetail(
            id=container.id,
            inspect=inspect,
            image=image,
            writable=WritableLayer(
                size=_size(sizes, "SizeRw"),
                root_fs_size=_size(sizes, "SizeRootFs"),
                changes=changes,
            ),
        )

    async def _container_image(self, image_id: str) -> ImageDetail | None:
        """The detail of a container's image, through the cache when the latest poll listed the
        image (the cache key needs its tags); None when the image is gone."""
        images = self._latest.images if self._latest else ()
        summary = next((image for image in images if image.id == image_id), None)
        try:
            return await self.image_detail(summary) if summary else await self._fetch_image_detail(image_id)
        except ObjectNotFound:
            return None

    async def image_context(self, image: ImageSummary, snapshot: Snapshot) -> ImageContext:
        """How the image relates to the other images of the snapshot: the layers it shares, its
        size split, its base image.

        Needs the chain of every image, so it inspects each image it has not inspected before (an
        image id's layers never change, so that happens once per image): keep it out of the poll.
        Images removed meanwhile are left out, and the context says it is incomplete.
        """
        detail = await self.image_detail(image)
        chains, complete = await self._snapshot_chains(snapshot)
        chains[image.id] = detail.chain

        def relate() -> tuple[dict[str, tuple[str, ...]], SizeSplit, tuple[ImageSummary, ...]]:
            # In proportion to every image's layers: off the loop.
            sharers = find_sharers(image.id, chains)
            split = split_sizes(
                detail.chain, layer_sizes(detail.layers, detail.chain), sharers, detail.layers.total_size
            )
            return sharers, split, base_candidates(image, snapshot.images, chains)

        sharers, split, candidates = await self._result_of(self._pool.submit(relate))
        base: BaseImage | None = None
        if candidates:
            candidates, history_count, found = await self._base_history(candidates, detail)
            complete = complete and found
            base = describe_base(candidates, len(chains[candidates[0].id]), history_count)
        return ImageContext(
            sharers=sharers,
            base=base,
            shared_size=split.shared,
            unique_size=split.unique,
            complete=complete,
            unknown_size=split.unknown,
        )

    async def _snapshot_chains(self, snapshot: Snapshot) -> tuple[dict[str, tuple[str, ...]], bool]:
        """The chain of every image in the snapshot, and whether none of them vanished meanwhile.

        Callers share one round of inspects, as polls share one request set: a context asked for
        while another is being worked out (the user moving through the list) waits for that round
        rather than starting the same inspects again."""
        listed = {image.id for image in snapshot.images}
        for image_id in self._chains.keys() - listed:
            del self._chains[image_id]  # removed images: keeps the cache as large as the image list
        vanished: set[str] = set()
        while missing := [image_id for image_id in listed if image_id not in self._chains and image_id not in vanished]:
            if self._chain_round is None or self._chain_round.done():
                self._chain_round = asyncio.ensure_future(self._inspect_chains(missing))
            vanished |= await asyncio.shield(self._chain_round)
        chains = {image.id: self._chains[image.id] for image in snapshot.images if image.id in self._chains}
        return chains, len(chains) == len(listed)

    async def _inspect_chains(self, image_ids: list[str]) -> set[str]:
        """Inspect images a few at a time for their chains; returns the ids of those that vanished."""
        limit = asyncio.Semaphore(CONTEXT_CONCURRENCY)
        vanished: set[str] = set()

        async def fetch(image_id: str) -> None:
            async with limit:
                try:
                    chain = await self._run(
                        lambda client: chain_ids(
                            diff_ids(self._object(client.inspect_image(image_id), "an image inspect"))
                        )
                    )
                except ObjectNotFound:
                    vanished.add(image_id)
                    return
            self._chains[image_id] = chain

        await asyncio.gather(*(fetch(image_id) for image_id in image_ids))
        return vanished

    async def _base_history(
        self, candidates: tuple[ImageSummary, ...], detail: ImageDetail
    ) -> tuple[tuple[ImageSummary, ...], int | None, bool]:
        """Find, among images with the same chain, the one this image was built FROM: the first
        whose whole history starts this image's history. It goes first; its history length tells
        where the base ends in this image's history (None when none matches). Also says whether
        every candidate looked at was still there."""
        found = True
        for index, candidate in enumerate(candidates):
            try:
                rows = (await self.image_detail(candidate)).layers.rows
            except ObjectNotFound:
                found = False
                continue
            if history_is_prefix(rows, detail.layers.rows):
                return (candidate, *candidates[:index], *candidates[index + 1 :]), len(rows), found
        return candidates, None, found

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


def _tags(raw: Mapping[str, Any]) -> tuple[str, ...]:
    tags = raw.get("RepoTags")
    if not isinstance(tags, list):
        return ()
    return tuple(tag for tag in map(text, tags) if tag and tag != "<none>:<none>")


def _image_summary(raw: Mapping[str, Any]) -> ImageSummary:
    """An image list entry; its container count is filled in by `_publish`."""
    return ImageSummary(
        id=text(raw.get("Id")),
        tags=_tags(raw),
        created=unix_time(raw.get("Created")),
        size=count(raw.get("Size")),
        containers=0,
    )


def _image_from_inspect(inspect: Mapping[str, Any]) -> ImageSummary:
    """The list entry of an image, from its inspect document (same fields, Created in RFC 3339)."""
    return ImageSummary(
        id=text(inspect.get("Id")),
        tags=_tags(inspect),
        # Whole seconds, as the image list gives them.
        created=created.replace(microsecond=0) if (created := parse_timestamp(inspect.get("Created"))) else None,
        size=count(inspect.get("Size")),
        containers=0,
    )


def _image_detail(image_id: str, inspect: Mapping[str, Any], history: list[Mapping[str, Any]]) -> ImageDetail:
    layers = diff_ids(inspect)
    return ImageDetail(
        id=text(inspect.get("Id")) or image_id,
        inspect=inspect,
        layers=map_history(history, layers),
        chain=chain_ids(layers),
    )


def _container_summary(raw: Mapping[str, Any]) -> ContainerSummary:
    names = raw.get("Names")
    state = text(raw.get("State"))
    status = text(raw.get("Status"))
    exit_code = _EXIT_CODE.match(status) if state == "exited" else None
    return ContainerSummary(
        id=text(raw.get("Id")),
        name=text(names[0]).removeprefix("/") if isinstance(names, list) and names else "",
        image=text(raw.get("Image")),
        image_id=text(raw.get("ImageID")),
        state=state,
        status=status,
        created=unix_time(raw.get("Created")),
        exit_code=int(exit_code.group(1)) if exit_code else None,
    )


def _size(raw: Mapping[str, Any], key: str) -> int | None:
    """A size from the container list; the daemon omits zero sizes, anything but a count is unknown."""
    value = raw.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _changes(raw: list[Mapping[str, Any]]) -> tuple[Change, ...]:
    """`docker diff` entries sorted by path (the daemon's order changes from call to call). The API
    sends null for none; kinds this version does not know are left out."""
    known = {kind.value: kind for kind in ChangeKind}
    changes = (
        Change(path=text(change.get("Path")), kind=known[kind])
        for change in raw
        if isinstance(kind := change.get("Kind"), int) and not isinstance(kind, bool) and kind in known
    )
    return tuple(sorted(changes, key=lambda change: change.path))
