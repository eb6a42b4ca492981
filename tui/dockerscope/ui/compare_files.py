"""Two images' file differences as the file tree shows them: each path a row marked added (+),
modified (~) or removed (-), weighed by the bytes it changes; a directory totals the changes below
it. No widgets here."""

from __future__ import annotations

import stat
from collections.abc import Sequence

from dockerscope.service import ChangeType, FileChange, FileDifference, FileStatus, LayerEntry
from dockerscope.ui.file_tree import TYPE_BITS
from dockerscope.ui.file_view import FileNode, FileView, build_view
from dockerscope.ui.format import counted, human_size, signed_size

# What the tree shows right of a name: the size delta, then what changed.
DESCRIBE_WIDTH = 40

STATUSES = {
    ChangeType.ADDED: FileStatus.ADDED,
    ChangeType.REMOVED: FileStatus.REMOVED,
    ChangeType.CHANGED: FileStatus.MODIFIED,
}


def _mode(entry: LayerEntry) -> str:
    return stat.filemode(TYPE_BITS[entry.type] | entry.mode)


def _what_changed(difference: FileDifference) -> str:
    before, after = difference.before, difference.after
    if after is None:
        return "removed"
    if before is None:
        return f"{_mode(after)} {after.uid}:{after.gid}"
    words = {
        "type": f"{before.type.value}→{after.type.value}",
        "size": f"{human_size(before.size)}→{human_size(after.size)}",
        "link": "link target",
        "mode": f"mode {_mode(before)}→{_mode(after)}",
        "owner": f"owner {before.uid}:{before.gid}→{after.uid}:{after.gid}",
        "contents": "contents may differ",
    }
    return ", ".join(words[name] for name in difference.changed if name in words)


def _directory_totals(differences: Sequence[FileDifference]) -> dict[str, tuple[int, int]]:
    """Per directory: the bytes the paths below it change, and how many they are. Each path adds
    to its parent, then each directory to its own, deepest first."""
    below: dict[str, list[int]] = {}
    for difference in differences:
        parent = difference.path.rpartition("/")[0]
        total = below.setdefault(parent, [0, 0])
        total[0] += difference.size_delta
        total[1] += 1
    for directory in list(below):
        while directory:
            directory = directory.rpartition("/")[0]
            if directory in below:
                break  # it and what is above it are there already
            below[directory] = [0, 0]
    for directory in sorted(below, key=lambda path: path.count("/") + bool(path), reverse=True):
        if directory:
            above, total = below[directory.rpartition("/")[0]], below[directory]
            above[0] += total[0]
            above[1] += total[1]
    return {directory: (delta, count) for directory, (delta, count) in below.items()}


class ComparedFiles:
    """The differences, by path, and the tree view of them."""

    def __init__(self, differences: Sequence[FileDifference]) -> None:
        self.by_path = {difference.path: difference for difference in differences}
        self._changes = [
            FileChange(
                difference.path,
                STATUSES[difference.change],
                difference.after or difference.before,
                abs(difference.size_delta),
                0,
            )
            for difference in differences
        ]
        self._totals = _directory_totals(differences)
        self.counts = {kind: sum(1 for d in differences if d.change is kind) for kind in ChangeType}
        self.size_delta = sum(difference.size_delta for difference in differences)

    def view(self, path_filter: str = "") -> FileView:
        return build_view(self._changes, 0, path_filter=path_filter, weight=lambda change: change.size)

    def describe(self, node: FileNode) -> str:
        """The size delta and what changed; for a directory, the total of what changed below."""
        difference = self.by_path.get(node.path)
        below = self._totals.get(node.path)
        if node.is_dir and below is not None:
            delta, count = below
            changed = difference is not None and difference.change is ChangeType.CHANGED
            own = f"{_what_changed(difference)}, " if changed and difference is not None else ""
            return f"{signed_size(delta):>10}  {own}{counted(count, 'path')} below"
        if difference is None:
            return ""
        return f"{signed_size(difference.size_delta):>10}  {_what_changed(difference)}"
