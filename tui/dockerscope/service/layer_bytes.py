"""The bytes of files in an image's layers (and a container's writable layer), from a daemon.

1. The overlay fast path: each file is opened in the `diff` directory of its layer, when the
   layer directories pass the same checks as for listing them (`overlay_layer_dirs`: a local
   rootful daemon whose directories lie under its own data root). The path is walked one
   component at a time from the layer's root, relative to the directory before, and no symlink is
   followed anywhere on the way: nothing outside the layer is ever opened.
2. Otherwise the image export stream, read up to the wanted layers' files and no further
   (`read_export_files`).

A container's writable layer comes from its overlay upper directory (the same checks), else from
the daemon's archive endpoint (`GET /containers/{id}/archive?path=`, a read that works on a running
or stopped container).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, cast

import docker
from docker.errors import NotFound

from dockerscope.service.export_reader import read_export_files, read_layer_members
from dockerscope.service.file_reading import ContentSink, SinkOpener
from dockerscope.service.layer_contents import (
    EXPORT_CHUNK_SIZE,
    ContentsUnavailable,
    Daemon,
    SourceChoice,
    diff_ids,
    read_export_stream,
    read_watched,
)
from dockerscope.service.layer_files import ProgressCallback, ReadProgress, check_cancel
from dockerscope.service.overlay_reader import overlay_driver, overlay_layer_dirs
from dockerscope.service.values import text

# Bytes read from a file at a time: what a sink holds at most, whatever the file's size.
READ_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a fifo that took the place of the file meanwhile must not hang the open.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
# What opening a path gives when it is not there, not reachable through directories, or a symlink.
_ABSENT = frozenset((errno.ENOENT, errno.ENOTDIR, errno.ELOOP))


def open_layer_file(root_fd: int, path: str) -> int | None:
    """A descriptor of the regular file `path` (`LayerEntry.path` form) in the layer directory
    open as `root_fd`; None when it is not there, is not a regular file, or a symlink lies on the
    way. Each component is opened relative to the directory before it, with O_NOFOLLOW, so
    neither a symlink nor `..` can lead out of the layer. OSError for other failures (EACCES, EIO)."""
    parts = path.split("/")
    if any(part in ("", ".", "..") or "\0" in part for part in parts):
        return None
    directory = root_fd
    try:
        for part in parts[:-1]:
            child = os.open(part, _DIR_FLAGS, dir_fd=directory)
            if directory != root_fd:
                os.close(directory)  # one directory open at a time, however deep the path
            directory = child
        # lstat first: opening a device node can do things a read must not.
        listed = os.stat(parts[-1], dir_fd=directory, follow_symlinks=False)
        if not stat.S_ISREG(listed.st_mode):
            return None
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=directory)
    except OSError as error:
        if error.errno in _ABSENT:
            return None
        raise
    finally:
        if directory != root_fd:
            os.close(directory)
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode) or (found.st_dev, found.st_ino) != (listed.st_dev, listed.st_ino):
        os.close(fd)  # replaced between the two looks
        return None
    return fd


def copy_to_sink(fd: int, sink: ContentSink, cancel: threading.Event | None) -> int:
    """Read the open file into `sink` chunk by chunk until its end or until the sink wants no
    more, then close the sink; the bytes read."""
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    total = 0
    try:
        while True:
            check_cancel(cancel)
            count = os.readv(fd, [buffer])
            if not count:
                break
            total += count
            if not sink.write(view[:count]):
                break
    finally:
        sink.close()
    return total


def _read_from_directories(
    directories: Mapping[int, str],
    wanted: Mapping[int, Collection[str]],
    open_sink: SinkOpener,
    cancel: threading.Event | None,
    on_progress: ProgressCallback | None,
) -> None:
    """Each wanted file from its layer's directory. Every layer root is opened before any file is
    read, so a directory that went away (the image was removed) raises OSError before any sink
    has been opened, and the caller may turn to the export."""
    roots: dict[int, int] = {}
    try:
        for index in wanted:
            roots[index] = os.open(directories[index], _DIR_FLAGS)
        done = 0
        for layers_done, (index, paths) in enumerate(wanted.items(), 1):
            for path in paths:
                try:
                    fd = open_layer_file(roots[index], path)
                except OSError as error:
                    raise ContentsUnavailable(
                        f"cannot open /{path} in layer {index + 1}: {error.strerror or error}"
                    ) from None
                if fd is None:
                    continue
                try:
                    sink = open_sink(index, path, os.fstat(fd).st_size)
                    done += copy_to_sink(fd, sink, cancel)
                except OSError as error:
                    raise ContentsUnavailable(
                        f"cannot read /{path} in layer {index + 1}: {error.strerror or error}"
                    ) from None
                finally:
                    os.close(fd)
            if on_progress is not None:
                on_progress(ReadProgress(layers_done, len(wanted), done, None))
    finally:
        for root in roots.values():
            os.close(root)


def _read_image_files(
    daemon: Daemon,
    inspect: Mapping[str, Any],
    layers: Sequence[str],
    wanted: Mapping[int, Collection[str]],
    open_sink: SinkOpener,
    choice: SourceChoice,
    cancel: threading.Event | None,
    on_progress: ProgressCallback | None,
) -> str:
    """Files of the image's layers from their directories, else (a directory gone, or not
    readable here) from the export; where they came from."""
    graph_driver = inspect.get("GraphDriver")
    if choice is not SourceChoice.EXPORT:
        root = daemon.overlay_root()
        directories = overlay_layer_dirs(graph_driver, len(layers), root) if root is not None else None
        if directories is None and choice is SourceChoice.OVERLAY:
            raise ContentsUnavailable("overlay2 (or Podman overlay) layer directories are not readable here")
        if directories is not None:
            try:
                _read_from_directories(dict(enumerate(directories)), wanted, open_sink, cancel, on_progress)
                return overlay_driver(graph_driver)
            except OSError as error:
                if choice is SourceChoice.OVERLAY:
                    raise ContentsUnavailable(f"cannot open a layer directory: {error.strerror or error}") from error
    size = inspect.get("Size")
    total = size if isinstance(size, int) and size > 0 else None

    def report(layers_seen: int, bytes_done: int) -> None:
        if on_progress is not None:
            on_progress(ReadProgress(min(layers_seen, len(layers)), len(layers), bytes_done, total))

    def read(chunks: Iterator[bytes]) -> None:
        read_export_files(chunks, layers, wanted, open_sink, cancel=cancel, on_progress=report)

    read_export_stream(daemon.client, text(inspect.get("Id")), cancel, read)
    return "export"


def _read_writable(
    daemon: Daemon,
    container: Mapping[str, Any],
    index: int,
    paths: Collection[str],
    open_sink: SinkOpener,
    choice: SourceChoice,
    cancel: threading.Event | None,
) -> str:
    """Files of a container's writable layer: from its overlay upper directory when it passes the
    checks (and `choice` is not EXPORT), else one archive request per file."""
    graph_driver = container.get("GraphDriver")
    root = daemon.overlay_root() if choice is not SourceChoice.EXPORT else None
    upper = None
    if isinstance(graph_driver, Mapping) and isinstance(graph_driver.get("Data"), Mapping) and root is not None:
        only_upper = {"Name": graph_driver.get("Name"), "Data": {"UpperDir": graph_driver["Data"].get("UpperDir")}}
        upper = overlay_layer_dirs(only_upper, 1, root)
    if upper is None and choice is SourceChoice.OVERLAY:
        raise ContentsUnavailable("the container's overlay upper directory is not readable here")
    if upper is not None:
        try:
            _read_from_directories({index: upper[0]}, {index: paths}, open_sink, cancel, None)
            return f"{overlay_driver(graph_driver)} upper dir"
        except OSError as error:
            # The container was removed meanwhile: its archive request says so clearly.
            if choice is SourceChoice.OVERLAY:
                raise ContentsUnavailable(
                    f"cannot open the container's upper directory: {error.strerror or error}"
                ) from error
    container_id = text(container.get("Id"))
    for path in paths:
        check_cancel(cancel)
        try:
            read_watched(
                daemon.client,
                cancel,
                _archive_request(daemon.client, container_id, path),
                _member_reader(open_sink, index, path, cancel),
                f"the container's archive of /{path}",
            )
        except NotFound as error:
            if "no such container" in text(error.explanation).lower():
                raise
            # The path is gone from the container: no sink.
    return "container archive"


def _archive_request(client: docker.APIClient, container_id: str, path: str) -> Callable[[], Iterator[bytes]]:
    """`GET /containers/{id}/archive?path=/path`: a tar of that one file."""

    def request() -> Iterator[bytes]:
        stream, _ = client.get_archive(container_id, "/" + path, chunk_size=EXPORT_CHUNK_SIZE)
        return cast(Iterator[bytes], stream)

    return request


def _member_reader(
    open_sink: SinkOpener, index: int, path: str, cancel: threading.Event | None
) -> Callable[[Iterator[bytes]], None]:
    """Reads the archive of `path` (a tar holding it under its base name) into its sink."""

    def open_member(_member: str, size: int) -> ContentSink:
        return open_sink(index, path, size)

    def read(chunks: Iterator[bytes]) -> None:
        read_layer_members(chunks, [posixpath.basename(path)], open_member, cancel=cancel)

    return read


def read_layer_files(
    daemon: Daemon,
    image_id: str,
    wanted: Mapping[int, Collection[str]],
    open_sink: SinkOpener,
    *,
    container_id: str | None = None,
    choice: SourceChoice = SourceChoice.AUTO,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> str:
    """`ImageSource.read_layer_files` for a daemon (see there). Blocking: run it in a thread.
    `choice` forces a source: `EXPORT` the export stream and the container archive endpoint,
    `OVERLAY` the layer directories (ContentsUnavailable where they cannot be read)."""
    client = daemon.client
    container = client.inspect_container(container_id) if container_id is not None else None
    inspect = client.inspect_image(image_id)
    layers = diff_ids(inspect)
    if container is not None and text(container.get("Image")) != text(inspect.get("Id")):
        raise ContentsUnavailable("the container's image is not the image asked for")
    top = len(layers) + (1 if container is not None else 0)
    for index in wanted:
        if not 0 <= index < top:
            raise ContentsUnavailable(f"the image has no layer {index + 1}")
    image_wanted = {index: paths for index, paths in wanted.items() if index < len(layers) and paths}
    sources = []
    if image_wanted:
        sources.append(_read_image_files(daemon, inspect, layers, image_wanted, open_sink, choice, cancel, on_progress))
    writable = wanted.get(len(layers))
    if container is not None and writable:
        sources.append(_read_writable(daemon, container, len(layers), writable, open_sink, choice, cancel))
    return ", ".join(sources)
