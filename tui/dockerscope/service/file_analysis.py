"""What each layer does to the image's filesystem, and the space later layers waste.

Layers are replayed oldest first over a flat map of the filesystem. A path a layer writes is
*added* when no lower layer has it and *modified* when one does; a whiteout *removes* a path and
everything below it; an opaque directory removes every lower path below it that the layer does not
write again. A directory a layer only passes through (same mode and owner) is *unchanged*.

Space: every regular file a layer stores costs its size. A stored copy is **wasted** when a later
layer overwrites or removes its path; the copy the final filesystem keeps is not waste. So

    total  = bytes of regular files over all layers
    kept   = bytes of regular files in the final filesystem
    wasted = total - kept
    efficiency = kept / total   (1.0 for an image with no file bytes)
    user_wasted_ratio = wasted / (total - bytes of the first layer)   (0.0 when nothing is wasted)

Hard links count once: the bytes belong to the entry that carries them, a second name costs nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing


class FileStatus(enum.Enum):
    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"
    UNCHANGED = "unchanged"


class FileChange(NamedTuple):
    """One path in one layer. `entry` is what the layer wrote; for a removed path, the entry it
    removed (None when the path was not there). `size` is the file's bytes, or for a removed path
    the bytes of every file removed with it."""

    path: str
    status: FileStatus
    entry: LayerEntry | None
    size: int
    layer: int


@dataclass(frozen=True)
class LayerFiles:
    """One layer's changes, sorted by path, and its counts."""

    index: int
    diff_id: str
    changes: tuple[FileChange, ...]
    opaque: frozenset[str]
    entry_count: int
    file_count: int
    added: int
    modified: int
    removed: int
    size: int
    # Bytes of this layer's files that a later layer overwrites or removes.
    wasted: int


@dataclass(frozen=True)
class WastedPath:
    """A path whose lower copies are wasted: `copies` layers stored it, `layers` are those whose
    copy is wasted, `kept` whether the final filesystem still has it."""

    path: str
    copies: int
    wasted: int
    layers: tuple[int, ...]
    kept: bool


@dataclass(frozen=True)
class ImageFiles:
    layers: tuple[LayerFiles, ...]
    total_bytes: int
    kept_bytes: int
    wasted_bytes: int
    user_bytes: int
    wasted_paths: tuple[WastedPath, ...]

    @property
    def efficiency(self) -> float:
        return self.kept_bytes / self.total_bytes if self.total_bytes else 1.0

    @property
    def user_wasted_ratio(self) -> float:
        if not self.wasted_bytes:
            return 0.0
        return self.wasted_bytes / self.user_bytes if self.user_bytes else float("inf")


def _stored_bytes(entry: LayerEntry) -> int:
    return entry.size if entry.type is EntryType.FILE else 0


class _Filesystem:
    """The filesystem as of the layers replayed so far: path -> (entry, layer that wrote it), and
    each directory's children, so a removal finds a subtree without scanning every path."""

    def __init__(self) -> None:
        self.paths: dict[str, tuple[LayerEntry, int]] = {}
        self.children: dict[str, set[str]] = {}
        self.wasted_by_path: dict[str, int] = {}
        self.wasted_layers: dict[str, list[int]] = {}
        self.wasted_by_layer: list[int] = []

    def waste(self, path: str, entry: LayerEntry, layer: int) -> int:
        size = _stored_bytes(entry)
        if size:
            self.wasted_by_path[path] = self.wasted_by_path.get(path, 0) + size
            self.wasted_layers.setdefault(path, []).append(layer)
            self.wasted_by_layer[layer] += size
        return size

    def put(self, entry: LayerEntry, layer: int) -> None:
        path = entry.path
        if path not in self.paths:
            self.children.setdefault(path.rpartition("/")[0], set()).add(path)
        self.paths[path] = (entry, layer)

    def remove(self, path: str) -> int:
        """Remove a path and everything below it, wasting their copies; returns the bytes removed."""
        removed = 0
        stack = [path]
        while stack:
            current = stack.pop()
            entry, layer = self.paths.pop(current)
            removed += self.waste(current, entry, layer)
            stack.extend(self.children.pop(current, ()))
        siblings = self.children.get(path.rpartition("/")[0])
        if siblings is not None:
            siblings.discard(path)
        return removed

    def ensure_parents(self, path: str, layer: int, implied: dict[str, FileChange]) -> None:
        """Make the directories above `path` that neither a lower layer nor this one wrote yet (a
        hand-made tar may leave them out, or list them after their contents)."""
        parent = path.rpartition("/")[0]
        missing: list[str] = []
        while parent and parent not in self.paths:
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        for directory in reversed(missing):
            entry = LayerEntry(directory, EntryType.DIR, 0, 0o755, 0, 0)
            self.put(entry, layer)
            implied[directory] = FileChange(directory, FileStatus.ADDED, entry, 0, layer)


