"""The overlay2 fast path: a layer's listing read straight from its `diff` directory under the
daemon's data root, many times faster than reading the `docker save` stream. It only works
where that directory is on this machine and readable (a local rootful daemon, dockerscope run as
root); everywhere else the export stream is the way.

The listing is the one docker's own tar writer (the overlay whiteout converter of
`pkg/archive`) would describe for the same directory, so both layer sources agree."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, check_cancel

# How many entries pass between two cancel checks and progress reports.
_CHECK_EVERY = 4096
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def overlay_layer_dirs(graph_driver: Mapping[str, Any] | None, layer_count: int) -> list[str] | None:
    """The diff directories of an image's layers, oldest first, from its inspect `GraphDriver`; None
    unless the driver is overlay2, the directories match `layer_count` (`len(RootFS.Layers)`) and
    every one exists and is readable here (a remote daemon, rootless Docker, Docker Desktop, the
    containerd image store, or no root: use the export stream instead).

    `UpperDir` is the top layer; `LowerDir` (absent for a one-layer image) lists the layers below it,
    top first, colon-separated. A container's inspect `GraphDriver` has the same shape, but there
    `UpperDir` is the writable layer (read it with `read_layer_dir`) and `LowerDir` starts with the
    `<id>-init` layer (`/etc/hosts`, `/.dockerenv`...) before the image's layers.

    Ownership on disk is the daemon's view: a rootful daemon run with `--userns-remap`, or a
    rootless one read as root, stores shifted ids that its export maps back. The GraphDriver does
    not tell; skip this path when `docker info` SecurityOptions name `userns` or `rootless`."""
    if not graph_driver or graph_driver.get("Name") != "overlay2" or layer_count < 1:
        return None
    if os.geteuid() != 0:
        # The data root is root's alone (mode 0710); a readable one belongs to rootless Docker.
        return None
    data = graph_driver.get("Data") or {}
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
        if not os.path.isabs(directory) or not os.path.isdir(directory):
            return None
        if not os.access(directory, os.R_OK | os.X_OK):
            return None
    return dirs


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

    Checks `cancel` (raising `ReadCancelled`) and reports the file bytes seen so far to `on_bytes`
    every few thousand entries, and once at the end. Files that vanish during the walk (a running
    container's layer) are left out; an unreadable or missing `directory` raises OSError."""
    # Hot loop: locals instead of globals and attributes, and tuple.__new__ called directly: it makes
    # the same LayerEntry in less than half the time of the NamedTuple's Python-level __new__.
    make = tuple.__new__
    entry_type = LayerEntry
    file_type, dir_type, symlink_type, other_type = EntryType.FILE, EntryType.DIR, EntryType.SYMLINK, EntryType.OTHER
    s_ifreg, s_ifdir, s_iflnk, s_ifchr = stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFCHR
    readlink, scandir = os.readlink, os.scandir

    entries: list[LayerEntry] = []
    append = entries.append
    deleted: list[str] = []
    opaque: list[str] = []
    # (st_dev, st_ino) -> indexes into `entries` of every name of a multiply linked inode.
    linked: dict[tuple[int, int], list[int]] = {}
    total_bytes = 0
    countdown = _CHECK_EVERY
    # (path prefix with a trailing slash, directory on disk); the root's prefix is empty.
    stack: list[tuple[str, str]] = [("", directory)]
    root = True
    while stack:
        prefix, on_disk = stack.pop()
        try:
            scan = scandir(on_disk)
        except (FileNotFoundError, NotADirectoryError):
            if root:
                raise
            continue
        root = False
        with scan:
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
                path = prefix + item.name
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
                    stack.append((path + "/", item.path))
                    if _is_opaque(item.path):
                        opaque.append(path)
                elif fmt == s_ifchr and st.st_rdev == 0:
                    deleted.append(path)
                else:
                    if fmt == s_iflnk:
                        try:
                            target = readlink(item.path)
                        except FileNotFoundError:
                            continue
                        kind = symlink_type
                    else:
                        target = ""
                        kind = other_type
                    if st.st_nlink > 1:
                        # Docker's tar writer links every multiply linked non-directory, not only files.
                        linked.setdefault((st.st_dev, st.st_ino), []).append(len(entries))
                    append(make(entry_type, (path, kind, 0, mode & 0o7777, st.st_uid, st.st_gid, target)))
    check_cancel(cancel)
    if on_bytes is not None:
        on_bytes(total_bytes)
    _mark_hard_links(entries, linked)
    return LayerListing(tuple(entries), frozenset(deleted), frozenset(opaque))


def _is_opaque(path: str) -> bool:
    # One listxattr per directory (usually an empty answer) rather than a getxattr per name.
    try:
        names = os.listxattr(path, follow_symlinks=False)
        if not names:
            return False
        return any(name in names and os.getxattr(path, name, follow_symlinks=False) == b"y" for name in _OPAQUE_XATTRS)
    except OSError:
        # ENOTSUP on a filesystem without xattrs, ENODATA or ENOENT when it changes meanwhile.
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
