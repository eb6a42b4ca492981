"""Generated layer stacks for property tests: a few paths written as files, directories and
symlinks, whiteouts, opaque directories; and the check that a stack never writes below a file."""

from __future__ import annotations

from hypothesis import strategies as st

from dockerscope.service.final_filesystem import final_filesystem
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing

PATHS = ["a", "b", "a/x", "a/y", "a/x/z", "b/x", "c/d/e", "t", "t/x"]


@st.composite
def listings(draw: st.DrawFn) -> LayerListing:
    entries = []
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=6)):
        kind = draw(st.sampled_from([EntryType.FILE, EntryType.DIR, EntryType.SYMLINK]))
        mode = draw(st.sampled_from([0o755, 0o700]))
        size = draw(st.integers(0, 3)) if kind is EntryType.FILE else 0
        entries.append(LayerEntry(path, kind, size, mode, 0, 0, "t" if kind is EntryType.SYMLINK else ""))
    # A tar writing below a path it also writes as a file is nonsense the two replays may read
    # differently (the analysis implies parents at the end of a layer); no engine makes one.
    files = {entry.path for entry in entries if entry.type is not EntryType.DIR}
    entries = [entry for entry in entries if not any(entry.path.startswith(path + "/") for path in files)]
    deleted = frozenset(draw(st.sets(st.sampled_from(PATHS), max_size=2)))
    written_dirs = [entry.path for entry in entries if entry.type is EntryType.DIR]
    opaque = frozenset(draw(st.sets(st.sampled_from(written_dirs), max_size=1))) if written_dirs else frozenset()
    return LayerListing(entries=tuple(entries), deleted=deleted, opaque=opaque)


def stack(layers: list[LayerListing], tag: str) -> list[tuple[str, LayerListing]]:
    return [(f"sha256:{tag}{index}", listing) for index, listing in enumerate(layers)]


def writes_below_a_file(layers: list[LayerListing]) -> bool:
    """Whether a layer writes below a path a lower layer left as a file or symlink: no engine
    makes such a stack, and the two replays may read it differently."""
    for index, listing in enumerate(layers):
        below = final_filesystem(stack(layers[:index], "w"))
        for entry in listing.entries:
            parts = entry.path.split("/")
            prefixes = ("/".join(parts[:count]) for count in range(1, len(parts)))
            if any(prefix in below and below[prefix][0].type is not EntryType.DIR for prefix in prefixes):
                return True
    return False
