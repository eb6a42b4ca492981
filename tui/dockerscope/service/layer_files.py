"""What one layer holds, as both layer sources report it: the overlay2 directory walk and the tar
headers of an image export give the same `LayerListing` for the same layer."""

from __future__ import annotations

import contextlib
import enum
import gc
import posixpath
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple


class EntryType(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    # A second name for a file of the same layer; `link` names the entry that carries the bytes.
    HARDLINK = "hardlink"
    # Devices, fifos, sockets.
    OTHER = "other"


class LayerEntry(NamedTuple):
    """One path a layer writes. A NamedTuple rather than a dataclass: a big layer has tens of
    thousands of them, and tuples are several times cheaper to make.

    `path` is relative to the root, without a leading or trailing slash (`usr/bin/env`). `size` is
    the content size of a file, and of the file a hard link names; 0 for everything else (a
    symlink's own length is not content). `mode` holds the permission bits (`st_mode & 0o7777`).
    `link` is a symlink's target or the path a hard link names."""

    path: str
    type: EntryType
    size: int
    mode: int
    uid: int
    gid: int
    link: str = ""


@dataclass(frozen=True)
class LayerListing:
    """Everything one layer writes: its entries (in no promised order), the paths it deletes
    (whiteouts: `.wh.NAME` in a tar, a 0/0 character device on overlay2) and its opaque
    directories (`.wh..wh..opq` in a tar, the `trusted.overlay.opaque` xattr on overlay2), whose
    lower contents it hides. An opaque directory is also among the entries."""

    entries: tuple[LayerEntry, ...]
    deleted: frozenset[str] = frozenset()
    opaque: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReadProgress:
    """How far reading an image's layers has come. `bytes_total` is an estimate (the layers'
    uncompressed sizes), None when unknown."""

    layers_done: int
    layer_count: int
    bytes_done: int
    bytes_total: int | None


ProgressCallback = Callable[[ReadProgress], None]


class ReadCancelled(Exception):
    """The reader saw its cancel event set and stopped."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ReadCancelled


def normalize_path(name: str) -> str:
    """A layer path in `LayerEntry` form: `./usr/bin/` and `/usr/bin` both give `usr/bin`; the root
    itself gives an empty string."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return path


class _CollectorPauses:
    """Pauses of the cyclic garbage collector that may overlap, in any threads: it is held off from
    the first until the last ends, then enabled again if it was enabled before the first. (Each
    pause reading `gc.isenabled()` for itself could leave it off for good: a pause that looks while
    another holds it off, and disables after that other re-enabled it, never re-enables it.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if not self._count:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1
                if not self._count and self._was_enabled:
                    gc.enable()


_collector = _CollectorPauses()


def gc_paused() -> contextlib.AbstractContextManager[None]:
    """Hold off the cyclic garbage collector while building many tuples that form no cycles. Each
    entry holds an `EntryType` member, so the collector cannot untrack the entries and would
    traverse them over and over as they are made: it halves the time to read or analyse a big
    layer. Pauses in several threads may overlap."""
    return _collector.paused()
