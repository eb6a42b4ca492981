"""Reading every layer of an image (and a container's writable layer) from the best source there is.

1. The disk cache, per diff id: first the listings verified against their diff id, which any daemon
   may use, then the ones this daemon's own overlay2 directories gave (a daemon can claim any diff
   id for any directory, so those are never shown for another daemon's image).
2. The layer directories of Docker's overlay2 or Podman's overlay driver, when the daemon is on a
   local unix socket and its directories lie under its own data root, root's alone (root, same
   host): a directory walk, no layer bytes read.
3. Otherwise the image export stream (`GET /images/{id}/get`), of which only tar headers are parsed
   and every layer stream is hashed and checked against its diff id.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import docker

from dockerscope.service import export_watch
from dockerscope.service.export_reader import ExportedLayer, ExportFormatError, read_export
from dockerscope.service.file_analysis import ImageFiles, analyze_layers
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_files import (
    EntryType,
    LayerEntry,
    LayerListing,
    ProgressCallback,
    ReadCancelled,
    ReadProgress,
    check_cancel,
    gc_paused,
)
from dockerscope.service.overlay_reader import overlay_driver, overlay_layer_dirs, read_layer_dir
from dockerscope.service.values import text

# Bytes per read of the export stream: large reads keep the per-chunk Python work negligible.
EXPORT_CHUNK_SIZE = 4 * 1024 * 1024
WRITABLE_LAYER = "writable"
T = TypeVar("T")


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
    the driver whose directories were walked (`overlay2` for Docker, `overlay` for Podman),
    `export`, and for a writable layer `<driver> upper dir` or `docker diff`;
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
    """An image's `RootFS.Layers` from its inspect document, oldest first; none when the document
    holds no list there."""
    root_fs = inspect.get("RootFS")
    layers = root_fs.get("Layers") if isinstance(root_fs, Mapping) else None
    return [text(diff_id) for diff_id in layers] if isinstance(layers, list) else []


class Daemon:
    """What reading layers needs to know about the daemon at `host`, from one `GET /info` asked
    only when needed and at most once."""

    def __init__(self, client: docker.APIClient, host: str, info: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self.host = host
        self._info: Mapping[str, Any] | None = info

    @property
    def known_info(self) -> Mapping[str, Any] | None:
        """The `/info` answer, once asked (or given): a caller may keep it for the next `Daemon`."""
        return self._info

    @property
    def local(self) -> bool:
        """Whether the daemon is on this machine's unix socket: its directories are then this
        machine's. Any other host's paths name nothing here."""
        return self.host.startswith("unix://")

    def info(self) -> Mapping[str, Any]:
        if self._info is None:
            info = self.client.info()
            self._info = info if isinstance(info, Mapping) else {}
        return self._info

    def scope(self) -> str | None:
        """The key of this daemon's own store in the layer cache: its ID and where it listens;
        None (nothing cached) for a daemon that names no ID or is not local."""
        if not self.local:
            return None
        info = self.info()
        if _is_podman(info):
            # Podman makes a new ID up for every `/info` answer: its storage is what stays.
            root = info.get("DockerRootDir")
            return f"podman {root} {self.host}" if isinstance(root, str) and root else None
        daemon_id = info.get("ID")
        if not isinstance(daemon_id, str) or not daemon_id:
            return None
        return f"{daemon_id} {self.host}"

    def overlay_root(self) -> str | None:
        """The daemon's `DockerRootDir` when its overlay2 directories may be walked: a local daemon
        that does not remap user ids."""
        if not self.local:
            return None
        info = self.info()
        rootless_podman = _is_podman(info) and info.get("Rootless") is not False
        if rootless_podman or _remaps_ids(info.get("SecurityOptions")):
            return None
        root = info.get("DockerRootDir")
        return root if isinstance(root, str) else None


def _is_podman(info: Mapping[str, Any]) -> bool:
    """Whether a `/info` answer is Podman's (its Docker-compatible API adds `BuildahVersion`)."""
    return "BuildahVersion" in info


def _remaps_ids(options: object) -> bool:
    """Whether the daemon stores files under shifted ids (userns-remap, rootless), or may: its
    directories would show those where its export shows the image's own."""
    if options is None:
        return False
    if not isinstance(options, list):
        return True
    return any("name=userns" in text(option) or "name=rootless" in text(option) for option in options)


