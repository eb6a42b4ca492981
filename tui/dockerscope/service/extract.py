"""Writing a path of an image, as of a layer, under a destination on this machine.

`plan_extraction` works out what the path is as of the layer (symlinks on the way followed inside
the image, as for the file view) and, for a directory, every path below it then, each with the
layer that holds its bytes and the member that carries them (a hard link's target). `extract_files`
writes a plan: everything goes into a fresh sibling of the destination,
`DEST.dockerscope-partial-XXXXXXXX`, renamed into place once complete, so a failure or a cancel
leaves nothing behind; an existing destination is replaced only when the caller says so, and only
after the new copy is complete.

Names and links come from the image and are hostile. Nothing is ever written outside the
destination: every name is created relative to the file descriptor of its parent directory, which
was opened without following symlinks (O_NOFOLLOW on every step from the destination down), with
O_EXCL; the image's symlinks are written as symlinks and never followed; a name that is `..`,
absolute or empty, or whose parent is not a directory of the plan, is refused. Hard links between
paths of the extraction stay hard links; a hard link to a file outside it becomes a copy.
Devices, fifos and sockets are skipped and counted. Mode bits are kept (setuid, setgid and sticky
only when running as root), owners only when running as root; directories get their modes after
their contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
import secrets
import shutil
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from dockerscope.service.file_analysis import FileStatus, ImageFiles, filesystem_at
from dockerscope.service.file_reading import ContentSink, FileNotReadable, resolve_path
from dockerscope.service.layer_files import EntryType, LayerEntry, ReadCancelled, check_cancel, normalize_path
from dockerscope.service.source import ImageSource

# Directories below the extraction's root a path may lie: deeper is refused (each level costs an
# open directory while it is created, and no real image comes near).
MAX_DEPTH = 512
# Directory descriptors kept open while writing (the most recently used ones).
OPEN_DIRECTORIES = 64
PARTIAL_MARK = ".dockerscope-partial-"
OLD_MARK = ".dockerscope-old-"
# A destination name longer than this gets a temporary sibling without its name in it.
_NAME_ROOM = 200
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITTEN = (EntryType.DIR, EntryType.FILE, EntryType.HARDLINK, EntryType.SYMLINK)


class ExtractError(Exception):
    """The extraction cannot be written: the destination is not usable, a name from the image
    cannot be made here, the disk is full. The message says which, in plain words."""


class DestinationExists(ExtractError):
    """The destination exists and the caller did not ask to replace it."""


@dataclass(frozen=True)
class PlannedEntry:
    """One path to write: `path` relative to the extraction's root (`""` is the root itself), the
    entry as the image has it, the layer that wrote it and, for a regular file or hard link, the
    member of that layer that carries its bytes."""

    path: str
    entry: LayerEntry
    layer: int
    member: str = ""


@dataclass(frozen=True)
class ExtractPlan:
    """What `asked` is as of layer `as_of`: the image's path `image_path` (symlinks followed, as
    `followed` lists) and every entry to write, the root first and parents before children."""

    asked: str
    image_path: str
    as_of: int
    entries: tuple[PlannedEntry, ...]
    followed: tuple[str, ...] = ()
    # Paths left out: they lie under a symlink or file of the image (no real filesystem has them).
    hidden: int = 0

    @property
    def is_directory(self) -> bool:
        return bool(self.entries) and self.entries[0].entry.type is EntryType.DIR

    @property
    def file_count(self) -> int:
        """Regular files, hard links and symlinks: what progress counts."""
        return sum(1 for planned in self.entries if planned.entry.type in _WRITTEN[1:])

    @property
    def byte_count(self) -> int:
        """Bytes to read: each member once, however many names it has."""
        sizes = {(p.layer, p.member): p.entry.size for p in self.entries if p.member}
        return sum(sizes.values())


@dataclass(frozen=True)
class ExtractProgress:
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


ExtractProgressCallback = Callable[[ExtractProgress], None]


@dataclass(frozen=True)
class ExtractResult:
    """What was written at `destination`. `skipped` counts devices, fifos and sockets; `missing`
    names files the source did not have where the listing said (none, unless the image changed)."""

    destination: str
    files: int
    directories: int
    bytes: int
    skipped: int
    missing: tuple[str, ...]
    source: str
    seconds: float


def plan_extraction(files: ImageFiles, as_of: int, path: str) -> ExtractPlan:
    """What to write for `path` as of layer `as_of`. Raises FileNotReadable when it is not in the
    image then, leads nowhere, or is a device."""
    found = resolve_path(files, as_of, path)
    entry = found.entry
    if entry.type is EntryType.OTHER:
        raise FileNotReadable(f"/{found.path} is a device, fifo or socket: there is nothing to extract")
    root = PlannedEntry("", entry, found.layer, _member(found.path, entry))
    entries = [root]
    hidden = 0
    if entry.type is EntryType.DIR:
        prefix = f"{found.path}/" if found.path else ""
        below: list[PlannedEntry] = []
        for change in filesystem_at(files, as_of):
            if change.status is FileStatus.REMOVED or change.entry is None or not change.path.startswith(prefix):
                continue
            below.append(
                PlannedEntry(change.path[len(prefix) :], change.entry, change.layer, _member(change.path, change.entry))
            )
        below.sort(key=lambda planned: planned.path)
        directories = {""}
        for planned in below:
            if posixpath.dirname(planned.path) not in directories:
                hidden += 1
                continue
            if planned.entry.type is EntryType.DIR:
                directories.add(planned.path)
            entries.append(planned)
    return ExtractPlan(found.asked, found.path, as_of, tuple(entries), found.followed, hidden)


def _member(path: str, entry: LayerEntry) -> str:
    if entry.type is EntryType.FILE:
        return path
    if entry.type is EntryType.HARDLINK:
        return normalize_path(entry.link)
    return ""


def default_destination(image_path: str, directory: str = ".") -> str:
    """`./etc` for `/etc`; the image's root goes to `./rootfs`."""
    return os.path.join(directory, posixpath.basename(image_path) or "rootfs")


