"""An on-disk cache of layer listings, one file per diff id.

A diff id is the digest of the layer's uncompressed tar, so a cached listing is never stale: a layer
shared by many images is read once, and reopening it costs one small file read. The cache is an
optimisation only: every failure (a corrupt file, an unwritable directory) is a miss, never an error.

File format: a header line naming the format version, then a zlib stream of one JSON object holding
the listing as columns. Columns that repeat (type, mode, uid, gid, link) are stored as runs, which
makes them nearly free to parse. JSON keeps any `str` exactly: it is written with `ensure_ascii=False`
and encoded with `surrogatepass`, so lone surrogates (undecodable file names) survive, and a
surrogate pair of separate code points is not merged into one character as `\\uXXXX` escapes would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, groupby, repeat
from pathlib import Path
from typing import Any, TypeVar

from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, gc_paused

# A listing costs about 7 bytes per entry on disk: this holds about 19 million entries, the
# listings of several hundred GB of typical images, yet is small next to the images themselves.
DEFAULT_MAX_BYTES = 128 * 1024 * 1024

_VERSION = 1
_HEADER = f"dockerscope layer listing {_VERSION}\n".encode()
# The version is also in the file name, so two dockerscope versions sharing a cache do not keep
# discarding each other's files; the other version's files age out by LRU.
_SUFFIX = f".v{_VERSION}"
_DIFF_ID = re.compile(r"sha256:([0-9a-f]{64})")
_CACHE_FILE = re.compile(r"[0-9a-f]{64}\.v[0-9]+")
_TEMP_FILE = re.compile(r"\.[0-9a-f]{64}\.v[0-9]+\.[a-z0-9_]+\.tmp")
# A temp file this old was left by a process that died between writing and renaming it.
_STALE_TEMP_SECONDS = 3600
# Level 1 compresses a 60,000-entry listing about 8x in a few milliseconds; higher levels gain
# little more and cost several times the time.
_ZLIB_LEVEL = 1
_TYPES = {entry_type.value: entry_type for entry_type in EntryType}
# Everything decoding a damaged or foreign file can raise (UnicodeDecodeError and JSONDecodeError
# are ValueErrors); any of them means the file is unusable.
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, zlib.error)

_T = TypeVar("_T")


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/dockerscope/layers`, or `~/.cache/...` when that is unset, empty or relative
    (the XDG base directory spec says to ignore a relative path)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "dockerscope" / "layers"


class LayerCache:
    """Layer listings by diff id, in a directory bounded to `max_bytes`: after each `put`, the least
    recently used files (by mtime, which `get` refreshes) go until the rest fit. Safe to share
    between threads and processes: writes are atomic renames, and losing a file is only a miss."""

    def __init__(self, directory: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._directory = directory if directory is not None else default_cache_dir()
        self._max_bytes = max_bytes

    def get(self, diff_id: str) -> LayerListing | None:
        name = _file_name(diff_id)
        if name is None:
            return None
        path = self._directory / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            _remove(path)
            return None
        listing = _decode(data, diff_id)
        if listing is None:
            _remove(path)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return listing

    def put(self, diff_id: str, listing: LayerListing) -> None:
        name = _file_name(diff_id)
        if name is None:
            return
        data = _encode(diff_id, listing)
        if len(data) > self._max_bytes:
            return
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._write(name, data)
            self._evict(keep=name)
        except OSError:
            return

    def _write(self, name: str, data: bytes) -> None:
        """Write through a temp file and rename it into place, so no reader ever sees half a file.
        No fsync: a file cut short by a power loss fails its zlib check and is a miss."""
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self._directory)
        try:
            with open(fd, "wb") as file:
                file.write(data)
            os.replace(temp, self._directory / name)
        except BaseException:
            _remove(Path(temp))
            raise

    def _evict(self, keep: str) -> None:
        """Delete the least recently used cache files until the directory fits `max_bytes`; never
        `keep`, the file just written. One scandir; files another process removes meanwhile are
        skipped."""
        files: list[tuple[int, str, int]] = []
        total = 0
        stale = time.time() - _STALE_TEMP_SECONDS
        with os.scandir(self._directory) as entries:
            for entry in entries:
                is_cache = _CACHE_FILE.fullmatch(entry.name) is not None
                if not is_cache and _TEMP_FILE.fullmatch(entry.name) is None:
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                if is_cache:
                    files.append((info.st_mtime_ns, entry.name, info.st_size))
                    total += info.st_size
                elif info.st_mtime < stale:
                    _remove(Path(entry.path))
        files.sort()
        for _, name, size in files:
            if total <= self._max_bytes:
                break
            if name != keep and _remove(self._directory / name):
                total -= size


def _file_name(diff_id: str) -> str | None:
    """The cache file of a diff id; None for anything but `sha256:` and 64 lowercase hex digits, so
    no id can name a path outside the directory."""
    match = _DIFF_ID.fullmatch(diff_id)
    return None if match is None else match[1] + _SUFFIX


def _remove(path: Path) -> bool:
    """Unlink a file; False when it could not be (it is gone already when that is FileNotFoundError)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _runs(column: Iterable[_T]) -> tuple[list[_T], list[int]]:
    values: list[_T] = []
    counts: list[int] = []
    for value, group in groupby(column):
        values.append(value)
        counts.append(sum(1 for _ in group))
    return values, counts


def _expand(values: Sequence[_T], counts: Sequence[int], length: int) -> Iterator[_T]:
    """The column the runs stand for. Damaged counts (a negative one offsetting a huge one) are an
    error, not a column of the wrong length."""
    if len(values) != len(counts) or sum(counts) != length or (counts and min(counts) < 1):
        raise ValueError("runs do not match the column length")
    return chain.from_iterable(map(repeat, values, counts))


def _encode(diff_id: str, listing: LayerListing) -> bytes:
    paths, types, sizes, modes, uids, gids, links = tuple(zip(*listing.entries, strict=True)) or ((),) * 7
    type_values, type_counts = _runs(types)
    document = {
        "diff_id": diff_id,
        "path": paths,
        "size": sizes,
        "type": ([entry_type.value for entry_type in type_values], type_counts),
        "mode": _runs(modes),
        "uid": _runs(uids),
        "gid": _runs(gids),
        "link": _runs(links),
        "deleted": sorted(listing.deleted),
        "opaque": sorted(listing.opaque),
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return _HEADER + zlib.compress(text.encode("utf-8", "surrogatepass"), _ZLIB_LEVEL)


def _decode(data: bytes, diff_id: str) -> LayerListing | None:
    """The listing a cache file holds; None when the file is damaged, foreign or for another id."""
    if not data.startswith(_HEADER):
        return None
    try:
        document: Any = json.loads(zlib.decompress(data[len(_HEADER) :]).decode("utf-8", "surrogatepass"))
        if document["diff_id"] != diff_id:
            return None
        paths = document["path"]
        type_values, type_counts = document["type"]
        columns = (
            paths,
            _expand([_TYPES[value] for value in type_values], type_counts, len(paths)),
            document["size"],
            *(_expand(*document[key], len(paths)) for key in ("mode", "uid", "gid", "link")),
        )
        # tuple.__new__ skips the NamedTuple's Python-level __new__: a third faster on big layers.
        with gc_paused():
            entries = tuple(map(tuple.__new__, repeat(LayerEntry), zip(*columns, strict=True)))
        return LayerListing(entries, frozenset(document["deleted"]), frozenset(document["opaque"]))
    except _DECODE_ERRORS:
        return None
