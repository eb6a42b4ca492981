"""The async facade over docker-py's low-level APIClient."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import docker

from dockerscope import clock
from dockerscope.service.answers import (
    build_image_detail,
    container_summaries,
    engine_name,
    image_from_inspect,
    image_summaries,
    listed_size,
    object_list,
    one_object,
    sorted_changes,
)
from dockerscope.service.client_pool import REASON_CHARS, ClientPool
from dockerscope.service.connection import Connection
from dockerscope.service.errors import ObjectNotFound
from dockerscope.service.events import WATCHED_TYPES, EventStream
from dockerscope.service.file_reading import SinkFailures, SinkOpener
from dockerscope.service.image_context import ImageContexts
from dockerscope.service.layer_bytes import read_layer_files
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_contents import (
    Daemon,
    ImageContents,
    SourceChoice,
    analyze_container,
    analyze_image,
    diff_ids,
)
from dockerscope.service.layer_files import ProgressCallback
from dockerscope.service.models import (
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
from dockerscope.service.sharing import chain_ids
from dockerscope.service.source import SourceCapabilities
from dockerscope.service.values import text

DETAIL_CACHE_SIZE = 64
# Analysed images kept in memory (an image id's layers never change): going back to a layer just
# looked at is instant. A 60,000-file image takes some 30 MB, so only a couple.
CONTENTS_KEPT = 2
# An event burst touching more images than this lists them all in one request instead.
MAX_IMAGE_INSPECTS = 16


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
        self._pool = ClientPool(connection, timeout, on_forget=self._forget_daemon)
        self._contexts = ImageContexts(lambda image: self.image_detail(image), self._read_chain, self._pool.in_worker)
        self._daemon: DaemonInfo | None = None
        self._poll: asyncio.Future[Snapshot] | None = None
        self._prefetched: Future[tuple[Mapping[str, Any], list[ImageSummary], list[ContainerSummary]]] | None = None
        self._details: OrderedDict[tuple[str, tuple[str, ...]], ImageDetail] = OrderedDict()
        self._contents: OrderedDict[str, ImageContents] = OrderedDict()
        self._latest: Snapshot | None = None
        self._cache_problem_told = False
        # The daemon's `/info` answer, once a file read asked for it (see `read_layer_files`).
        self._engine_info: Mapping[str, Any] | None = None

    @property
    def host(self) -> str:
        return self.connection.host

    @property
    def capabilities(self) -> SourceCapabilities:
        """A daemon has it all; its overlay2 directories may only be read when it is on this
        machine's unix socket (whether they are is decided per image: `layer_contents`)."""
        return SourceCapabilities(
            containers=True,
            events=True,
            layer_contents=True,
            fast_path=self.host.startswith("unix://"),
            file_contents=True,
        )

    @property
    def request_count(self) -> int:
        """API requests sent so far (the version handshake of each new client included)."""
        return self._pool.request_count

    def take_cache_problem(self) -> str | None:
        """Why the layer cache is not used (its directory is someone else's, or open to others),
        the first time it is asked once the cache has found out; None otherwise, so it is said once."""
        if self.cache.problem is None or self._cache_problem_told:
            return None
        self._cache_problem_told = True
        return self.cache.problem

    def _forget_daemon(self) -> None:
        """The clients were dropped: the daemon behind them may be another one now."""
        self._daemon = None
        self._engine_info = None

    def prefetch(self) -> None:
        """Send the first poll's requests now, from a worker thread, so the daemon answers while
        the UI is still loading; the next `snapshot()` takes that answer instead of asking again."""
        self._prefetched = self._pool.submit(
            lambda client: (
                one_object(self.host, client.version(api_version=False), "the version"),
                image_summaries(self.host, client.images()),
                container_summaries(self.host, client.containers(all=True)),
            )
        )

    async def daemon_info(self) -> DaemonInfo:
        if self._daemon is None:
            self._remember_daemon(
                await self._pool.run(
                    lambda client: one_object(self.host, client.version(api_version=False), "the version")
                )
            )
        assert self._daemon is not None
        return self._daemon

    def _remember_daemon(self, version: Mapping[str, Any]) -> None:
        self._daemon = DaemonInfo(
            host=self.host,
            engine_version=text(version.get("Version"))[:REASON_CHARS] or "?",
            api_version=text(self._pool.api_version or version.get("ApiVersion"))[:REASON_CHARS] or "?",
            engine=engine_name(version),
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
            version, images, containers = await self._pool.result_of(prefetched)
            self._remember_daemon(version)
            daemon = await self.daemon_info()
        else:
            daemon = await self.daemon_info()
            images, containers = await asyncio.gather(
                self._pool.run(lambda client: image_summaries(self.host, client.images())),
                self._pool.run(lambda client: container_summaries(self.host, client.containers(all=True))),
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
        image_fetches = [] if whole_image_list else [self._refresh_image(image_id, images) for image_id in image_ids]
        _, *found = await asyncio.gather(self._refresh_containers(batch.container_ids, containers), *image_fetches)
        if whole_image_list or not all(found):
            listed_images = await self._pool.run(lambda client: image_summaries(self.host, client.images()))
            images = {summary.id: summary for summary in listed_images}
        return self._publish(latest.daemon, images.values(), containers.values())

    async def _refresh_containers(self, container_ids: Iterable[str], containers: dict[str, ContainerSummary]) -> None:
        """Refresh the named containers in `containers` with one filtered list request."""
        ids = sorted(container_ids)
        if not ids:
            return
        listed = await self._pool.run(
            lambda client: container_summaries(self.host, client.containers(all=True, filters={"id": ids}))
        )
        fresh = {summary.id: summary for summary in listed}
        for container_id in ids:
            if container_id in fresh:
                containers[container_id] = fresh[container_id]
            else:
                containers.pop(container_id, None)

    async def _refresh_image(self, image_id: str, images: dict[str, ImageSummary]) -> bool:
        """Refresh one image in `images` in place; False when the daemon knows it by another id."""
        try:
            summary = await self._pool.run(
                lambda client: image_from_inspect(
                    one_object(self.host, client.inspect_image(image_id), "an image inspect")
                )
            )
        except ObjectNotFound:
            images.pop(image_id, None)
            return True
        if summary.id != image_id:
            return False
        images[image_id] = summary
        return True

    def open_event_stream(self) -> EventStream:
        """Subscribe to image and container events. Blocking: call it, and iterate the stream, in a
        thread of its own; the stream holds its connection on a client of its own until closed."""
        try:
            client = self._pool.new_client()
            stream = client.events(decode=True, filters={"type": list(WATCHED_TYPES)})
        except Exception as exc:
            raise self._pool.translate(exc) from exc
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
            self._pool.run(lambda client: one_object(self.host, client.inspect_image(image_id), "the image inspect")),
            self._pool.run(lambda client: object_list(self.host, client.history(image_id), "the image history")),
        )
        # Mapping and chain ids cost time in proportion to what the daemon sent: not on the loop.
        detail = await self._pool.in_worker(lambda: build_image_detail(image_id, inspect, history))
        self._contexts.remember(detail)
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
        contents = await self._pool.run_long(
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
        return await self._pool.run_long(
            lambda client: analyze_container(
                client,
                container_id,
                host=self.connection.host,
                cache=self.cache,
                cancel=cancel,
                on_progress=on_progress,
            )
        )

    async def read_layer_files(
        self,
        image_id: str,
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        *,
        container_id: str | None = None,
        choice: SourceChoice = SourceChoice.AUTO,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> str:
        """The bytes of files in the image's layers, from the layer directories or the export
        (see `layer_bytes`); `choice` forces one (`ContentsUnavailable` when it cannot be used)."""
        failures = SinkFailures(open_sink)

        def read(client: docker.APIClient) -> str:
            # The daemon's `/info` (where its layer directories are) is asked once, not per file
            # shown: Podman takes a third of a second to answer it.
            daemon = Daemon(client, self.connection.host, self._engine_info)
            try:
                return read_layer_files(
                    daemon,
                    image_id,
                    wanted,
                    failures,
                    container_id=container_id,
                    choice=choice,
                    cancel=cancel,
                    on_progress=on_progress,
                )
            finally:
                self._engine_info = daemon.known_info

        try:
            return await self._pool.run_long(read)
        except Exception:
            failures.raise_kept()
            raise

    async def container_detail(self, container: ContainerSummary) -> ContainerDetail:
        """Inspect, writable layer and image of one container; never cached, since the writable
        layer changes while the container runs. Raises ObjectNotFound when the container is gone."""
        inspect, listed, changes, image = await asyncio.gather(
            self._pool.run(
                lambda client: one_object(self.host, client.inspect_container(container.id), "the container inspect")
            ),
            # Only the list endpoint reports SizeRw; the daemon walks the layer for it, so ask for
            # this one container alone.
            self._pool.run(
                lambda client: object_list(
                    self.host,
                    client.containers(all=True, size=True, filters={"id": [container.id]}),
                    "the container list",
                )
            ),
            self._pool.run(
                lambda client: sorted_changes(
                    object_list(self.host, client.diff(container.id) or [], "the container's changes")
                )
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
                size=listed_size(sizes, "SizeRw"),
                root_fs_size=listed_size(sizes, "SizeRootFs"),
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

    async def _read_chain(self, image_id: str) -> tuple[str, ...]:
        """An image's chain ids, from its inspect (for `ImageContexts`)."""

        def read(client: docker.APIClient) -> tuple[str, ...]:
            # A hash per layer, as many layers as the image says: in the worker, not on the loop.
            return chain_ids(diff_ids(one_object(self.host, client.inspect_image(image_id), "an image inspect")))

        return await self._pool.run(read)

    async def image_context(self, image: ImageSummary, snapshot: Snapshot) -> ImageContext:
        """How the image relates to the other images of the snapshot: the layers it shares, its
        size split, its base image (see `ImageContexts.context`)."""
        return await self._contexts.context(image, snapshot)

    def close(self) -> None:
        self._pool.close()
