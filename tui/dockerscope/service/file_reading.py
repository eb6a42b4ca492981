"""Where one path's bytes lie as of a layer, and what a source hands over when asked for them.

An image's layers only list paths; the bytes of a path as of layer N are those of the highest
layer at or below N that wrote it, unless a layer between removed it, made a directory above it
opaque, or replaced such a directory by a file. Symlinks on the way are followed inside the image
(an absolute target starts at the image's root, `..` stops there, as in a chroot), a hard link
names the path of its own layer that carries its bytes. Pure functions over `ImageFiles`.

Sources deliver bytes through `ImageSource.read_layer_files`: the caller names, per layer, the
paths it wants, and gets each one's bytes pushed into a `ContentSink` it opens, in the reading
thread. A sink says when it has enough, so showing the first MiB of a 1 GB file reads (at most)
one more chunk than that and holds no more than a chunk in memory.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dockerscope.service.file_analysis import FileChange, FileStatus, ImageFiles
from dockerscope.service.layer_files import EntryType, LayerEntry, ReadCancelled, normalize_path

if TYPE_CHECKING:
    from dockerscope.service.source import ImageSource

# How much of a file the file view reads and shows.
FILE_VIEW_LIMIT = 1 << 20
# Symlinks followed while resolving one path, as the kernel's own limit.
MAX_LINK_HOPS = 40


class ContentSink(Protocol):
    """Takes one file's bytes in order, in the reading thread. `write` may get a memoryview that
    is only valid during the call; it returns False once it wants no more (the reader then skips
    the rest of that file). `close` is called once, after the last write or the first False."""

    def write(self, data: bytes | memoryview) -> bool: ...

    def close(self) -> None: ...


# open_sink(layer index, path in that layer, the file's size): called once per wanted path found.
SinkOpener = Callable[[int, str, int], ContentSink]


class SinkFailures:
    """A `SinkOpener` that passes on another's sinks and keeps the first exception one of them (or
    the opener) raised: a source raises that one as it was, not as a failure of its own (a full
    disk while extracting is not an unreachable daemon)."""

    def __init__(self, open_sink: SinkOpener) -> None:
        self._open_sink = open_sink
        self.error: BaseException | None = None

    def __call__(self, layer: int, path: str, size: int) -> ContentSink:
        try:
            return _Watched(self._open_sink(layer, path, size), self)
        except BaseException as error:
            self.error = self.error or error
            raise

    def raise_kept(self) -> None:
        """Raise the kept exception, if any."""
        if self.error is not None:
            raise self.error


class _Watched:
    def __init__(self, sink: ContentSink, failures: SinkFailures) -> None:
        self._sink = sink
        self._failures = failures

    def write(self, data: bytes | memoryview) -> bool:
        try:
            return self._sink.write(data)
        except BaseException as error:
            self._failures.error = self._failures.error or error
            raise

    def close(self) -> None:
        try:
            self._sink.close()
        except BaseException as error:
            self._failures.error = self._failures.error or error
            raise


class FileNotReadable(Exception):
    """The path has no bytes to show as of that layer: not there, a directory or device, a
    symlink that leads nowhere or loops. The message says which, in plain words."""


@dataclass(frozen=True)
class FileVersion:
    """Where the bytes of `asked` as of layer `as_of` are: the regular file `path` (after
    following symlinks) that layer `layer` wrote, whose bytes that layer keeps under `member`
    (the path itself, or the path a hard link names). `followed` lists the symlinks followed on
    the way, as "link → target"."""

    asked: str
    as_of: int
    path: str
    layer: int
    member: str
    entry: LayerEntry
    followed: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileContents:
    """The first `len(data)` bytes of a file version (at most the limit asked for) and its whole
    size; `source` says where they were read from."""

    version: FileVersion
    data: bytes
    size: int
    source: str
    seconds: float

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.size


def _prefixes(path: str) -> list[str]:
    """`a/b/c` -> `a`, `a/b`, `a/b/c`."""
    parts = path.split("/")
    return ["/".join(parts[: count + 1]) for count in range(len(parts))]


def _states(files: ImageFiles, as_of: int, path: str) -> dict[str, tuple[LayerEntry, int] | None]:
    """What each prefix of `path` is as of layer `as_of`, from the top down to the first that is
    missing or not a directory: the entry and the layer that wrote it, or None. A prefix written
    below the last layer that removed a directory above it, or replaced one by a file, is gone
    (within one layer, removals come before what it writes). One pass over the layers' changes."""
    prefixes = _prefixes(path)
    history: dict[str, list[FileChange]] = {prefix: [] for prefix in prefixes}
    for layer in files.layers[: as_of + 1]:
        for change in layer.changes:
            events = history.get(change.path)
            if events is not None:
                events.append(change)
    states: dict[str, tuple[LayerEntry, int] | None] = {}
    cutoff = -1
    for prefix in prefixes:
        state: tuple[LayerEntry, int] | None = None
        for change in history[prefix]:
            if change.status is FileStatus.REMOVED or change.entry is None:
                state = None
            elif state is None or change.status is not FileStatus.UNCHANGED:
                state = (change.entry, change.layer)
        if state is not None and state[1] < cutoff:
            state = None
        states[prefix] = state
        if state is None or state[0].type is not EntryType.DIR:
            break
        cutoff = max(cutoff, max((change.layer for change in history[prefix] if _ends_below(change)), default=-1))
    return states


