"""Reading every layer of an image (and a container's writable layer) from the best source there is.

1. The disk cache, per diff id: a layer shared by many images is read once.
2. overlay2's layer directories, when the daemon is local and they are readable (root, same host):
   a directory walk, no layer bytes read.
3. Otherwise the image export stream (`GET /images/{id}/get`), of which only tar headers are parsed.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker

from dockerscope.service.export_reader import ExportFormatError, read_export
from dockerscope.service.file_analysis import ImageFiles, analyze_layers
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_files import (
    EntryType,
    LayerEntry,
    LayerListing,
    ProgressCallback,
    ReadProgress,
    check_cancel,
    gc_paused,
)
from dockerscope.service.overlay_reader import overlay_layer_dirs, read_layer_dir

# Bytes per read of the export stream: large reads keep the per-chunk Python work negligible.
EXPORT_CHUNK_SIZE = 4 * 1024 * 1024
WRITABLE_LAYER = "writable"


class SourceChoice(enum.Enum):
    AUTO = "auto"
    OVERLAY = "overlay"
    EXPORT = "export"


class ContentsUnavailable(Exception):
    """The source asked for cannot be used here (say, overlay2 directories out of reach)."""


@dataclass(frozen=True)
class ImageContents:
    """Every layer's changes of one image (and, for a container, its writable layer on top).

    `sources` tells where the listings came from, in order: `memory` (analysed before), `cache`,
    `overlay2`, `export`, and for a writable layer `overlay2 upper dir` or `docker diff`;
    `sizes_known` is False when the writable layer came from `docker diff`, which has no sizes."""

    files: ImageFiles
    sources: tuple[str, ...]
    seconds: float
    sizes_known: bool = True


class _Progress:
    def __init__(self, layer_count: int, bytes_total: int | None, callback: ProgressCallback | None) -> None:
        self.layer_count = layer_count
        self.bytes_total = bytes_total
        self.callback = callback
        self.layers_done = 0
        self.bytes_before = 0

    def report(self, bytes_in_layer: int = 0) -> None:
        if self.callback is not None:
            bytes_done = self.bytes_before + bytes_in_layer
            self.callback(ReadProgress(self.layers_done, self.layer_count, bytes_done, self.bytes_total))


def diff_ids(inspect: Mapping[str, Any]) -> list[str]:
    """An image's `RootFS.Layers` from its inspect document, oldest first."""
    return [str(diff_id) for diff_id in (inspect.get("RootFS") or {}).get("Layers") or ()]


def read_image_layers(
    client: docker.APIClient,
    inspect: Mapping[str, Any],
    *,
    choice: SourceChoice,
    cache: LayerCache | None,
    cancel: threading.Event | None,
    on_progress: ProgressCallback | None,
) -> tuple[list[tuple[str, LayerListing]], tuple[str, ...]]:
    """The listing of every layer of an image, oldest first, and the sources used. Blocking."""
    image_id = str(inspect.get("Id") or "")
    layers = diff_ids(inspect)
    size = inspect.get("Size")
    progress = _Progress(len(layers), size if isinstance(size, int) and size > 0 else None, on_progress)
    found = {diff_id: cache.get(diff_id) for diff_id in dict.fromkeys(layers)} if cache else {}
    listings = {diff_id: listing for diff_id, listing in found.items() if listing is not None}
    sources = ["cache"] if listings else []
    missing = [diff_id for diff_id in layers if diff_id not in listings]
    progress.layers_done = len(layers) - len(missing)
    if missing:
        directories = None
        if choice is not SourceChoice.EXPORT:
            directories = overlay_layer_dirs(inspect.get("GraphDriver"), len(layers))
            if directories is not None and _remaps_ids(client):
                directories = None
            if directories is None and choice is SourceChoice.OVERLAY:
                raise ContentsUnavailable("overlay2 layer directories are not readable here")
        if directories is not None:
            try:
                _read_directories(dict(zip(layers, directories, strict=True)), missing, listings, cancel, progress)
                sources.append("overlay2")
            except OSError as error:
                # A directory went away or turned unreadable mid-walk (the image was removed?).
                if choice is SourceChoice.OVERLAY:
                    raise ContentsUnavailable(f"cannot read a layer directory: {error}") from error
                directories = None
        if directories is None:
            sources.append("export")
            _read_export(client, image_id, layers, listings, cancel, progress)
        if cache is not None:
            for diff_id in dict.fromkeys(missing):
                cache.put(diff_id, listings[diff_id])
    progress.layers_done = len(layers)
    progress.report()
    return [(diff_id, listings[diff_id]) for diff_id in layers], tuple(sources)


