"""An `ImageSource` over an image archive or an OCI layout (see archive_reader): no daemon.

It lists every image of the archive (one row per platform of a multi-platform index), shows each
image's config and manifest as its inspect document, maps history onto layers exactly with the
config's `empty_layer`, relates the images to each other as a daemon's are, and reads layer
contents from the archive in place. It has no containers and no update stream; an archive does not
change while it is open, so every poll answers the snapshot taken when it was opened.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from dockerscope import clock
from dockerscope.service.archive_reader import Archive, ArchiveError, ArchiveImage
from dockerscope.service.errors import DockerServiceError, ObjectNotFound
from dockerscope.service.file_analysis import analyze_layers
from dockerscope.service.file_reading import SinkFailures, SinkOpener
from dockerscope.service.image_context import ImageContexts
from dockerscope.service.layer_contents import ContentsUnavailable, ImageContents, SourceChoice
from dockerscope.service.layer_files import ProgressCallback, ReadProgress, gc_paused
from dockerscope.service.layers import map_config_history
from dockerscope.service.models import (
    ContainerDetail,
    ContainerSummary,
    DaemonInfo,
    EventBatch,
    ImageContext,
    ImageDetail,
    ImageSummary,
    Snapshot,
)
from dockerscope.service.sharing import chain_ids
from dockerscope.service.source import EventFeed, SourceCapabilities

# Analysed images and image details kept in memory, as DockerService keeps them.
CONTENTS_KEPT = 4
DETAILS_KEPT = 256


class ArchiveUnreadable(DockerServiceError):
    """The archive or layout cannot be opened or read."""

    @property
    def headline(self) -> str:
        return "The image archive cannot be read"

    @property
    def hint(self) -> str:
        return "Check that it is a docker save / podman save tarball or an OCI image layout, whole and unchanged."


def is_archive_path(argument: str) -> bool:
    """Whether a command-line argument names a file or directory to open as an archive."""
    return os.path.exists(argument)


class ArchiveSource:
    """The images of one archive or OCI layout. Open it with `open_archive` (blocking)."""

    def __init__(self, archive: Archive, host: str) -> None:
        self._archive = archive
        self._host = host
        self._images = {image.id: image for image in archive.images}
        self._details: OrderedDict[str, ImageDetail] = OrderedDict()
        self._contents: OrderedDict[str, ImageContents] = OrderedDict()
        self._contexts = ImageContexts(self.image_detail, self._chain, asyncio.to_thread)
        several_platforms = len({image.platform for image in archive.images}) > 1
        self._snapshot = Snapshot(
            daemon=DaemonInfo(host=host, engine_version="", api_version="", engine=archive.kind),
            images=tuple(_summary(image, several_platforms) for image in archive.images),
            containers=(),
            taken_at=clock.utc_now(),
        )

    @property
    def host(self) -> str:
        return self._host

    @property
    def capabilities(self) -> SourceCapabilities:
        return SourceCapabilities(
            containers=False, events=False, layer_contents=True, fast_path=False, file_contents=True
        )

    async def daemon_info(self) -> DaemonInfo:
        return self._snapshot.daemon

    async def snapshot(self) -> Snapshot:
        return self._snapshot

    async def refresh(self, batch: EventBatch) -> Snapshot:
        return self._snapshot

    def open_event_stream(self) -> EventFeed:
        raise DockerServiceError(self._host, "an archive has no update stream")

    def _image(self, image_id: str) -> ArchiveImage:
        image = self._images.get(image_id)
        if image is None:
            raise ObjectNotFound(self._host, f"no image {image_id[:80]!r} in the archive")
        return image

    async def image_detail(self, image: ImageSummary) -> ImageDetail:
        return await self._detail(self._image(image.id))

    async def image_detail_of(self, reference: str) -> ImageDetail:
        matches = find_images(self._archive.images, reference)
        if not matches:
            raise ObjectNotFound(self._host, f"no image {reference[:200]!r} in the archive")
        if len(matches) > 1:
            names = "; ".join(describe(image) for image in matches[:20])
            raise ObjectNotFound(
                self._host,
                f"{reference[:200]!r} names {len(matches)} images of the archive (pick one with --platform): {names}",
            )
        return await self._detail(matches[0])

    async def _detail(self, image: ArchiveImage) -> ImageDetail:
        detail = self._details.get(image.id)
        if detail is not None:
            self._details.move_to_end(image.id)
            return detail
        detail = await asyncio.to_thread(self._read_detail, image)
        self._details[image.id] = detail
        while len(self._details) > DETAILS_KEPT:
            self._details.popitem(last=False)
        return detail

    def _read_detail(self, image: ArchiveImage) -> ImageDetail:
        try:
            config = self._archive.config(image)
        except ArchiveError as error:
            raise ArchiveUnreadable(self._host, str(error)) from None
        except OSError as error:
            raise ArchiveUnreadable(self._host, f"cannot read it: {error.strerror or error}") from None
        history = config.get("history")
        stack = map_config_history(
            history if isinstance(history, list) else [], image.diff_ids, [layer.size for layer in image.layers]
        )
        return ImageDetail(
            id=image.id, inspect=inspect_document(image, config), layers=stack, chain=chain_ids(image.diff_ids)
        )

    async def _chain(self, image_id: str) -> tuple[str, ...]:
        return chain_ids(self._image(image_id).diff_ids)

    async def image_context(self, image: ImageSummary, snapshot: Snapshot) -> ImageContext:
        return await self._contexts.context(image, snapshot)

    async def container_detail(self, container: ContainerSummary) -> ContainerDetail:
        raise ObjectNotFound(self._host, "an archive has no containers")

    async def image_contents(
        self,
        image_id: str,
        *,
        choice: SourceChoice = SourceChoice.AUTO,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        """Every layer read from the archive, each checked against its diff id."""
        if choice is SourceChoice.OVERLAY:
            raise ContentsUnavailable("an archive has no overlay2 directories: its layers are read from the archive")
        image = self._image(image_id)
        kept = self._contents.get(image_id) if use_cache else None
        if kept is not None:
            self._contents.move_to_end(image_id)
            return replace(kept, sources=("memory",), seconds=0.0)
        contents = await asyncio.to_thread(self._read, image, cancel, on_progress)
        if use_cache:
            self._contents[image_id] = contents
            while len(self._contents) > CONTENTS_KEPT:
                self._contents.popitem(last=False)
        return contents

    def _read(
        self, image: ArchiveImage, cancel: threading.Event | None, on_progress: ProgressCallback | None
    ) -> ImageContents:
        started = time.perf_counter()
        count = len(set(image.diff_ids))

        def report(layers_done: int, bytes_done: int) -> None:
            if on_progress is not None:
                on_progress(ReadProgress(min(layers_done, count), count, bytes_done, image.size or None))

        with gc_paused():
            try:
                layers = self._archive.listings(image, cancel=cancel, on_layer=report)
            except ArchiveError as error:
                raise ContentsUnavailable(f"the archive could not be read: {error}") from None
            except OSError as error:
                raise ContentsUnavailable(f"the archive could not be read: {error.strerror or error}") from None
            files = analyze_layers(layers)
        return ImageContents(files, ("archive",), time.perf_counter() - started)

    async def container_contents(
        self,
        container_id: str,
        *,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImageContents:
        raise ContentsUnavailable("an archive has no containers")

    async def read_layer_files(
        self,
        image_id: str,
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        *,
        container_id: str | None = None,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> str:
        """The wanted files read from the layer blobs of the archive (see `Archive.read_files`)."""
        if container_id is not None:
            raise ContentsUnavailable("an archive has no containers")
        image = self._image(image_id)
        for index in wanted:
            if not 0 <= index < len(image.layers):
                raise ContentsUnavailable(f"the image has no layer {index + 1}")
        failures = SinkFailures(open_sink)
        try:
            await asyncio.to_thread(self._read_files, image, wanted, failures, cancel)
        except Exception:
            failures.raise_kept()
            raise
        return "archive"

    def _read_files(
        self,
        image: ArchiveImage,
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        cancel: threading.Event | None,
    ) -> None:
        try:
            self._archive.read_files(image, wanted, open_sink, cancel=cancel)
        except ArchiveError as error:
            raise ContentsUnavailable(f"the archive could not be read: {error}") from None
        except OSError as error:
            raise ContentsUnavailable(f"the archive could not be read: {error.strerror or error}") from None

    def take_cache_problem(self) -> str | None:
        return None

    def close(self) -> None:
        self._archive.close()


def _summary(image: ArchiveImage, several_platforms: bool) -> ImageSummary:
    """A list row; when the archive holds several platforms, each tag names its row's platform."""
    tags = (
        tuple(f"{tag} ({image.platform})" for tag in image.tags) if several_platforms and image.platform else image.tags
    )
    return ImageSummary(id=image.id, tags=tags, created=image.created, size=image.size, containers=0)