def is_root() -> bool:
    return os.geteuid() == 0


async def extract_files(
    source: ImageSource,
    image_id: str,
    plan: ExtractPlan,
    destination: str,
    *,
    container_id: str | None = None,
    replace: bool = False,
    cancel: threading.Event | None = None,
    on_progress: ExtractProgressCallback | None = None,
) -> ExtractResult:
    """Write `plan` at `destination`, reading every file's bytes in one `read_layer_files` call.
    Raises DestinationExists (unless `replace`), ExtractError, ReadCancelled once `cancel` is set,
    and the source's errors; whatever ends it early, nothing is left at the destination."""
    started = time.perf_counter()
    cancel = threading.Event() if cancel is None else cancel
    writer = _Writer(plan, destination, replace=replace, cancel=cancel, on_progress=on_progress)
    try:
        await asyncio.to_thread(writer.prepare)
        where = "nothing to read"
        if writer.wanted:
            try:
                where = await source.read_layer_files(
                    image_id, writer.wanted, writer.open_sink, container_id=container_id, cancel=cancel
                )
            except ReadCancelled:
                writer.raise_problem()  # a write failed and stopped the read: say why
                raise
        await asyncio.to_thread(writer.finish)
    except BaseException:
        cancel.set()
        writer.discard()
        raise
    return ExtractResult(
        destination=writer.destination,
        files=plan.file_count - len(writer.missing),
        directories=sum(1 for planned in plan.entries if planned.entry.type is EntryType.DIR),
        bytes=writer.bytes_done,
        skipped=writer.skipped,
        missing=tuple(writer.missing),
        source=where,
        seconds=time.perf_counter() - started,
    )


def _check_name(path: str) -> None:
    """A relative path of the plan: plain names only, not too deep."""
    parts = path.split("/")
    if len(parts) > MAX_DEPTH:
        raise ExtractError(f"/{path[:200]}… lies more than {MAX_DEPTH} directories deep")
    for part in parts:
        if part in ("", ".", "..") or "\0" in part:
            raise ExtractError(f"the image names an unsafe path: {path!r}")
        try:
            os.fsencode(part)
        except UnicodeEncodeError:
            raise ExtractError(f"the image names a path this system cannot encode: {path!r}") from None


def _os_problem(error: OSError, what: str) -> ExtractError:
    if error.errno == errno.ENAMETOOLONG:
        return ExtractError(f"{what}: a name is too long for this filesystem")
    if error.errno == errno.ENOSPC:
        return ExtractError(f"{what}: no space left on the device")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ExtractError(f"{what}: permission denied")
    return ExtractError(f"{what}: {error.strerror or error}")


