"""The final filesystem of a layer stack straight from its listings: path -> (entry, layer that
wrote it), as `filesystem_at` gives it from a full analysis of the top layer, without the
analysis (no changes, statuses or waste to account for). Comparing two images takes only this,
and two images that share their lower layers replay those once.

The rules are the analysis's own (file_analysis._apply_layer): per layer, opaque directories
hide what lower layers put below them, then whiteouts remove paths with everything below, then
the entries are written (a directory that only passes through with the same mode and owner
keeps the lower layer's entry; a directory replaced by anything else takes its contents along;
a missing parent directory is implied, as the analysis implies it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing

# A path's entry and the index of the layer that wrote it.
FinalEntry = tuple[LayerEntry, int]
FinalPaths = dict[str, FinalEntry]


class _Replay:
    def __init__(self, paths: FinalPaths | None = None, children: dict[str, set[str]] | None = None) -> None:
        self.paths: FinalPaths = paths if paths is not None else {}
        self.children: dict[str, set[str]] = children if children is not None else {}

    def copy(self) -> _Replay:
        """An independent replay from here on; the (entry, layer) pairs are shared, so a path
        both copies leave alone stays the same object in both."""
        return _Replay(dict(self.paths), {parent: set(kids) for parent, kids in self.children.items()})

    def remove(self, path: str) -> None:
        """Remove a path and everything below it."""
        if self.paths.pop(path, None) is None:
            return
        self.remove_below(path)
        siblings = self.children.get(path.rpartition("/")[0])
        if siblings is not None:
            siblings.discard(path)

    def remove_below(self, path: str) -> None:
        stack = list(self.children.pop(path, ()))
        while stack:
            current = stack.pop()
            self.paths.pop(current, None)
            stack.extend(self.children.pop(current, ()))

    def _place(self, path: str, value: tuple[LayerEntry, int]) -> None:
        if path not in self.paths:
            self.children.setdefault(path.rpartition("/")[0], set()).add(path)
        self.paths[path] = value

    def _hide_below(self, directory: str, written: Mapping[str, LayerEntry]) -> None:
        stack = [directory]
        while stack:
            current = stack.pop()
            for child in sorted(self.children.get(current, ())):
                again = written.get(child)
                if again is None:
                    self.remove(child)
                elif again.type is EntryType.DIR and self.paths[child][0].type is EntryType.DIR:
                    stack.append(child)

    def apply(self, index: int, listing: LayerListing) -> None:
        if listing.opaque:
            written = {entry.path: entry for entry in listing.entries}
            for directory in sorted(listing.opaque):
                self._hide_below(directory, written)
        for path in sorted(listing.deleted):
            self.remove(path)
        paths, children = self.paths, self.children
        implied: set[str] = set()
        dir_type = EntryType.DIR
        # The hot loop of a comparison (tens of thousands of entries per layer), kept flat as
        # file_analysis._apply_layer's: both layer sources list a directory's entries one after
        # another, so most new paths reuse the set of children of the path before. Forgotten
        # whenever a removal may have dropped that set.
        last_parent: str | None = None
        siblings: set[str] = set()
        for entry in listing.entries:
            path = entry.path
            if not path:
                continue
            lower = paths.get(path)
            if lower is None:
                parent = path.rpartition("/")[0]
                if parent != last_parent:
                    if parent and parent not in paths:
                        self._imply_parents(parent, index, implied)
                    kids = children.get(parent)
                    if kids is None:
                        kids = children[parent] = set()
                    last_parent, siblings = parent, kids
                siblings.add(path)
                paths[path] = (entry, index)
                continue
            if path in implied:
                implied.discard(path)
                paths[path] = (entry, index)
                continue
            old = lower[0]
            if entry.type is not dir_type:
                if path in children:
                    self.remove_below(path)  # a directory replaced by a file takes its contents along
                    last_parent = None
            elif old.type is dir_type and (old.mode, old.uid, old.gid) == (entry.mode, entry.uid, entry.gid):
                continue
            paths[path] = (entry, index)

    def _imply_parents(self, directory: str, index: int, implied: set[str]) -> None:
        """Make `directory` and the directories above it that no layer wrote yet."""
        missing: list[str] = []
        while directory and directory not in self.paths:
            missing.append(directory)
            directory = directory.rpartition("/")[0]
        for path in reversed(missing):
            self._place(path, (LayerEntry(path, EntryType.DIR, 0, 0o755, 0, 0), index))
            implied.add(path)


def _replay(replay: _Replay, layers: Iterable[tuple[int, LayerListing]]) -> _Replay:
    for index, listing in layers:
        replay.apply(index, listing)
    return replay


def final_filesystem(layers: Sequence[tuple[str, LayerListing]]) -> FinalPaths:
    """Every path of the stack's final filesystem with its entry and the index of the layer
    that wrote it."""
    return _replay(_Replay(), enumerate(listing for _, listing in layers)).paths


def final_filesystems(
    left: Sequence[tuple[str, LayerListing]], right: Sequence[tuple[str, LayerListing]], shared: int
) -> tuple[FinalPaths, FinalPaths]:
    """Both stacks' final filesystems; their first `shared` layers (the same chain ids) are
    replayed once, and a path neither stack's own layers touch is the same object in both."""
    listings = [listing for _, listing in left]
    base = _replay(_Replay(), enumerate(listings[:shared]))
    ours = _replay(base.copy(), enumerate(listings[shared:], start=shared))
    theirs = _replay(base, enumerate((listing for _, listing in right[shared:]), start=shared))
    return ours.paths, theirs.paths