def read_image_layers(
    daemon: Daemon,
    inspect: Mapping[str, Any],
    *,
    choice: SourceChoice,
    cache: LayerCache | None,
    cancel: threading.Event | None,
    on_progress: ProgressCallback | None,
) -> tuple[list[tuple[str, LayerListing]], tuple[str, ...]]:
    """The listing of every layer of an image, oldest first, and the sources used. Blocking."""
    client = daemon.client
    image_id = str(inspect.get("Id") or "")
    layers = diff_ids(inspect)
    size = inspect.get("Size")
    progress = _Progress(len(layers), size if isinstance(size, int) and size > 0 else None, on_progress)
    listings: dict[str, LayerListing] = {}
    verified: set[str] = set()
    if cache is not None:
        for diff_id in dict.fromkeys(layers):
            if (listing := cache.get(diff_id)) is not None:
                listings[diff_id] = listing
                verified.add(diff_id)
        unread = [diff_id for diff_id in dict.fromkeys(layers) if diff_id not in listings]
        scope = daemon.scope() if unread else None
        if scope is not None:
            for diff_id in unread:
                if (listing := cache.get(diff_id, scope=scope)) is not None:
                    listings[diff_id] = listing
    sources = ["cache"] if listings else []
    missing = [diff_id for diff_id in layers if diff_id not in listings]
    progress.layers_done = len(layers) - len(missing)
    if missing:
        directories = None
        if choice is not SourceChoice.EXPORT:
            root = daemon.overlay_root()
            if root is not None:
                directories = overlay_layer_dirs(inspect.get("GraphDriver"), len(layers), root)
            if directories is None and choice is SourceChoice.OVERLAY:
                raise ContentsUnavailable("overlay2 (or Podman overlay) layer directories are not readable here")
        if directories is not None:
            try:
                _read_directories(dict(zip(layers, directories, strict=True)), missing, listings, cancel, progress)
                sources.append(overlay_driver(inspect.get("GraphDriver")))
            except OSError as error:
                # A directory went away or turned unreadable mid-walk (the image was removed?), or
                # nests too deep to walk.
                if choice is SourceChoice.OVERLAY:
                    raise ContentsUnavailable(f"cannot read a layer directory: {error}") from error
                directories = None
            else:
                scope = daemon.scope()
                if cache is not None and scope is not None:
                    for diff_id in dict.fromkeys(missing):
                        cache.put(diff_id, listings[diff_id], scope=scope)
        if directories is None:
            sources.append("export")
            exported = _read_export(client, image_id, layers, cancel, progress)
            for layer in exported:
                listings[layer.diff_id] = layer.listing
                if cache is not None and layer.verified and layer.diff_id not in verified:
                    verified.add(layer.diff_id)
                    cache.put(layer.diff_id, layer.listing)
    progress.layers_done = len(layers)
    progress.report()
    return [(diff_id, listings[diff_id]) for diff_id in layers], tuple(sources)


def _read_directories(
    directories: Mapping[str, str],
    missing: Sequence[str],
    listings: dict[str, LayerListing],
    cancel: threading.Event | None,
    progress: _Progress,
) -> None:
    for diff_id in dict.fromkeys(missing):
        layer_bytes = _LayerBytes(progress)
        listings[diff_id] = read_layer_dir(directories[diff_id], cancel=cancel, on_bytes=layer_bytes.report)
        progress.layers_done += 1
        progress.bytes_before += layer_bytes.seen
        progress.report()


class _LayerBytes:
    """Passes a layer walk's byte counts on to the progress, keeping the last: the walk's final
    report is the layer's file bytes, with each hard-linked inode counted once, so nothing has to
    go over the listing again to sum its files."""

    def __init__(self, progress: _Progress) -> None:
        self.progress = progress
        self.seen = 0

    def report(self, bytes_done: int) -> None:
        self.seen = bytes_done
        self.progress.report(bytes_done)


def _read_export(
    client: docker.APIClient,
    image_id: str,
    layers: Sequence[str],
    cancel: threading.Event | None,
    progress: _Progress,
) -> list[ExportedLayer]:
    """Every layer of the image from its export, each one's stream hashed and checked against the
    diff id the image names (`ContentsUnavailable` when one does not match)."""

    def report(layers_done: int, bytes_done: int) -> None:
        progress.layers_done = layers_done
        progress.report(bytes_done)

    exported = read_export_stream(
        client,
        image_id,
        cancel,
        lambda chunks: read_export(chunks, cancel=cancel, on_progress=report, expected=layers),
    )
    if [layer.diff_id for layer in exported] != list(layers):
        raise ContentsUnavailable("the export's layers do not match the image's (was it replaced meanwhile?)")
    return exported


