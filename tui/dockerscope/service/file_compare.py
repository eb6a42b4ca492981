"""One path in two images: both versions read (the first MiB of each, as the file view reads),
whether their bytes differ, and for text a unified diff of the two.

A version's bytes are hostile: they are only decoded and split here, never interpreted, and the
work they cause is bounded (a MiB per side, a number of lines per side that difflib compares)."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockerscope.service.compare import LayerComparison
from dockerscope.service.file_reading import (
    FILE_VIEW_LIMIT,
    ContentSink,
    FileContents,
    FileNotReadable,
    FileVersion,
    locate_final,
    read_file,
)
from dockerscope.service.final_filesystem import FinalEntry
from dockerscope.service.layer_files import LayerListing, ProgressCallback, ReadCancelled
from dockerscope.service.models import ImageDetail

if TYPE_CHECKING:
    from dockerscope.service.source import ImageSource

# Lines of context around each change, as `diff -u`.
DIFF_CONTEXT = 3
# difflib's matching can grow with the square of the lines: longer sides are not diffed.
MAX_DIFF_LINES = 20_000


@dataclass(frozen=True)
class ComparedImage:
    """One side of a comparison: the image, its final filesystem (`final_filesystems`) and the
    index of its top layer."""

    image_id: str
    final: Mapping[str, FinalEntry]
    top: int


@dataclass(frozen=True)
class VersionsCompared:
    """The two versions of `path`. `same`: whether the whole files hold the same bytes. `diff`:
    the unified diff lines when both are text (no NUL byte) of at most a MiB and
    `MAX_DIFF_LINES` lines; otherwise empty, and `no_diff` says why."""

    path: str
    before: FileContents
    after: FileContents
    same: bool
    diff: tuple[str, ...] = ()
    no_diff: str = ""


def is_text(data: bytes) -> bool:
    return b"\0" not in data


def diff_lines(before: bytes, after: bytes, before_name: str, after_name: str) -> list[str]:
    """`diff -u` of two texts (UTF-8, undecodable bytes replaced), without line ends."""
    return list(
        difflib.unified_diff(
            before.decode("utf-8", "replace").splitlines(),
            after.decode("utf-8", "replace").splitlines(),
            before_name,
            after_name,
            n=DIFF_CONTEXT,
            lineterm="",
        )
    )


class _Digest:
    """Hashes every byte of a file."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> bool:
        self.hash.update(data)
        return True

    def close(self) -> None:
        return None


async def _digest(source: ImageSource, image_id: str, version: FileVersion, cancel: threading.Event | None) -> bytes:
    digest = _Digest()

    def open_sink(layer: int, member: str, size: int) -> ContentSink:
        return digest

    await source.read_layer_files(image_id, {version.layer: [version.member]}, open_sink, cancel=cancel)
    if cancel is not None and cancel.is_set():
        raise ReadCancelled
    return digest.hash.digest()


def _final_version(side: ComparedImage, path: str) -> FileVersion:
    if side.top < 0:
        raise FileNotReadable("the image has no layers")
    return locate_final(side.final, side.top, path)


async def compare_versions(
    source: ImageSource,
    path: str,
    left: ComparedImage,
    right: ComparedImage,
    names: tuple[str, str] = ("a", "b"),
    *,
    cancel: threading.Event | None = None,
) -> VersionsCompared:
    """Read `path` as both images' final filesystems hold it (symlinks followed inside each
    image) and compare. `names` head the diff's two sides. Two files over a MiB of the same size
    whose first MiB is the same are read through to tell whether they differ. Raises
    FileNotReadable, ReadCancelled and the source's errors."""
    left_version, right_version = _final_version(left, path), _final_version(right, path)
    before = await read_file(source, left.image_id, left_version, cancel=cancel)
    after = await read_file(source, right.image_id, right_version, cancel=cancel)
    if before.size != after.size or before.data != after.data:
        same = False
    elif not before.truncated:
        same = True
    else:
        left_digest = await _digest(source, left.image_id, left_version, cancel)
        same = left_digest == await _digest(source, right.image_id, right_version, cancel)
    if before.truncated or after.truncated:
        return VersionsCompared(path, before, after, same, no_diff=f"larger than {FILE_VIEW_LIMIT >> 20} MiB")
    if not (is_text(before.data) and is_text(after.data)):
        return VersionsCompared(path, before, after, same, no_diff="binary")
    if max(before.data.count(b"\n"), after.data.count(b"\n")) > MAX_DIFF_LINES:
        return VersionsCompared(path, before, after, same, no_diff=f"more than {MAX_DIFF_LINES:,} lines")
    if same:
        return VersionsCompared(path, before, after, same)
    lines = await asyncio.to_thread(diff_lines, before.data, after.data, f"{names[0]}/{path}", f"{names[1]}/{path}")
    return VersionsCompared(path, before, after, same, diff=tuple(lines))


Listings = tuple[tuple[str, LayerListing], ...]


async def read_both_layers(
    source: ImageSource,
    left: ImageDetail,
    right: ImageDetail,
    layers: LayerComparison,
    *,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    on_side: Callable[[str], None] = lambda side: None,
) -> tuple[Listings, Listings]:
    """Both images' layer listings, every stack read once: when all of one image's layers are
    shared (it is the other's base), they are the other's first layers. `on_side("A")` or
    `on_side("B")` says which image is read next."""
    shared = len(layers.shared)
    if not layers.left_only:
        on_side("B")
        theirs = (await source.image_layers(right.id, cancel=cancel, on_progress=on_progress)).layers
        return theirs[:shared], theirs
    on_side("A")
    ours = (await source.image_layers(left.id, cancel=cancel, on_progress=on_progress)).layers
    if not layers.right_only:
        return ours, ours[:shared]
    on_side("B")
    return ours, (await source.image_layers(right.id, cancel=cancel, on_progress=on_progress)).layers