def analyze_layers(layers: Sequence[tuple[str, LayerListing]]) -> ImageFiles:
    """Replay the layers (oldest first, each with its diff id) and account for every byte."""
    filesystem = _Filesystem()
    results: list[LayerFiles] = []
    total = first_layer_bytes = 0
    for index, (diff_id, listing) in enumerate(layers):
        filesystem.wasted_by_layer.append(0)
        layer = _apply_layer(filesystem, index, diff_id, listing)
        total += layer.size
        if index == 0:
            first_layer_bytes = layer.size
        results.append(layer)
    # A layer's waste is known only once the layers above it are replayed.
    results = [replace(layer, wasted=wasted) for layer, wasted in zip(results, filesystem.wasted_by_layer, strict=True)]
    file_type = EntryType.FILE
    kept = sum(entry.size for entry, _ in filesystem.paths.values() if entry.type is file_type)
    wasted_paths = []
    for path, wasted in filesystem.wasted_by_path.items():
        final = filesystem.paths.get(path)
        kept_copy = final is not None and final[0].type is EntryType.FILE
        copy_layers = filesystem.wasted_layers[path]
        wasted_paths.append(
            WastedPath(path, len(copy_layers) + kept_copy, wasted, tuple(copy_layers), kept=final is not None)
        )
    wasted_paths.sort(key=lambda item: (-item.wasted, item.path))
    return ImageFiles(
        layers=tuple(results),
        total_bytes=total,
        kept_bytes=kept,
        wasted_bytes=total - kept,
        user_bytes=total - first_layer_bytes,
        wasted_paths=tuple(wasted_paths),
    )


def _apply_layer(filesystem: _Filesystem, index: int, diff_id: str, listing: LayerListing) -> LayerFiles:
    """Replay one layer: opaque directories first, then whiteouts, then what it writes. The loop
    over entries is the hot path of an analysis (tens of thousands per layer): kept flat."""
    changes: list[FileChange] = []
    if listing.opaque:
        written = {entry.path: entry for entry in listing.entries}
        for directory in sorted(listing.opaque):
            changes.extend(_hide_below(filesystem, directory, written, index))
    for path in sorted(listing.deleted):
        lower = filesystem.paths.get(path)
        removed = filesystem.remove(path) if lower is not None else 0
        changes.append(FileChange(path, FileStatus.REMOVED, lower[0] if lower else None, removed, index))
    removed = len(changes)
    paths, children = filesystem.paths, filesystem.children
    implied: dict[str, FileChange] = {}
    added = modified = size = entry_count = directories = 0
    file_type, dir_type = EntryType.FILE, EntryType.DIR
    # Looked up once: each attribute of an Enum class goes through EnumType's __getattr__ slot.
    added_status, modified_status = FileStatus.ADDED, FileStatus.MODIFIED
    append, make = changes.append, tuple.__new__  # tuple.__new__ skips the NamedTuple constructor's call
    # The parent of the last path added and its set of children: both layer sources list a
    # directory's entries one after another, so most new paths skip hashing their parent's path.
    # Forgotten whenever a removal may have dropped that directory.
    last_parent: str | None = None
    siblings: set[str] = set()
    for entry in listing.entries:
        path = entry.path
        if not path:
            continue
        entry_count += 1
        lower = paths.get(path)
        if lower is None or (implied and implied.pop(path, None) is not None):
            if lower is None:
                parent = path.rpartition("/")[0]
                if parent != last_parent:
                    if parent and parent not in paths:
                        filesystem.ensure_parents(path, index, implied)
                    kids = children.get(parent)
                    if kids is None:
                        kids = children[parent] = set()
                    last_parent, siblings = parent, kids
                siblings.add(path)
            paths[path] = (entry, index)
            added += 1
            status = added_status
        else:
            status = _replace(filesystem, path, lower, entry)
            if status is modified_status:
                modified += 1
                filesystem.put(entry, index)
                last_parent = None
        entry_type = entry.type
        if entry_type is file_type:
            size += entry.size
        elif entry_type is dir_type:
            directories += 1
        append(make(FileChange, (path, status, entry, entry.size, index)))
    changes.extend(implied.values())
    return LayerFiles(
        index=index,
        diff_id=diff_id,
        changes=tuple(changes),
        opaque=listing.opaque,
        entry_count=entry_count,
        file_count=entry_count - directories,
        added=added + len(implied),
        modified=modified,
        removed=removed,
        size=size,
        wasted=0,
    )