def read_export_stream(
    client: docker.APIClient,
    image_id: str,
    cancel: threading.Event | None,
    read: Callable[[Iterator[bytes]], T],
) -> T:
    """`read` over the image's export stream (`GET /images/{id}/get`); see `read_watched`."""
    return read_watched(
        client, cancel, lambda: client.get_image(image_id, chunk_size=EXPORT_CHUNK_SIZE), read, "the image export"
    )


def read_watched(
    client: docker.APIClient,
    cancel: threading.Event | None,
    request: Callable[[], Iterator[bytes]],
    read: Callable[[Iterator[bytes]], T],
    what: str,
) -> T:
    """`read` over the stream `request` opens (on `client`), under the export watchdog. A read
    that returns before the end of the stream hangs its request up. A stall, or a stream `read`
    cannot parse (`ExportFormatError`), raises `ContentsUnavailable` saying so (`what` names it)."""
    watchdog = export_watch.ExportWatchdog(client, cancel)
    try:
        with watchdog:
            stream = request()
            try:
                return read(watchdog.watch(stream))
            finally:
                if not watchdog.ended:
                    watchdog.hang_up()
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
    except ReadCancelled:
        raise
    except Exception as error:
        # The watchdog ends the request by shutting its socket: say why, not how it broke.
        check_cancel(cancel)
        if watchdog.stalled:
            stall = f"the daemon sent nothing for {export_watch.EXPORT_STALL_SECONDS:g} s; the read was given up"
            raise ContentsUnavailable(stall) from error
        if isinstance(error, ExportFormatError):
            raise ContentsUnavailable(f"{what} could not be read: {error}") from error
        raise


def analyze_image(
    client: docker.APIClient,
    image_id: str,
    *,
    host: str,
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
            Daemon(client, host), inspect, choice=choice, cache=cache, cancel=cancel, on_progress=on_progress
        )
        check_cancel(cancel)
        files = analyze_layers(layers)
    return ImageContents(files, sources, time.perf_counter() - started)


def analyze_container(
    client: docker.APIClient,
    container_id: str,
    *,
    host: str,
    cache: LayerCache | None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImageContents:
    """A container's image layers with its writable layer on top, whose changes are never cached
    (they change while it runs). The writable layer comes from its overlay upper directory when
    it passes the same checks as an image's layer directories, else from `docker diff` (paths and
    kinds only: no sizes, modes or owners)."""
    started = time.perf_counter()
    daemon = Daemon(client, host)
    container = client.inspect_container(container_id)
    inspect = client.inspect_image(text(container.get("Image")))
    with gc_paused():
        layers, sources = read_image_layers(
            daemon, inspect, choice=SourceChoice.AUTO, cache=cache, cancel=cancel, on_progress=on_progress
        )
    upper = None
    graph_driver = container.get("GraphDriver")
    root = daemon.overlay_root()
    if isinstance(graph_driver, Mapping) and isinstance(graph_driver.get("Data"), Mapping) and root is not None:
        only_upper = {"Name": graph_driver.get("Name"), "Data": {"UpperDir": graph_driver["Data"].get("UpperDir")}}
        upper = overlay_layer_dirs(only_upper, 1, root)
    writable = None
    if upper is not None:
        try:
            writable = read_layer_dir(upper[0], cancel=cancel)
            sources = (*sources, f"{overlay_driver(graph_driver)} upper dir")
        except OSError:
            upper = None  # removed mid-walk (docker diff says so clearly), or nested too deep
    if writable is None:
        changes = client.diff(container_id)
        writable = listing_from_diff(changes if isinstance(changes, list) else [])
        sources = (*sources, "docker diff")
    check_cancel(cancel)
    with gc_paused():
        files = analyze_layers([*layers, (WRITABLE_LAYER, writable)])
    return ImageContents(files, sources, time.perf_counter() - started, sizes_known=upper is not None)


def listing_from_diff(changes: Sequence[Mapping[str, Any]]) -> LayerListing:
    """A writable layer from `docker diff`: added and changed paths become entries (directories
    where another path lies below them), deleted paths whiteouts. Sizes and owners are unknown."""
    changes = [change for change in changes if isinstance(change, Mapping)]
    kept = [text(change.get("Path")).strip("/") for change in changes if change.get("Kind") in (0, 1)]
    deleted = frozenset(text(change.get("Path")).strip("/") for change in changes if change.get("Kind") == 2)
    parents = {path.rpartition("/")[0] for path in kept} | {path.rpartition("/")[0] for path in deleted}
    entries = tuple(
        LayerEntry(path, EntryType.DIR if path in parents else EntryType.FILE, 0, 0, 0, 0) for path in kept if path
    )
    return LayerListing(entries=entries, deleted=deleted - {""})
