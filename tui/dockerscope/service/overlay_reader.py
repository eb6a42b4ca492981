"""The overlay fast path: a layer's listing read straight from its `diff` directory under the
daemon's data root, many times faster than reading the `docker save` stream. It only works
where that directory is on this machine and readable (a local rootful daemon, dockerscope run as
root); everywhere else the export stream is the way.

Docker's overlay2 driver keeps a layer in `<DockerRootDir>/overlay2/<id>/diff`; Podman's overlay
driver (containers/storage) in `<graphroot>/overlay/<id>/diff`, where Podman's `DockerRootDir` is
its graph root. Both store whiteouts as character devices 0/0 and opaque directories with the
`trusted.overlay.opaque` xattr, and both name full `diff` paths in an inspect's GraphDriver (not
the short `l/` links of the lower chain).

The listing is the one docker's own tar writer (the overlay whiteout converter of
`pkg/archive`) would describe for the same directory, so both layer sources agree."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable, Mapping

from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, check_cancel

# How many entries pass between two cancel checks and progress reports.
_CHECK_EVERY = 4096
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
# The walk holds one descriptor per directory level; this keeps it well under the usual soft limit
# of 1024 open files, which the app's other threads need too. Real layers nest a few dozen deep.
MAX_DEPTH = 256
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
# What opening a listed subdirectory gives when it vanished or became something else meanwhile.
_VANISHED = frozenset((errno.ENOENT, errno.ENOTDIR, errno.ELOOP))
# GraphDriver names whose layers are `<root>/<this directory>/<id>/diff`: Docker's overlay2 and
# Podman's overlay. (Docker's old `overlay` driver names no UpperDir for an image, and its layer
# directories are not `diff`: the checks below turn it away.)
OVERLAY_DRIVERS = {"overlay2": "overlay2", "overlay": "overlay"}


class LayerTooDeep(OSError):
    """The layer nests directories deeper than the walk holds directories open for; read it from
    the export stream instead."""


def overlay_layer_dirs(graph_driver: object, layer_count: int, root_dir: object) -> list[str] | None:
    """The diff directories of an image's layers, oldest first, from its inspect `GraphDriver`; None
    unless the driver is overlay2 (Docker) or overlay (Podman), the directories match `layer_count`
    (`len(RootFS.Layers)`) and every one is `<root_dir>/<driver>/<name>/diff` (`root_dir`: the
    daemon's `DockerRootDir`), with no symlink on the way, under a driver directory only root can
    write to, and readable here
    (a remote daemon, rootless Docker, Docker Desktop, the containerd image store, or no root: use
    the export stream instead). A daemon's word alone never makes dockerscope walk `/etc` or `/root`
    as a layer.

    `UpperDir` is the top layer; `LowerDir` (absent for a one-layer image) lists the layers below it,
    top first, colon-separated. A container's inspect `GraphDriver` has the same shape, but there
    `UpperDir` is the writable layer (read it with `read_layer_dir`) and `LowerDir` starts with the
    `<id>-init` layer (`/etc/hosts`, `/.dockerenv`...) before the image's layers.

    Ownership on disk is the daemon's view: a rootful daemon run with `--userns-remap`, or a
    rootless one read as root, stores shifted ids that its export maps back. The GraphDriver does
    not tell; skip this path when `docker info` SecurityOptions name `userns` or `rootless`."""
    if not isinstance(graph_driver, Mapping) or layer_count < 1:
        return None
    driver = graph_driver.get("Name")
    if not isinstance(driver, str) or driver not in OVERLAY_DRIVERS:
        return None
    if os.geteuid() != 0:
        # The data root is root's alone (mode 0710); a readable one belongs to rootless Docker.
        return None
    storage = _overlay_storage(root_dir, OVERLAY_DRIVERS[driver])
    if storage is None:
        return None
    data = graph_driver.get("Data") or {}
    if not isinstance(data, Mapping):
        return None
    upper = data.get("UpperDir")
    if not isinstance(upper, str) or not upper:
        return None
    lower = data.get("LowerDir") or ""
    if not isinstance(lower, str):
        return None
    dirs = [*reversed(lower.split(":")), upper] if lower else [upper]
    if len(dirs) != layer_count:
        return None
    for directory in dirs:
        if not _is_layer_dir(directory, storage):
            return None
    return dirs


def overlay_driver(graph_driver: object) -> str:
    """The name of the overlay driver a GraphDriver that `overlay_layer_dirs` accepted names
    (`overlay2` or `overlay`), to say which directories a listing came from."""
    name = graph_driver.get("Name") if isinstance(graph_driver, Mapping) else None
    return name if isinstance(name, str) and name in OVERLAY_DRIVERS else "overlay2"


def _overlay_storage(root_dir: object, driver_dir: str) -> str | None:
    """`<root_dir>/<driver_dir>` when it is a real directory (no symlink on its path) owned by root
    that no one else may write to; None otherwise."""
    if not isinstance(root_dir, str) or "\0" in root_dir or not os.path.isabs(root_dir):
        return None
    storage = os.path.join(os.path.normpath(root_dir), driver_dir)
    try:
        if os.path.realpath(storage, strict=True) != storage:
            return None
        info = os.lstat(storage)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        return None
    return storage


def _is_layer_dir(directory: str, storage: str) -> bool:
    """Whether `directory` is exactly `<storage>/<name>/diff`, a real directory readable here."""
    if "\0" in directory or not directory.startswith(storage + "/"):
        return False
    name, _, rest = directory[len(storage) + 1 :].partition("/")
    if rest != "diff" or name in ("", ".", ".."):
        return False
    try:
        if os.path.realpath(directory, strict=True) != directory:
            return False
    except (OSError, ValueError):
        return False
    return os.path.isdir(directory) and os.access(directory, os.R_OK | os.X_OK)


def read_layer_dir(
    directory: str,
    *,
    cancel: threading.Event | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> LayerListing:
    """Everything the overlay2 layer directory `directory` writes.

    Whiteouts (character devices 0/0) go to `deleted`; directories with the overlay opaque xattr
    (`trusted.` or, for userxattr setups, `user.overlay.opaque` = `y`) go to `opaque` and stay
    entries. Of the names of one inode, the first in docker's tar order (lexical by path component)
    keeps the type, the others become HARDLINK entries naming it. Docker's tar writer omits
    sockets; they cannot be in an image layer (those are unpacked from tars), but a container's
    writable layer may hold one, listed here as OTHER.

    Names are str as `os.scandir` gives them: bytes that are not UTF-8 come through as lone
    surrogates (`os.fsdecode`, surrogateescape), as Python's tarfile reads them from a tar header.

    Every directory is opened relative to its parent's descriptor with O_NOFOLLOW, and only the
    same directory that was listed is walked: a directory swapped for a symlink meanwhile (a
    process in a running container racing its own writable layer) is never followed. One
    descriptor stays open per level, so the depth is capped at `MAX_DEPTH` (`LayerTooDeep`).

    Checks `cancel` (raising `ReadCancelled`) and reports the file bytes seen so far to `on_bytes`
    every few thousand entries, and once at the end: then the bytes of the listing's FILE entries
    (a multiply linked file's once), which callers take as the layer's size. Files and directories
    that vanish or change kind during the walk (a running container's layer) are left out; an
    unreadable or missing `directory`, or one that is a symlink, raises OSError."""
    # Hot loop: locals instead of globals and attributes, and tuple.__new__ called directly: it makes
    # the same LayerEntry in less than half the time of the NamedTuple's Python-level __new__.
    make = tuple.__new__
    entry_type = LayerEntry
    file_type, dir_type, symlink_type, other_type = EntryType.FILE, EntryType.DIR, EntryType.SYMLINK, EntryType.OTHER
    s_ifreg, s_ifdir, s_iflnk, s_ifchr = stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFCHR
    readlink, scandir, open_dir, fstat, close = os.readlink, os.scandir, os.open, os.fstat, os.close
    flags, vanished, max_depth = _DIR_FLAGS, _VANISHED, MAX_DEPTH

    entries: list[LayerEntry] = []
    append = entries.append
    deleted: list[str] = []
    opaque: list[str] = []
    # (st_dev, st_ino) -> indexes into `entries` of every name of a multiply linked inode.
    linked: dict[tuple[int, int], list[int]] = {}
    total_bytes = 0
    countdown = _CHECK_EVERY
    # One frame per open directory, root first: (path prefix with a trailing slash, descriptor,
    # the subdirectories still to walk as (name, (st_dev, st_ino) as listed)).
    frames: list[tuple[str, int, list[tuple[str, tuple[int, int]]]]] = [("", open_dir(directory, flags), [])]
    try:
        while True:
            prefix, fd, children = frames[-1]
            with scandir(fd) as scan:
                for item in scan:
                    countdown -= 1
                    if not countdown:
                        countdown = _CHECK_EVERY
                        check_cancel(cancel)
                        if on_bytes is not None:
                            on_bytes(total_bytes)
                    try:
                        st = item.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    mode = st.st_mode
                    fmt = mode & 0o170000  # stat.S_IFMT without the call
                    name = item.name
                    path = prefix + name
                    if fmt == s_ifreg:
                        size = st.st_size
                        if st.st_nlink > 1:
                            names = linked.setdefault((st.st_dev, st.st_ino), [])
                            if not names:
                                total_bytes += size
                            names.append(len(entries))
                        else:
                            total_bytes += size
                        append(make(entry_type, (path, file_type, size, mode & 0o7777, st.st_uid, st.st_gid, "")))
                    elif fmt == s_ifdir:
                        append(make(entry_type, (path, dir_type, 0, mode & 0o7777, st.st_uid, st.st_gid, "")))
                        children.append((name, (st.st_dev, st.st_ino)))
                    elif fmt == s_ifchr and st.st_rdev == 0:
                        deleted.append(path)
                    else:
                        if fmt == s_iflnk:
                            try:
                                target = readlink(name, dir_fd=fd)
                            except OSError:
                                # Gone, or no longer a symlink (EINVAL): left out like a vanished file.
                                continue
                            kind = symlink_type
                        else:
                            target = ""
                            kind = other_type
                        if st.st_nlink > 1:
                            # Docker's tar writer links every multiply linked non-directory, not only files.
                            linked.setdefault((st.st_dev, st.st_ino), []).append(len(entries))
                        append(make(entry_type, (path, kind, 0, mode & 0o7777, st.st_uid, st.st_gid, target)))
            # Next: the last unwalked subdirectory of the deepest open directory that has one.
            while frames:
                parent_prefix, parent_fd, pending = frames[-1]
                if not pending:
                    frames.pop()
                    close(parent_fd)
                    continue
                name, listed = pending.pop()
                try:
                    child = open_dir(name, flags, dir_fd=parent_fd)
                except OSError as error:
                    if error.errno in vanished:
                        continue
                    raise
                frames.append((f"{parent_prefix}{name}/", child, []))
                st = fstat(child)
                if (st.st_dev, st.st_ino) != listed:
                    # Another directory was moved into its place after the listing: not this layer's.
                    frames.pop()
                    close(child)
                    continue
                if len(frames) > max_depth:
                    raise LayerTooDeep(f"directories nest more than {max_depth} deep in {directory}")
                if _is_opaque(child):
                    opaque.append(parent_prefix + name)
                break
            else:
                break
    finally:
        for _, open_fd, _ in frames:
            close(open_fd)
    check_cancel(cancel)
    if on_bytes is not None:
        on_bytes(total_bytes)
    _mark_hard_links(entries, linked)
    return LayerListing(tuple(entries), frozenset(deleted), frozenset(opaque))


def _is_opaque(fd: int) -> bool:
    # One listxattr per directory (usually an empty answer) rather than a getxattr per name.
    try:
        names = os.listxattr(fd)
        if not names:
            return False
        return any(name in names and os.getxattr(fd, name) == b"y" for name in _OPAQUE_XATTRS)
    except OSError:
        # ENOTSUP on a filesystem without xattrs, ENODATA when it changes meanwhile.
        return False


def _walk_key(path: str) -> list[bytes]:
    # Go's filepath.WalkDir sorts the names in each directory as bytes, depth first.
    return os.fsencode(path).split(b"/")


def _mark_hard_links(entries: list[LayerEntry], linked: dict[tuple[int, int], list[int]]) -> None:
    """Turn every name of a shared inode but the first (in docker's walk order) into a HARDLINK
    entry naming it, with its size: what docker's tar writer emits for it."""
    for indexes in linked.values():
        if len(indexes) < 2:
            continue
        first = min(indexes, key=lambda index: _walk_key(entries[index].path))
        target = entries[first]
        for index in indexes:
            if index != first:
                entries[index] = entries[index]._replace(type=EntryType.HARDLINK, size=target.size, link=target.path)