def _replace(filesystem: _Filesystem, path: str, lower: tuple[LayerEntry, int], entry: LayerEntry) -> FileStatus:
    """A layer writes a path a lower layer has: the lower copy is wasted, or a directory it only
    passes through is unchanged."""
    old, layer = lower
    if old.type is EntryType.DIR and entry.type is EntryType.DIR:
        same = (old.mode, old.uid, old.gid) == (entry.mode, entry.uid, entry.gid)
        return FileStatus.UNCHANGED if same else FileStatus.MODIFIED
    if old.type is EntryType.DIR:
        filesystem.remove(path)  # a directory replaced by a file takes its contents along
    else:
        filesystem.waste(path, old, layer)
    return FileStatus.MODIFIED


def _hide_below(
    filesystem: _Filesystem, directory: str, written: Mapping[str, LayerEntry], index: int
) -> Iterable[FileChange]:
    """An opaque directory hides every lower path below it; those the layer writes again are
    replaced later, the others are removed (one change for the top of each removed subtree)."""
    stack = [directory]
    while stack:
        current = stack.pop()
        for child in sorted(filesystem.children.get(current, ())):
            again = written.get(child)
            lower = filesystem.paths[child]
            if again is None:
                yield FileChange(child, FileStatus.REMOVED, lower[0], filesystem.remove(child), index)
            elif again.type is EntryType.DIR and lower[0].type is EntryType.DIR:
                stack.append(child)


def filesystem_at(image: ImageFiles, index: int) -> list[FileChange]:
    """The image's filesystem as of layer `index` (in no order): for every path present then, the
    change of the layer that last wrote it (a `layer` below `index` means unchanged here); plus the
    paths layer `index` removed."""
    paths: dict[str, FileChange] = {}
    children: dict[str, set[str]] = {}
    removed_status, unchanged_status, dir_type = FileStatus.REMOVED, FileStatus.UNCHANGED, EntryType.DIR
    for layer in image.layers[: index + 1]:
        for change in layer.changes:
            path, status = change.path, change.status
            if status is removed_status:
                _drop(paths, children, path)
                continue
            present = path in paths
            if not present:
                parent = path.rpartition("/")[0]
                kids = children.get(parent)
                if kids is None:
                    children[parent] = {path}
                else:
                    kids.add(path)
            elif status is unchanged_status:
                continue
            elif change.entry is not None and change.entry.type is not dir_type:
                _drop_children(paths, children, path)  # a directory replaced by a file
            paths[path] = change
    view = list(paths.values())
    view.extend(change for change in image.layers[index].changes if change.status is removed_status)
    return view


def _drop(paths: dict[str, FileChange], children: dict[str, set[str]], path: str) -> None:
    if path not in paths:
        return
    _drop_children(paths, children, path)
    del paths[path]
    siblings = children.get(path.rpartition("/")[0])
    if siblings is not None:
        siblings.discard(path)


def _drop_children(paths: dict[str, FileChange], children: dict[str, set[str]], path: str) -> None:
    stack = list(children.pop(path, ()))
    while stack:
        current = stack.pop()
        paths.pop(current, None)
        stack.extend(children.pop(current, ()))