def _remaps_ids(client: docker.APIClient) -> bool:
    """Whether the daemon stores files under shifted ids (userns-remap, rootless): its directories
    would show those, where its export shows the image's own."""
    options = client.info().get("SecurityOptions") or ()
    return any("name=userns" in str(option) or "name=rootless" in str(option) for option in options)


def _read_directories(
    directories: Mapping[str, str],
    missing: Sequence[str],
    listings: dict[str, LayerListing],
    cancel: threading.Event | None,
    progress: _Progress,
) -> None:
    for diff_id in dict.fromkeys(missing):
        listings[diff_id] = listing = read_layer_dir(directories[diff_id], cancel=cancel, on_bytes=progress.report)
        progress.layers_done += 1
        progress.bytes_before += sum(entry.size for entry in listing.entries if entry.type is EntryType.FILE)
        progress.report()


def _read_export(
    client: docker.APIClient,
    image_id: str,
    layers: Sequence[str],
    listings: dict[str, LayerListing],
    cancel: threading.Event | None,
    progress: _Progress,
) -> None:
    def report(layers_done: int, bytes_done: int) -> None:
        progress.layers_done = layers_done
        progress.report(bytes_done)

    stream = client.get_image(image_id, chunk_size=EXPORT_CHUNK_SIZE)
    try:
        exported = read_export(stream, cancel=cancel, on_progress=report)
    except ExportFormatError as error:
        raise ContentsUnavailable(f"the image export could not be read: {error}") from error
    finally:
        stream.close()
    if [diff_id for diff_id, _ in exported] != list(layers):
        raise ContentsUnavailable("the export's layers do not match the image's (was it replaced meanwhile?)")
    listings.update(exported)


def analyze_image(
    client: docker.APIClient,
    image_id: str,
    *,
    choice: SourceChoice = SourceChoice.AUTO,
    cache: LayerCache | None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImageContents:
    """Read and analyse every layer of an image. Blocking: run it in a thread."""
    started = time.perf_counter()
    inspect = client.inspect_image(image_id)
    with gc_paused():
        layers, sources = read_image_layers(
            client, inspect, choice=choice, cache=cache, cancel=cancel, on_progress=on_progress
        )
        check_cancel(cancel)
        files = analyze_layers(layers)
    return ImageContents(files, sources, time.perf_counter() - started)


def analyze_container(
    client: docker.APIClient,
    container_id: str,
    *,
    cache: LayerCache | None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImageContents:
    """A container's image layers with its writable layer on top, whose changes are never cached
    (they change while it runs). The writable layer comes from its overlay2 upper directory when
    readable, else from `docker diff` (paths and kinds only: no sizes, modes or owners)."""
    started = time.perf_counter()
    container = client.inspect_container(container_id)
    inspect = client.inspect_image(str(container.get("Image") or ""))
    with gc_paused():
        layers, sources = read_image_layers(
            client, inspect, choice=SourceChoice.AUTO, cache=cache, cancel=cancel, on_progress=on_progress
        )
    data = (container.get("GraphDriver") or {}).get("Data") or {}
    upper = overlay_layer_dirs({"Name": "overlay2", "Data": {"UpperDir": data.get("UpperDir")}}, 1)
    writable = None
    if upper is not None:
        try:
            writable = read_layer_dir(upper[0], cancel=cancel)
            sources = (*sources, "overlay2 upper dir")
        except OSError:
            upper = None  # the container was removed mid-walk; docker diff says so clearly
    if writable is None:
        writable = listing_from_diff(client.diff(container_id) or ())
        sources = (*sources, "docker diff")
    check_cancel(cancel)
    with gc_paused():
        files = analyze_layers([*layers, (WRITABLE_LAYER, writable)])
    return ImageContents(files, sources, time.perf_counter() - started, sizes_known=upper is not None)


def listing_from_diff(changes: Sequence[Mapping[str, Any]]) -> LayerListing:
    """A writable layer from `docker diff`: added and changed paths become entries (directories
    where another path lies below them), deleted paths whiteouts. Sizes and owners are unknown."""
    kept = [str(change.get("Path") or "").strip("/") for change in changes if change.get("Kind") in (0, 1)]
    deleted = frozenset(str(change.get("Path") or "").strip("/") for change in changes if change.get("Kind") == 2)
    parents = {path.rpartition("/")[0] for path in kept} | {path.rpartition("/")[0] for path in deleted}
    entries = tuple(
        LayerEntry(path, EntryType.DIR if path in parents else EntryType.FILE, 0, 0, 0, 0) for path in kept if path
    )
    return LayerListing(entries=entries, deleted=deleted - {""})
