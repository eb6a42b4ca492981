"""The directory structure behind the file tree: a flat list of changes turned into children per
directory, directory sizes, sorting and path filtering. No widgets here, so it is quick to test.

A layer can hold tens of thousands of paths and the tree shows a few dozen at a time, so the view
only groups changes by directory and adds up directory sizes; rows (`FileNode`) are made for the
children of a directory when it is shown."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from dockerscope.service import EntryType, FileChange, FileStatus, LayerEntry


class SortOrder(enum.Enum):
    NAME = "name"
    SIZE = "size"


class FileNode(NamedTuple):
    """One row of the tree. `status` is how the layer on show touched it (UNCHANGED: an earlier
    layer wrote it); `size` is a file's bytes, a directory's total below, or the bytes a removal
    took away."""

    path: str
    name: str
    status: FileStatus
    entry: LayerEntry | None
    size: int
    is_dir: bool
    opaque: bool = False


@dataclass
class FileView:
    """Changes grouped by directory path ("" is the root), directory sizes, and how many paths
    matched the filter."""

    layer: int
    opaque: frozenset[str]
    children: dict[str, list[FileChange]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    matches: int = 0

    def children_of(self, path: str, order: SortOrder) -> list[FileNode]:
        nodes = [self._node(change) for change in self.children.get(path, ())]
        if order is SortOrder.SIZE:
            return sorted(nodes, key=lambda node: (-node.size, node.name))
        return sorted(nodes, key=lambda node: (not node.is_dir, node.name))

    def has_children(self, path: str) -> bool:
        return bool(self.children.get(path))

    def _node(self, change: FileChange) -> FileNode:
        entry = change.entry
        removed = change.status is FileStatus.REMOVED
        # A removed directory is a row of its own, unless the view lists what was below it (a comparison).
        is_dir = (entry is None and not removed) or (
            entry is not None and entry.type is EntryType.DIR and (not removed or change.path in self.children)
        )
        here = change.layer == self.layer
        return FileNode(
            path=change.path,
            name=change.path.rpartition("/")[2],
            status=change.status if here else FileStatus.UNCHANGED,
            entry=entry,
            size=self.sizes.get(change.path, 0) if is_dir else change.size,
            is_dir=is_dir,
            opaque=here and change.path in self.opaque,
        )


def build_view(
    changes: Iterable[FileChange],
    layer: int,
    opaque: frozenset[str] = frozenset(),
    path_filter: str = "",
    weight: Callable[[FileChange], int] | None = None,
) -> FileView:
    """Arrange changes (a layer's, or the filesystem as of `layer`) into directories. With a filter,
    only paths containing it (case-insensitive) and the directories above them are kept. A
    directory's size adds up the bytes of the files below it, or the `weight` of every path below."""
    wanted = path_filter.casefold()
    selected = [change for change in changes if wanted in change.path.casefold()] if wanted else changes
    view = FileView(layer=layer, opaque=opaque)
    children, sizes = view.children, view.sizes
    present: set[str] = set()
    own_bytes: dict[str, int] = {}
    removed, file_type = FileStatus.REMOVED, EntryType.FILE
    for change in selected:
        path = change.path
        present.add(path)
        parent = path.rpartition("/")[0]
        siblings = children.get(parent)
        if siblings is None:
            children[parent] = [change]
        else:
            siblings.append(change)
        entry = change.entry
        if weight is not None:
            own_bytes[parent] = own_bytes.get(parent, 0) + weight(change)
        elif entry is not None and entry.type is file_type and change.status is not removed:
            own_bytes[parent] = own_bytes.get(parent, 0) + entry.size
    view.matches = len(present)
    # Directories above the kept paths that are not among them (a filter, or a tar leaving them out).
    for directory in list(children):
        while directory and directory not in present:
            present.add(directory)
            parent = directory.rpartition("/")[0]
            children.setdefault(parent, []).append(FileChange(directory, FileStatus.UNCHANGED, None, 0, -1))
            directory = parent
    # Directory sizes, deepest directories first so each adds its total to its parent.
    for directory in sorted(children, key=lambda path: path.count("/") + bool(path), reverse=True):
        total = sizes.get(directory, 0) + own_bytes.get(directory, 0)
        sizes[directory] = total
        if directory:
            parent = directory.rpartition("/")[0]
            sizes[parent] = sizes.get(parent, 0) + total
    return view
