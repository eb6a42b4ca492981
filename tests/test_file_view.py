"""Grouping changes into directories for the file tree: sizes, sorting, filtering."""

from __future__ import annotations

from dockerscope.service.file_analysis import FileChange, FileStatus, analyze_layers, filesystem_at
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing
from dockerscope.ui.file_view import SortOrder, build_view


def file(path: str, size: int) -> LayerEntry:
    return LayerEntry(path, EntryType.FILE, size, 0o644, 0, 0)


def directory(path: str) -> LayerEntry:
    return LayerEntry(path, EntryType.DIR, 0, 0o755, 0, 0)


IMAGE = analyze_layers(
    [
        ("sha256:" + "0" * 64, LayerListing((directory("usr"), file("usr/big", 500), file("usr/small", 5)))),
        (
            "sha256:" + "1" * 64,
            LayerListing((file("usr/lib/libx.so", 70), file("readme", 9)), deleted=frozenset({"usr/small"})),
        ),
    ]
)


def names(view, path: str, order: SortOrder = SortOrder.NAME) -> list[str]:
    return [node.name for node in view.children_of(path, order)]


def test_directories_add_up_what_lies_below_and_come_first() -> None:
    view = build_view(filesystem_at(IMAGE, 1), 1)
    assert names(view, "") == ["usr", "readme"]
    usr = view.children_of("", SortOrder.NAME)[0]
    assert (usr.is_dir, usr.size, usr.status) == (True, 570, FileStatus.UNCHANGED)
    assert names(view, "usr") == ["lib", "big", "small"]
    assert names(view, "usr", SortOrder.SIZE) == ["big", "lib", "small"]


def test_only_this_layers_changes_are_marked_and_a_removal_shows_its_bytes() -> None:
    view = build_view(filesystem_at(IMAGE, 1), 1)
    nodes = {node.name: node for node in view.children_of("usr", SortOrder.NAME)}
    assert nodes["big"].status is FileStatus.UNCHANGED
    assert nodes["lib"].status is FileStatus.ADDED  # implied by the tar, made by this layer
    assert (nodes["small"].status, nodes["small"].size, nodes["small"].is_dir) == (FileStatus.REMOVED, 5, False)


def test_a_filter_keeps_matches_and_the_directories_above_them() -> None:
    view = build_view(filesystem_at(IMAGE, 1), 1, path_filter="LIBX")
    assert view.matches == 1
    assert names(view, "") == ["usr"]
    assert names(view, "usr") == ["lib"]
    assert names(view, "usr/lib") == ["libx.so"]
    assert view.children_of("", SortOrder.NAME)[0].size == 70


def test_a_directory_no_change_names_is_made_for_its_contents() -> None:
    change = FileChange("a/b/c", FileStatus.ADDED, file("a/b/c", 3), 3, 0)
    view = build_view([change], 0)
    assert names(view, "") == ["a"] and names(view, "a") == ["b"]
    assert view.children_of("", SortOrder.NAME)[0].size == 3