class _DirectoryFds:
    """Descriptors of the extraction's directories, opened from the root down without following
    symlinks; the most recently used few are kept. Used under the writer's lock."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._open: OrderedDict[str, int] = OrderedDict()

    def get(self, path: str) -> int:
        if not path:
            return self.root
        fd = self._open.get(path)
        if fd is not None:
            self._open.move_to_end(path)
            return fd
        parts = path.split("/")
        known = len(parts) - 1
        while known and "/".join(parts[:known]) not in self._open:
            known -= 1
        fd = self._open["/".join(parts[:known])] if known else self.root
        for count in range(known + 1, len(parts) + 1):
            fd = os.open(parts[count - 1], _DIRECTORY_FLAGS, dir_fd=fd)
            self._keep("/".join(parts[:count]), fd)
        return fd

    def _keep(self, path: str, fd: int) -> None:
        self._open[path] = fd
        while len(self._open) > OPEN_DIRECTORIES:
            os.close(self._open.popitem(last=False)[1])

    def close(self) -> None:
        """Close every descriptor, the root's too; more than once too."""
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()
        if self.root >= 0:
            os.close(self.root)
            self.root = -1


class _Discard:
    """The sink for bytes nobody wants."""

    def write(self, data: bytes | memoryview) -> bool:
        return False

    def close(self) -> None:
        return None


class _FileSink:
    def __init__(self, writer: _Writer, fd: int) -> None:
        self._writer = writer
        self._fd: int | None = fd

    def write(self, data: bytes | memoryview) -> bool:
        return self._writer.write(self, data)

    def close(self) -> None:
        self._writer.close_sink(self)