def _ends_below(change: FileChange) -> bool:
    """Whether a change to a directory's path takes away everything below it."""
    return change.status is FileStatus.REMOVED or change.entry is None or change.entry.type is not EntryType.DIR


def _link_target(link_path: str, target: str) -> str:
    """Where a symlink at `link_path` points inside the image: absolute targets start at the
    image's root, relative ones at the link's directory, and `..` never leaves the root."""
    base = "" if target.startswith("/") else posixpath.dirname(link_path)
    return normalize_path(posixpath.join("/", base, target))


def locate_file(files: ImageFiles, as_of: int, path: str) -> FileVersion:
    """The regular file `path` names as of layer `as_of`, symlinks followed inside the image.
    Raises FileNotReadable."""
    asked = current = normalize_path(path)
    followed: list[str] = []
    for _ in range(MAX_LINK_HOPS + 1):
        if not current:
            raise FileNotReadable("/ is a directory")
        states = _states(files, as_of, current)
        for prefix in _prefixes(current):
            state = states.get(prefix)
            if state is None:
                raise FileNotReadable(f"/{prefix} is not in the image as of layer {as_of + 1}")
            entry, layer = state
            last = prefix == current
            if entry.type is EntryType.SYMLINK:
                target = _link_target(prefix, entry.link)
                followed.append(f"/{prefix} → /{target}")
                current = normalize_path(target + current[len(prefix) :])
                break
            if last:
                return _version(asked, as_of, current, entry, layer, tuple(followed))
            if entry.type is not EntryType.DIR:
                raise FileNotReadable(f"/{prefix} is not a directory")
    raise FileNotReadable(f"more than {MAX_LINK_HOPS} symlinks on the way to /{asked}")


def _version(
    asked: str, as_of: int, path: str, entry: LayerEntry, layer: int, followed: tuple[str, ...]
) -> FileVersion:
    if entry.type is EntryType.DIR:
        raise FileNotReadable(f"/{path} is a directory")
    if entry.type is EntryType.OTHER:
        raise FileNotReadable(f"/{path} is a device, fifo or socket: it has no contents")
    member = normalize_path(entry.link) if entry.type is EntryType.HARDLINK else path
    return FileVersion(asked, as_of, path, layer, member, entry, followed)


class _Head:
    """Keeps the first `limit` bytes of a file."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.kept = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> bool:
        room = self.limit - self.kept
        if room > 0:
            part = bytes(data[:room])
            self.parts.append(part)
            self.kept += len(part)
        return self.kept < self.limit

    def close(self) -> None:
        self.closed = True


async def read_file(
    source: ImageSource,
    image_id: str,
    version: FileVersion,
    *,
    container_id: str | None = None,
    limit: int = FILE_VIEW_LIMIT,
    cancel: threading.Event | None = None,
) -> FileContents:
    """The first `limit` bytes of a located file version. Raises FileNotReadable when the source
    does not have that path where its listing said (the image changed meanwhile?)."""
    started = time.perf_counter()
    head = _Head(limit)
    opened: list[int] = []

    def open_sink(layer: int, member: str, size: int) -> ContentSink:
        opened.append(size)
        return head

    where = await source.read_layer_files(
        image_id, {version.layer: [version.member]}, open_sink, container_id=container_id, cancel=cancel
    )
    if cancel is not None and cancel.is_set():
        raise ReadCancelled
    if not opened:
        raise FileNotReadable(f"/{version.member} was not found in layer {version.layer + 1} ({where})")
    return FileContents(version, b"".join(head.parts), opened[0], where, time.perf_counter() - started)