def open_archive(path: str) -> ArchiveSource:
    """Open an archive or OCI layout and read its images. Blocking; `ArchiveUnreadable` says why
    it cannot be opened."""
    host = os.path.abspath(path)
    try:
        archive = Archive(path)
    except ArchiveError as error:
        raise ArchiveUnreadable(host, str(error)) from None
    return ArchiveSource(archive, host)


def inspect_document(image: ArchiveImage, config: Mapping[str, Any]) -> dict[str, Any]:
    """What the inspect pane shows: the image's id, tags, platform and size, its config as the
    archive holds it, and the manifest that names it."""
    ours: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.tags),
        "Platform": image.platform,
        "Size": image.size,
    }
    rest = {key: value for key, value in config.items() if key not in ours and key != "Manifest"}
    return {**ours, **rest, "Manifest": dict(image.manifest)}


def find_images(images: tuple[ArchiveImage, ...], reference: str) -> list[ArchiveImage]:
    """The images a reference picks: a tag (`app` meaning `app:latest`), an id or an id prefix."""
    hex_id = reference.removeprefix("sha256:")
    latest = f"{reference}:latest" if ":" not in reference.rpartition("/")[2] else None
    return [
        image
        for image in images
        if reference in image.tags
        or (latest is not None and latest in image.tags)
        or (len(hex_id) >= 4 and image.id.removeprefix("sha256:").startswith(hex_id))
    ]


def describe(image: ArchiveImage) -> str:
    """One line naming an image for an error that lists them."""
    name = ", ".join(image.tags) or "<none>"
    platform = f" {image.platform}" if image.platform else ""
    return f"{name}{platform} {image.id.removeprefix('sha256:')[:12]}"