class _Writer:
    """One extraction's files on disk. Every change to the disk happens under `_lock` after a
    look at `_closed`: once `discard` has run, a late sink from the reading thread writes nothing."""

    def __init__(
        self,
        plan: ExtractPlan,
        destination: str,
        *,
        replace: bool,
        cancel: threading.Event,
        on_progress: ExtractProgressCallback | None,
    ) -> None:
        self.plan = plan
        self.destination = os.path.abspath(destination)
        self.replace = replace
        self.cancel = cancel
        self.on_progress = on_progress
        # Counted once: a progress report comes with every chunk written.
        self._files_total, self._bytes_total = plan.file_count, plan.byte_count
        self.as_root = is_root()
        self.wanted: dict[int, list[str]] = {}
        self.missing: list[str] = []
        self.skipped = plan.hidden
        self.bytes_done = 0
        self._files_done = 0
        self._lock = threading.Lock()
        self._closed = False
        self._problem: ExtractError | None = None
        self._parent_fd: int | None = None
        self._partial: str | None = None
        self._dirs: _DirectoryFds | None = None
        # (layer, member) -> the plan's first path with those bytes, and every other path with them.
        self._carriers: dict[tuple[int, str], PlannedEntry] = {}
        self._links: list[tuple[PlannedEntry, PlannedEntry]] = []
        self._opened: set[tuple[int, str]] = set()
        self._sinks: set[_FileSink] = set()

    # Before reading.

    def prepare(self) -> None:
        entries = self.plan.entries
        if not entries or entries[0].path or entries[0].entry.type not in _WRITTEN:
            raise ExtractError("nothing to extract: the plan has no root that can be written")
        self._check_plan()
        parent, name = os.path.split(self.destination)
        if not name:
            raise ExtractError(f"{self.destination}: not a name a file or directory can take")
        with self._lock:
            if self._closed:
                raise ReadCancelled
            try:
                self._parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as error:
                raise _os_problem(error, f"cannot open {parent}") from None
            if self._exists(name) and not self.replace:
                raise DestinationExists(f"{self.destination} exists")
            mark = f"{name}{PARTIAL_MARK}" if len(os.fsencode(name)) <= _NAME_ROOM else PARTIAL_MARK
            partial = f"{mark}{secrets.token_hex(4)}"
            if self.plan.is_directory:
                try:
                    os.mkdir(partial, 0o700, dir_fd=self._parent_fd)
                    self._partial = partial
                    self._dirs = _DirectoryFds(os.open(partial, _DIRECTORY_FLAGS, dir_fd=self._parent_fd))
                except OSError as error:
                    raise _os_problem(error, f"cannot write in {parent}") from None
            else:
                self._partial = partial
        self._make_directories()
        self._group_files()

    def _check_plan(self) -> None:
        directories = {""} if self.plan.is_directory else set()
        seen: set[str] = set()
        for planned in self.plan.entries[1:]:
            path = planned.path
            _check_name(path)
            if path in seen:
                raise ExtractError(f"the image names /{path} twice")
            seen.add(path)
            if posixpath.dirname(path) not in directories:
                raise ExtractError(f"/{path} lies under something that is not a directory of the extraction")
            if planned.entry.type is EntryType.DIR:
                directories.add(path)

    def _exists(self, name: str) -> bool:
        try:
            os.lstat(name, dir_fd=self._parent_fd)
        except FileNotFoundError:
            return False
        return True

    def _place(self, path: str) -> tuple[int, str]:
        """The directory descriptor and name a plan path is created at."""
        if not path:
            assert self._parent_fd is not None and self._partial is not None
            return self._parent_fd, self._partial
        assert self._dirs is not None
        parent, _, name = path.rpartition("/")
        return self._dirs.get(parent), name

    def _make_directories(self) -> None:
        for count, planned in enumerate(self.plan.entries[1:], 1):
            if not count % 256:
                check_cancel(self.cancel)
            if planned.entry.type is not EntryType.DIR:
                continue
            with self._lock:
                if self._closed:
                    raise ReadCancelled
                try:
                    fd, name = self._place(planned.path)
                    os.mkdir(name, 0o700, dir_fd=fd)
                except OSError as error:
                    raise _os_problem(error, f"cannot create /{planned.path}") from None

    def _group_files(self) -> None:
        """One carrier per (layer, member), its bytes read once; a regular file rather than a hard
        link to it carries them, so the file's own mode is the one kept."""
        for planned in sorted(self.plan.entries, key=lambda planned: planned.entry.type is EntryType.HARDLINK):
            kind = planned.entry.type
            if kind is EntryType.OTHER:
                self.skipped += 1
            elif planned.member:
                key = (planned.layer, planned.member)
                carrier = self._carriers.get(key)
                if carrier is not None:
                    self._links.append((planned, carrier))
                elif planned.entry.size > 0:
                    self._carriers[key] = planned
                    self.wanted.setdefault(planned.layer, []).append(planned.member)
                else:
                    self._carriers[key] = planned
                    self._opened.add(key)
                    self._create_empty(planned)

    def _create_empty(self, planned: PlannedEntry) -> None:
        with self._lock:
            if self._closed:
                raise ReadCancelled
            try:
                fd, name = self._place(planned.path)
                os.close(os.open(name, _CREATE_FLAGS, 0o600, dir_fd=fd))
            except OSError as error:
                raise _os_problem(error, f"cannot create /{planned.path}") from None
            self._files_done += 1

    # While reading: called in the reading thread(s).

    def open_sink(self, layer: int, member: str, size: int) -> ContentSink:
        key = (layer, normalize_path(member))
        planned = self._carriers.get(key)
        with self._lock:
            if planned is None or self._closed or self._problem is not None:
                return _Discard()
            again = key in self._opened
            self._opened.add(key)
            try:
                dir_fd, name = self._place(planned.path)
                flags = (os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC) if again else _CREATE_FLAGS
                sink = _FileSink(self, os.open(name, flags, 0o600, dir_fd=dir_fd))
            except OSError as error:
                self._fail(_os_problem(error, f"cannot create /{planned.path}"))
                return _Discard()
            self._sinks.add(sink)
            if not again:
                self._files_done += 1
        return sink

    def write(self, sink: _FileSink, data: bytes | memoryview) -> bool:
        with self._lock:
            fd = sink._fd
            if fd is None or self._closed:
                return False
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as error:
                self._fail(_os_problem(error, "cannot write"))
                return False
            self.bytes_done += len(data)
        self._report()
        return not self.cancel.is_set()

    def close_sink(self, sink: _FileSink) -> None:
        with self._lock:
            if sink._fd is not None:
                os.close(sink._fd)
                sink._fd = None
            self._sinks.discard(sink)
        self._report()

    def _fail(self, problem: ExtractError) -> None:
        """A write failed in the reading thread: remember why, and stop the read."""
        if self._problem is None:
            self._problem = problem
        self.cancel.set()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(ExtractProgress(self._files_done, self._files_total, self.bytes_done, self._bytes_total))

    # After reading.

    def raise_problem(self) -> None:
        if self._problem is not None:
            raise self._problem

    def finish(self) -> None:
        self.raise_problem()
        check_cancel(self.cancel)
        for key, planned in self._carriers.items():
            if key not in self._opened:
                self.missing.append(f"/{planned.member}")
        with self._lock:
            if self._closed:
                raise ReadCancelled
            try:
                self._write_links()
                self._set_file_modes()
                self._set_directory_modes()
            except OSError as error:
                raise _os_problem(error, "cannot finish the extraction") from None
            except ValueError:
                raise ExtractError("the image holds a symlink this system cannot create") from None
        check_cancel(self.cancel)
        with self._lock:
            if self._closed:
                raise ReadCancelled
            self._move_into_place()

    def _write_links(self) -> None:
        for count, (planned, carrier) in enumerate(self._links, 1):
            if (carrier.layer, carrier.member) not in self._opened:
                self.missing.append(f"/{planned.member}")
                continue
            source_fd, source_name = self._place(carrier.path)
            fd, name = self._place(planned.path)
            os.link(source_name, name, src_dir_fd=source_fd, dst_dir_fd=fd, follow_symlinks=False)
            self._files_done += 1
            if not count % 256:
                self._report()
        for planned in self.plan.entries:
            if planned.entry.type is EntryType.SYMLINK:
                fd, name = self._place(planned.path)
                os.symlink(planned.entry.link, name, dir_fd=fd)
                if self.as_root:
                    os.chown(name, planned.entry.uid, planned.entry.gid, dir_fd=fd, follow_symlinks=False)
                self._files_done += 1
        self._report()

    def _mode(self, entry: LayerEntry) -> int:
        return entry.mode & (0o7777 if self.as_root else 0o777)

    def _set_modes(self, planned: PlannedEntry, flags: int) -> None:
        """Owner (as root) then mode, on a descriptor opened without following symlinks: chown
        clears setuid and setgid, so the mode comes last."""
        dir_fd, name = self._place(planned.path)
        fd = os.open(name, flags, dir_fd=dir_fd)
        try:
            if self.as_root:
                os.fchown(fd, planned.entry.uid, planned.entry.gid)
            os.fchmod(fd, self._mode(planned.entry))
        finally:
            os.close(fd)

    def _set_file_modes(self) -> None:
        for key, planned in self._carriers.items():
            if key in self._opened:
                self._set_modes(planned, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)

    def _set_directory_modes(self) -> None:
        """Deepest first, so no directory loses its write or search bit before its contents are done."""
        for planned in reversed(self.plan.entries):
            if planned.entry.type is EntryType.DIR and planned.path:
                self._set_modes(planned, _DIRECTORY_FLAGS)
        if self._dirs is not None:
            root = self.plan.entries[0].entry
            if self.as_root:
                os.fchown(self._dirs.root, root.uid, root.gid)
            os.fchmod(self._dirs.root, self._mode(root))

    def _move_into_place(self) -> None:
        """Rename the complete partial copy to the destination's name; an existing destination (with
        `replace`) is moved aside first and removed last."""
        parent_fd, partial = self._parent_fd, self._partial
        assert parent_fd is not None and partial is not None
        name = os.path.basename(self.destination)
        if self._dirs is not None:
            self._dirs.close()
        if self._exists(name):
            if not self.replace:
                raise DestinationExists(f"{self.destination} exists")
            mark = f"{name}{OLD_MARK}" if len(os.fsencode(name)) <= _NAME_ROOM else OLD_MARK
            old = f"{mark}{secrets.token_hex(4)}"
            os.rename(name, old, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            try:
                os.rename(partial, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            except OSError as error:
                os.rename(old, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
                raise _os_problem(error, f"cannot rename into {self.destination}") from None
            self._partial = None
            _remove(os.path.dirname(self.destination), parent_fd, old)
        elif self.plan.is_directory:
            os.rename(partial, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            self._partial = None
        else:
            try:
                # A link fails where the name exists: a file that appeared meanwhile is not replaced.
                os.link(partial, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
            except FileExistsError:
                raise DestinationExists(f"{self.destination} exists") from None
            os.unlink(partial, dir_fd=parent_fd)
            self._partial = None
        os.close(parent_fd)
        self._parent_fd = None
        self._closed = True

    def discard(self) -> None:
        """Remove whatever was written; from any thread, more than once too."""
        with self._lock:
            self._closed = True
            for sink in self._sinks:
                if sink._fd is not None:
                    os.close(sink._fd)
                    sink._fd = None
            self._sinks.clear()
            if self._dirs is not None:
                self._dirs.close()
            if self._parent_fd is None:
                return
            if self._partial is not None:
                _remove(os.path.dirname(self.destination), self._parent_fd, self._partial)
                self._partial = None
            os.close(self._parent_fd)
            self._parent_fd = None


def _remove(parent: str, parent_fd: int, name: str) -> None:
    """Remove a file, symlink or directory tree at `name` under `parent_fd`, never following a
    symlink; directories without write or search permission are opened up first."""
    try:
        info = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    path = os.path.join(parent, name)
    try:
        shutil.rmtree(path)
    except OSError:
        _open_up(parent_fd, name)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)


def _open_up(parent_fd: int, name: str) -> None:
    """Give every directory of a tree its owner's read, write and search bits (no symlink followed)."""
    os.chmod(name, 0o700, dir_fd=parent_fd)
    for _, directories, _, fd in os.fwalk(name, dir_fd=parent_fd):
        for directory in directories:
            if stat.S_ISDIR(os.lstat(directory, dir_fd=fd).st_mode):
                os.chmod(directory, 0o700, dir_fd=fd)
