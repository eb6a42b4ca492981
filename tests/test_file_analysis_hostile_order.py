"""The layer replay on entries in an order no docker tar has, as a hand-made one may list them."""

from __future__ import annotations

from dockerscope.service.file_analysis import FileStatus, analyze_layers, filesystem_at
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing


def file(path: str, size: int) -> LayerEntry:
    return LayerEntry(path, EntryType.FILE, size, 0o644, 0, 0)


def test_paths_written_below_a_directory_replaced_by_a_file_go_with_it_when_it_is_removed() -> None:
    # Layer 1 writes into `a`, then turns `a` into a file (dropping the directory with what it
    # held), then writes below `a` again; layer 2 removes `a`: nothing below it may survive.
    lower = LayerListing((LayerEntry("a", EntryType.DIR, 0, 0o755, 0, 0), file("a/x", 5)))
    rewrite = LayerListing((file("a/y", 7), file("a", 1), file("a/z", 3)))
    removal = LayerListing((), deleted=frozenset({"a"}))

    image = analyze_layers([("l0", lower), ("l1", rewrite), ("l2", removal)])

    assert (image.total_bytes, image.kept_bytes, image.wasted_bytes) == (16, 0, 16)
    # What is left after layer 2: nothing but its own removal of `a`.
    assert [(change.path, change.status) for change in filesystem_at(image, 2)] == [("a", FileStatus.REMOVED)]
    assert {item.path for item in image.wasted_paths} == {"a", "a/x", "a/y", "a/z"}
