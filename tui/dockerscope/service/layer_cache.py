"""An on-disk cache of layer listings, one file per diff id.

A diff id is the digest of the layer's uncompressed tar, so a listing checked against it is never
stale: a layer shared by many images is read once, and reopening it costs one small file read. The
cache is an optimisation only: every failure (a corrupt file, an unwritable directory) is a miss,
never an error.

Two stores, because a daemon can claim any diff id for any files:

- the shared store (`<dir>/<hex>.v2`) holds only listings whose layer tar was hashed and matched
  its diff id (`read_export(..., expected=...)`): any daemon may read them;
- a daemon's own store (`<dir>/daemons/<sha256(scope)[:32]>/<hex>.v2`) holds listings read from a
  source that cannot be verified (overlay2 directories); only the daemon with the same identity
  (`scope`) reads them, so a hostile daemon cannot plant a listing another daemon's image shows.

Everything in the directory is treated as possibly planted: files are opened without following
symlinks or blocking (a FIFO), must be regular files of this user no larger than the cache bound,
are inflated in bounded steps up to a cap, and every column is type- and range-checked. A cache
directory that is a symlink, is not this user's, or that others may enter is not used at all, and
`problem` says why.

File format: a header line naming the format version, then a zlib stream of one JSON object holding
the listing as columns. Columns that repeat (type, mode, uid, gid, link) are stored as runs, which
makes them nearly free to parse. JSON keeps any `str` exactly: it is written with `ensure_ascii=False`
and encoded with `surrogatepass`, so lone surrogates (undecodable file names) survive, and a
surrogate pair of separate code points is not merged into one character as `\\uXXXX` escapes would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, groupby, repeat
from pathlib import Path
from typing import Any, TypeVar

from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, gc_paused

# A listing costs about 7 bytes per entry on disk: this holds about 19 million entries, the
# listings of several hundred GB of typical images, yet is small next to the images themselves.
DEFAULT_MAX_BYTES = 128 * 1024 * 1024

# Version 2: version 1 files were stored under any diff id a daemon claimed, so none is trusted.
_VERSION = 2
_HEADER = f"dockerscope layer listing {_VERSION}\n".encode()
# The version is also in the file name, so two dockerscope versions sharing a cache do not keep
# discarding each other's files; the other version's files age out by LRU.
_SUFFIX = f".v{_VERSION}"
_DIFF_ID = re.compile(r"sha256:([0-9a-f]{64})")
_CACHE_FILE = re.compile(r"[0-9a-f]{64}\.v[0-9]+")
_TEMP_FILE = re.compile(r"\.[0-9a-f]{64}\.v[0-9]+\.[a-z0-9_]+\.tmp")
_SCOPES = "daemons"
_SCOPE_DIR = re.compile(r"[0-9a-f]{32}")
# A temp file this old was left by a process that died between writing and renaming it.
_STALE_TEMP_SECONDS = 3600
# Level 1 compresses a 60,000-entry listing about 8x in a few milliseconds; higher levels gain
# little more and cost several times the time.
_ZLIB_LEVEL = 1
# Inflating stops past this many bytes per byte of file (real listings reach about 8, paths that
# share a 250-character prefix 85) or past _MAX_DOCUMENT: a zlib bomb costs at most this much.
_MAX_RATIO = 256
_MAX_DOCUMENT = 1 << 30
_INFLATE_STEP = 4 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO returns at once instead of waiting for a writer.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_TYPES = {entry_type.value: entry_type for entry_type in EntryType}
_MAX_SIZE = 2**63 - 1
_MAX_ID = 2**32 - 1
# Everything decoding a damaged or foreign file can raise (UnicodeDecodeError and JSONDecodeError
# are ValueErrors); any of them means the file is unusable.
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, zlib.error)

_T = TypeVar("_T")


class _Unsafe(Exception):
    """A cache directory that must not be used; the message says why."""


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/dockerscope/layers`, or `~/.cache/...` when that is unset, empty or relative
    (the XDG base directory spec says to ignore a relative path)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "dockerscope" / "layers"


def scope_dir_name(scope: str) -> str:
    """The directory of one daemon's own store: a digest, so no identity can name another path."""
    return hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LayerCache:
    """Layer listings by diff id, in a directory bounded to `max_bytes` over both stores: after
    each `put`, the least recently used files (by mtime, which `get` refreshes) go until the rest
    fit. Safe to share between threads and processes: writes are atomic renames, and losing a
    file is only a miss.

    `problem` is None, or why the cache directory is not used (a symlink, another owner, open to
    others): set once, after which every `get` misses and every `put` does nothing."""

    def __init__(self, directory: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._directory = directory if directory is not None else default_cache_dir()
        self._max_bytes = max_bytes
        self.problem: str | None = None

    def get(self, diff_id: str, scope: str | None = None) -> LayerListing | None:
        """The verified listing of `diff_id`, else the one `scope` (a daemon's identity) stored."""
        name = _file_name(diff_id)
        if name is None or self.problem is not None:
            return None
        try:
            with self._root(create=False) as root:
                if root is None:
                    return None
                listing = self._load(root, name, diff_id)
                if listing is not None or scope is None:
                    return listing
                with self._scope(root, scope_dir_name(scope), create=False) as own:
                    return None if own is None else self._load(own, name, diff_id)
        except _Unsafe as unsafe:
            self._refuse(str(unsafe))
        except OSError:
            pass
        return None

    def put(self, diff_id: str, listing: LayerListing, scope: str | None = None) -> None:
        """Store a listing: in the shared store when `scope` is None (only for listings verified
        against `diff_id`), else in that daemon's own store."""
        name = _file_name(diff_id)
        if name is None or self.problem is not None:
            return
        data = encode(diff_id, listing)
        if len(data) > self._max_bytes:
            return
        scope_name = None if scope is None else scope_dir_name(scope)
        try:
            with self._root(create=True) as root:
                if root is None:
                    return
                if scope_name is None:
                    _write(root, name, data)
                else:
                    with self._scope(root, scope_name, create=True) as own:
                        if own is None:
                            return
                        _write(own, name, data)
                self._evict(root, keep=(scope_name, name))
        except _Unsafe as unsafe:
            self._refuse(str(unsafe))
        except OSError:
            return

    def _refuse(self, reason: str) -> None:
        if self.problem is None:
            self.problem = f"layer cache {self._directory} not used: {reason}"

    @contextlib.contextmanager
    def _root(self, *, create: bool) -> Iterator[int | None]:
        if create:
            self._directory.parent.mkdir(parents=True, exist_ok=True)
        with _open_dir(str(self._directory), None, create=create) as fd:
            yield fd

    @contextlib.contextmanager
    def _scope(self, root: int, scope_name: str, *, create: bool) -> Iterator[int | None]:
        with _open_dir(_SCOPES, root, create=create) as scopes:
            if scopes is None:
                yield None
                return
            with _open_dir(scope_name, scopes, create=create) as own:
                yield own

    def _load(self, dir_fd: int, name: str, diff_id: str) -> LayerListing | None:
        """The listing in file `name`; None (and the file removed) when it is missing, not a
        regular file of this user, too large, damaged or for another id."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError:
            _remove(dir_fd, name)  # a symlink (ELOOP) or something else unreadable
            return None
        try:
            info = os.fstat(fd)
            listing = None
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_size <= self._max_bytes:
                data = _read_at_most(fd, info.st_size)
                listing = None if data is None else decode(data, diff_id)
            if listing is None:
                _remove(dir_fd, name)
                return None
            with contextlib.suppress(OSError):
                os.utime(fd)
            return listing
        finally:
            os.close(fd)

    def _evict(self, root: int, keep: tuple[str | None, str]) -> None:
        """Delete the least recently used cache files of both stores until they fit `max_bytes`;
        never `keep` (the store and name just written). Files another process removes meanwhile
        are skipped; a daemon store left empty goes too."""
        files: list[tuple[int, str | None, str, int]] = []
        _scan(root, None, files)
        scope_names: list[str] = []
        with _open_dir(_SCOPES, root, create=False) as scopes:
            if scopes is not None:
                with os.scandir(scopes) as entries:
                    scope_names = [entry.name for entry in entries if _SCOPE_DIR.fullmatch(entry.name)]
                for scope in scope_names:
                    with _open_dir(scope, scopes, create=False) as own:
                        if own is not None:
                            _scan(own, scope, files)
        total = sum(size for *_, size in files)
        if total <= self._max_bytes:
            return
        files.sort()
        emptied: set[str] = set()
        for _, scope_name, name, size in files:
            if total <= self._max_bytes:
                break
            if (scope_name, name) != keep and self._remove_file(root, scope_name, name):
                total -= size
                if scope_name is not None:
                    emptied.add(scope_name)
        if emptied:
            with _open_dir(_SCOPES, root, create=False) as scopes:
                for scope_name in emptied:
                    with contextlib.suppress(OSError):
                        os.rmdir(scope_name, dir_fd=scopes)  # only when nothing is left in it

    def _remove_file(self, root: int, scope_name: str | None, name: str) -> bool:
        if scope_name is None:
            return _remove(root, name)
        with self._scope(root, scope_name, create=False) as own:
            return own is not None and _remove(own, name)


@contextlib.contextmanager
def _open_dir(path: str, dir_fd: int | None, *, create: bool) -> Iterator[int | None]:
    """A cache directory's descriptor, opened without following a symlink; None when it does not
    exist (after creating it 0700 when `create`). Raises `_Unsafe` for one that is a symlink, not
    a directory, not this user's, or open to group or others."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700, dir_fd=dir_fd)
    try:
        fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        fd = None
    except OSError as error:
        raise _Unsafe(f"{os.path.basename(path)} is a symlink or not a directory ({error.strerror})") from None
    if fd is None:
        yield None
        return
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise _Unsafe(f"{os.path.basename(path)} belongs to uid {info.st_uid}, not {os.geteuid()}")
        if info.st_mode & 0o077:
            raise _Unsafe(f"group or others may use {os.path.basename(path)} (mode {stat.S_IMODE(info.st_mode):04o})")
        yield fd
    finally:
        os.close(fd)


def _scan(dir_fd: int, scope_name: str | None, files: list[tuple[int, str | None, str, int]]) -> None:
    """Add the cache files of one store to `files` as (mtime, store, name, size); remove stale
    temp files."""
    stale = time.time() - _STALE_TEMP_SECONDS
    with os.scandir(dir_fd) as entries:
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
                files.append((info.st_mtime_ns, scope_name, entry.name, info.st_size))
            elif info.st_mtime < stale:
                _remove(dir_fd, entry.name)


def _write(dir_fd: int, name: str, data: bytes) -> None:
    """Write through a temp file and rename it into place, so no reader ever sees half a file.
    No fsync: a file cut short by a power loss fails its zlib check and is a miss."""
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temp, _WRITE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with open(fd, "wb") as file:
            file.write(data)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _remove(dir_fd, temp)
        raise


def _read_at_most(fd: int, size: int) -> bytes | None:
    """The file's `size` bytes; None when it holds more or less than that."""
    parts: list[bytes] = []
    left = size + 1
    while left > 0:
        part = os.read(fd, min(left, 16 << 20))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    data = b"".join(parts)
    return data if len(data) == size else None


def _file_name(diff_id: str) -> str | None:
    """The cache file of a diff id; None for anything but `sha256:` and 64 lowercase hex digits, so
    no id can name a path outside the directory."""
    match = _DIFF_ID.fullmatch(diff_id)
    return None if match is None else match[1] + _SUFFIX


def _remove(dir_fd: int, name: str) -> bool:
    """Unlink a file (never what a symlink points to); False when it could not be (it is gone
    already when that is FileNotFoundError)."""
    try:
        os.unlink(name, dir_fd=dir_fd)
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


def _expand(
    runs: Any, length: int, check: Callable[[list[Any]], None], convert: Callable[[Any], Any] | None = None
) -> Iterator[Any]:
    """The column `runs` ([values, counts]) stands for, its values passed through `check` (and
    `convert`, once per run). Damaged counts (a negative one offsetting a huge one) are an error,
    not a column of the wrong length."""
    if type(runs) is not list or len(runs) != 2:
        raise ValueError("runs are not a pair")
    values, counts = runs
    check(values)
    _check_ints(counts, 1, length)
    if len(values) != len(counts) or sum(counts) != length:
        raise ValueError("runs do not match the column length")
    if convert is not None:
        values = [convert(value) for value in values]
    return chain.from_iterable(map(repeat, values, counts))


def _check_strings(column: Any) -> None:
    if type(column) is not list or not set(map(type, column)) <= {str}:
        raise TypeError("not a list of strings")


def _check_ints(column: Any, low: int, high: int) -> None:
    """A list of ints (not bools) from `low` to `high`."""
    if type(column) is not list or not set(map(type, column)) <= {int}:
        raise TypeError("not a list of integers")
    if column and (min(column) < low or max(column) > high):
        raise ValueError("a number out of range")


def _check_types(column: Any) -> None:
    _check_strings(column)
    if not set(column) <= _TYPES.keys():
        raise ValueError("an unknown entry type")


def _check_modes(column: Any) -> None:
    _check_ints(column, 0, 0o7777)


def _check_ids(column: Any) -> None:
    _check_ints(column, 0, _MAX_ID)


def listing_document(diff_id: str, listing: LayerListing) -> dict[str, Any]:
    """A listing as the JSON object a cache file holds (also the demo recording's layer format)."""
    paths, types, sizes, modes, uids, gids, links = tuple(zip(*listing.entries, strict=True)) or ((),) * 7
    type_values, type_counts = _runs(types)
    return {
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


def encode(diff_id: str, listing: LayerListing) -> bytes:
    """A cache file's bytes for the listing of `diff_id`."""
    text = json.dumps(listing_document(diff_id, listing), ensure_ascii=False, separators=(",", ":"))
    return _HEADER + zlib.compress(text.encode("utf-8", "surrogatepass"), _ZLIB_LEVEL)


def _inflate(data: memoryview) -> bytes | None:
    """The zlib stream `data` inflated in steps; None when it is damaged, has bytes after its end,
    or inflates past the cap."""
    limit = min(_MAX_DOCUMENT, _MAX_RATIO * len(data) + 4096)
    inflater = zlib.decompressobj()
    parts: list[bytes] = []
    total = 0
    pending: bytes | memoryview = data
    while not inflater.eof:
        part = inflater.decompress(pending, _INFLATE_STEP)
        pending = inflater.unconsumed_tail
        if not part and not pending:
            return None  # the stream ends early
        total += len(part)
        if total > limit:
            return None
        parts.append(part)
    if inflater.unused_data:
        return None
    return b"".join(parts)


def decode(data: bytes, diff_id: str) -> LayerListing | None:
    """The listing a cache file's bytes hold; None when they are damaged, foreign, for another id,
    or hold a value of the wrong type or out of range. Never raises."""
    if not data.startswith(_HEADER):
        return None
    try:
        text = _inflate(memoryview(data)[len(_HEADER) :])
        if text is None:
            return None
        document: Any = json.loads(text.decode("utf-8", "surrogatepass"))
    except _DECODE_ERRORS:
        return None
    return listing_from_document(document, diff_id)


def listing_from_document(document: Any, diff_id: str) -> LayerListing | None:
    """The listing a `listing_document` object holds; None when it is for another id, or holds a
    value of the wrong type or out of range. Never raises."""
    try:
        if type(document) is not dict or document.get("diff_id") != diff_id:
            return None
        paths = document["path"]
        _check_strings(paths)
        sizes = document["size"]
        _check_ints(sizes, 0, _MAX_SIZE)
        deleted, opaque = document["deleted"], document["opaque"]
        _check_strings(deleted)
        _check_strings(opaque)
        if len(sizes) != len(paths):
            return None
        columns = (
            paths,
            _expand(document["type"], len(paths), _check_types, _TYPES.__getitem__),
            sizes,
            _expand(document["mode"], len(paths), _check_modes),
            _expand(document["uid"], len(paths), _check_ids),
            _expand(document["gid"], len(paths), _check_ids),
            _expand(document["link"], len(paths), _check_strings),
        )
        # tuple.__new__ skips the NamedTuple's Python-level __new__: a third faster on big layers.
        with gc_paused():
            entries = tuple(map(tuple.__new__, repeat(LayerEntry), zip(*columns, strict=True)))
        return LayerListing(entries, frozenset(deleted), frozenset(opaque))
    except _DECODE_ERRORS:
        return None
