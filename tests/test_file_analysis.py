"""The layer replay: statuses, opaque directories, and the wasted-space formula of the README."""

from __future__ import annotations

import math

import pytest

from dockerscope.service.file_analysis import FileChange, FileStatus, analyze_layers, filesystem_at
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing


def file(path: str, size: int, mode: int = 0o644, uid: int = 0) -> LayerEntry:
    return LayerEntry(path, EntryType.FILE, size, mode, uid, 0)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> LayerEntry:
    return LayerEntry(path, EntryType.DIR, 0, mode, uid, gid)


def layer(*entries: LayerEntry, deleted: tuple[str, ...] = (), opaque: tuple[str, ...] = ()) -> LayerListing:
    return LayerListing(entries=entries, deleted=frozenset(deleted), opaque=frozenset(opaque))


def statuses(image, index: int) -> dict[str, FileStatus]:
    return {change.path: change.status for change in image.layers[index].changes}


def as_of(image, index: int) -> dict[str, FileStatus]:
    """Path -> status as the filesystem view shows it: only layer `index`'s own changes are marked."""
    return {
        change.path: change.status if change.layer == index else FileStatus.UNCHANGED
        for change in filesystem_at(image, index)
    }


def numbered(*listings: LayerListing) -> list[tuple[str, LayerListing]]:
    return [(f"sha256:{index:064x}", listing) for index, listing in enumerate(listings)]


def test_a_single_layer_adds_everything_and_wastes_nothing() -> None:
    image = analyze_layers(numbered(layer(directory("bin"), file("bin/sh", 100), file("etc", 5))))
    assert statuses(image, 0) == {"bin": FileStatus.ADDED, "bin/sh": FileStatus.ADDED, "etc": FileStatus.ADDED}
    assert (image.total_bytes, image.kept_bytes, image.wasted_bytes) == (105, 105, 0)
    assert image.efficiency == 1.0
    assert image.user_wasted_ratio == 0.0
    assert image.layers[0].entry_count == 3
    assert image.layers[0].file_count == 2


def test_an_overwritten_file_wastes_its_lower_copy_not_the_kept_one() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("app"), file("app/config", 1000)),
            layer(directory("app"), file("app/config", 10)),
        )
    )
    assert statuses(image, 1) == {"app": FileStatus.UNCHANGED, "app/config": FileStatus.MODIFIED}
    assert image.total_bytes == 1010
    assert image.kept_bytes == 10
    assert image.wasted_bytes == 1000
    assert image.efficiency == pytest.approx(10 / 1010)
    assert image.user_bytes == 10
    assert image.user_wasted_ratio == pytest.approx(100.0)
    assert [layer.wasted for layer in image.layers] == [1000, 0]
    (wasted,) = image.wasted_paths
    assert (wasted.path, wasted.copies, wasted.wasted, wasted.layers, wasted.kept) == (
        "app/config",
        2,
        1000,
        (0,),
        True,
    )


def test_a_whiteout_removes_a_file_or_a_whole_directory_and_wastes_every_byte_below() -> None:
    image = analyze_layers(
        numbered(
            layer(
                file("big.bin", 64), directory("data"), directory("data/sub"), file("data/sub/a", 3), file("data/b", 4)
            ),
            layer(deleted=("big.bin", "data")),
        )
    )
    removed = {change.path: change.size for change in image.layers[1].changes}
    assert removed == {"big.bin": 64, "data": 7}
    assert image.layers[1].removed == 2
    assert (image.kept_bytes, image.wasted_bytes) == (0, 71)
    assert image.efficiency == 0.0
    assert {item.path for item in image.wasted_paths} == {"big.bin", "data/sub/a", "data/b"}
    assert not any(item.kept for item in image.wasted_paths)
    assert sorted(filesystem_at(image, 1)) == sorted(image.layers[1].changes)


def test_an_opaque_directory_hides_lower_contents_except_what_it_writes_again() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("opq"), directory("opq/old"), file("opq/old/file", 8), file("opq/same", 5)),
            layer(
                directory("opq"), directory("opq/new"), file("opq/new/file", 6), file("opq/same", 2), opaque=("opq",)
            ),
        )
    )
    assert statuses(image, 1) == {
        "opq": FileStatus.UNCHANGED,
        "opq/new": FileStatus.ADDED,
        "opq/new/file": FileStatus.ADDED,
        "opq/old": FileStatus.REMOVED,
        "opq/same": FileStatus.MODIFIED,
    }
    assert image.layers[1].opaque == frozenset({"opq"})
    assert (image.total_bytes, image.kept_bytes, image.wasted_bytes) == (21, 8, 13)
    final = {change.path for change in filesystem_at(image, 1) if change.status is not FileStatus.REMOVED}
    assert final == {"opq", "opq/new", "opq/new/file", "opq/same"}


def test_a_directory_that_only_changes_mode_or_owner_is_modified() -> None:
    image = analyze_layers(numbered(layer(directory("srv")), layer(directory("srv", mode=0o700, uid=1000))))
    assert statuses(image, 1) == {"srv": FileStatus.MODIFIED}


def test_a_file_replacing_a_directory_takes_the_directory_contents_along() -> None:
    image = analyze_layers(
        numbered(layer(directory("x"), file("x/inner", 9)), layer(file("x", 1))),
    )
    assert statuses(image, 1) == {"x": FileStatus.MODIFIED}
    assert (image.kept_bytes, image.wasted_bytes) == (1, 9)
    assert as_of(image, 1) == {"x": FileStatus.MODIFIED}


def test_hard_links_cost_their_bytes_once() -> None:
    link = LayerEntry("b", EntryType.HARDLINK, 50, 0o644, 0, 0, "a")
    image = analyze_layers(numbered(layer(file("a", 50), link)))
    assert image.total_bytes == 50
    assert image.layers[0].file_count == 2


def test_parent_directories_a_tar_leaves_out_are_implied() -> None:
    image = analyze_layers(numbered(layer(file("usr/share/doc/readme", 7))))
    assert statuses(image, 0) == {
        "usr": FileStatus.ADDED,
        "usr/share": FileStatus.ADDED,
        "usr/share/doc": FileStatus.ADDED,
        "usr/share/doc/readme": FileStatus.ADDED,
    }
    assert image.layers[0].entry_count == 1


def test_the_filesystem_as_of_a_layer_marks_only_that_layers_changes() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("etc"), file("etc/passwd", 10), file("etc/group", 5)),
            layer(directory("etc"), file("etc/passwd", 12), file("etc/hosts", 3), deleted=("etc/group",)),
            layer(file("readme", 1)),
        )
    )
    assert as_of(image, 1) == {
        "etc": FileStatus.UNCHANGED,
        "etc/group": FileStatus.REMOVED,
        "etc/hosts": FileStatus.ADDED,
        "etc/passwd": FileStatus.MODIFIED,
    }
    assert as_of(image, 0) == {"etc": FileStatus.ADDED, "etc/group": FileStatus.ADDED, "etc/passwd": FileStatus.ADDED}
    assert as_of(image, 2) == {
        "etc": FileStatus.UNCHANGED,
        "etc/hosts": FileStatus.UNCHANGED,
        "etc/passwd": FileStatus.UNCHANGED,
        "readme": FileStatus.ADDED,
    }
    sizes = {change.path: change.size for change in filesystem_at(image, 2)}
    assert sizes["etc/passwd"] == 12


def test_wasted_is_always_total_minus_kept_and_per_layer_waste_adds_up() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("a"), file("a/1", 100), file("a/2", 200), directory("b"), file("b/3", 300)),
            layer(file("a/1", 10), deleted=("b",)),
            layer(directory("a"), file("a/2", 20), opaque=("a",)),
            layer(file("a", 5)),
        )
    )
    assert image.total_bytes == 635
    assert image.kept_bytes == 5
    assert image.wasted_bytes == image.total_bytes - image.kept_bytes == 630
    assert sum(layer.wasted for layer in image.layers) == image.wasted_bytes
    assert sum(item.wasted for item in image.wasted_paths) == image.wasted_bytes
    assert [item.path for item in image.wasted_paths][:2] == ["b/3", "a/2"]


def test_a_directory_a_tar_lists_after_its_contents_is_added_once() -> None:
    image = analyze_layers(numbered(layer(file("srv/app/run", 4), directory("srv/app", mode=0o700), directory("srv"))))
    changes = image.layers[0].changes
    assert sorted(change.path for change in changes) == ["srv", "srv/app", "srv/app/run"]
    assert next(change.entry for change in changes if change.path == "srv/app").mode == 0o700
    assert image.layers[0].added == 3


def implied(path: str, layer: int) -> FileChange:
    """The change for a directory a layer needs but does not list: made 0755 and owned by root."""
    return FileChange(path, FileStatus.ADDED, directory(path), 0, layer)


def test_an_image_without_layers_or_file_bytes_is_fully_efficient() -> None:
    for image in (analyze_layers([]), analyze_layers(numbered(layer(directory("etc")), layer(directory("tmp"))))):
        assert (image.total_bytes, image.kept_bytes, image.wasted_bytes, image.user_bytes) == (0, 0, 0, 0)
        assert (image.efficiency, image.user_wasted_ratio) == (1.0, 0.0)
        assert image.wasted_paths == ()


def test_waste_with_no_user_bytes_is_an_infinite_user_ratio() -> None:
    image = analyze_layers(numbered(layer(file("tool", 10)), layer(deleted=("tool",))))
    assert (image.total_bytes, image.kept_bytes, image.wasted_bytes, image.user_bytes) == (10, 0, 10, 0)
    assert image.user_wasted_ratio == math.inf


def test_layers_keep_their_position_and_diff_id() -> None:
    listings = numbered(layer(file("a", 1)), layer(file("b", 1)), layer())
    image = analyze_layers(listings)
    expected = [(index, diff_id) for index, (diff_id, _) in enumerate(listings)]
    assert [(item.index, item.diff_id) for item in image.layers] == expected


@pytest.mark.parametrize(
    "changed", [directory("srv", mode=0o700), directory("srv", uid=1000), directory("srv", gid=50)], ids=str
)
def test_a_directory_whose_mode_uid_or_gid_alone_changes_is_modified_and_keeps_contents(changed: LayerEntry) -> None:
    image = analyze_layers(numbered(layer(directory("srv"), file("srv/f", 2)), layer(changed)))
    assert statuses(image, 1) == {"srv": FileStatus.MODIFIED}
    assert image.layers[1].modified == 1
    assert as_of(image, 1) == {"srv": FileStatus.MODIFIED, "srv/f": FileStatus.UNCHANGED}
    assert image.kept_bytes == 2


def test_a_hard_link_costs_nothing_whether_kept_or_removed() -> None:
    link = LayerEntry("b", EntryType.HARDLINK, 50, 0o644, 0, 0, "a")
    kept = analyze_layers(numbered(layer(file("a", 50), link)))
    assert (kept.total_bytes, kept.kept_bytes, kept.wasted_bytes, kept.efficiency) == (50, 50, 0, 1.0)

    removed = analyze_layers(numbered(layer(file("a", 50), link), layer(deleted=("b",))))
    assert removed.layers[1].changes == (FileChange("b", FileStatus.REMOVED, link, 0, 1),)
    assert (removed.total_bytes, removed.kept_bytes, removed.wasted_bytes, removed.efficiency) == (50, 50, 0, 1.0)
    assert [item.wasted for item in removed.layers] == [0, 0]
    assert removed.wasted_paths == ()


def test_a_whiteout_names_what_it_removed_or_nothing_when_no_lower_layer_had_the_path() -> None:
    image = analyze_layers(numbered(layer(file("kept", 3), file("gone", 4)), layer(deleted=("ghost", "gone"))))
    assert image.layers[1].changes == (
        FileChange("ghost", FileStatus.REMOVED, None, 0, 1),
        FileChange("gone", FileStatus.REMOVED, file("gone", 4), 4, 1),
    )
    assert image.layers[1].removed == 2
    assert (image.kept_bytes, image.wasted_bytes) == (3, 4)


def test_implied_parents_are_root_owned_0755_directories_added_by_the_layer_that_needs_them() -> None:
    image = analyze_layers(numbered(layer(file("etc", 1)), layer(file("usr/share/doc/readme", 7))))
    top = image.layers[1]
    assert set(top.changes) == {
        FileChange("usr/share/doc/readme", FileStatus.ADDED, file("usr/share/doc/readme", 7), 7, 1),
        implied("usr", 1),
        implied("usr/share", 1),
        implied("usr/share/doc", 1),
    }
    assert (top.entry_count, top.file_count, top.added, top.modified, top.size) == (1, 1, 4, 0, 7)


def test_a_whiteout_of_an_implied_directory_removes_everything_below_it() -> None:
    image = analyze_layers(numbered(layer(file("a/b/c/d", 5), file("a/e", 1)), layer(deleted=("a/b",))))
    assert image.layers[1].changes == (FileChange("a/b", FileStatus.REMOVED, directory("a/b"), 5, 1),)
    assert (image.kept_bytes, image.wasted_bytes) == (1, 5)
    assert as_of(image, 1) == {"a": FileStatus.UNCHANGED, "a/b": FileStatus.REMOVED, "a/e": FileStatus.UNCHANGED}


def test_removing_a_directory_after_a_file_below_it_was_removed() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("a"), directory("a/b"), file("a/b/c", 3), file("a/b/d", 2)),
            layer(deleted=("a/b/c",)),
            layer(deleted=("a/b",)),
        )
    )
    assert image.layers[2].changes == (FileChange("a/b", FileStatus.REMOVED, directory("a/b"), 2, 2),)
    assert (image.kept_bytes, image.wasted_bytes) == (0, 5)
    assert [item.wasted for item in image.layers] == [5, 0, 0]


def test_the_root_entry_is_skipped_and_every_entry_after_it_counted() -> None:
    image = analyze_layers(numbered(layer(directory(""), directory("d1"), directory("d2"), file("f", 1))))
    assert statuses(image, 0) == {"d1": FileStatus.ADDED, "d2": FileStatus.ADDED, "f": FileStatus.ADDED}
    assert (image.layers[0].entry_count, image.layers[0].file_count, image.layers[0].added) == (3, 1, 3)


def test_a_layer_that_implies_directories_and_overwrites_files() -> None:
    image = analyze_layers(
        numbered(
            layer(file("old", 2), file("older", 3)),
            layer(file("new/dir/f", 1), file("old", 4), file("older", 5)),
        )
    )
    assert statuses(image, 1) == {
        "new": FileStatus.ADDED,
        "new/dir": FileStatus.ADDED,
        "new/dir/f": FileStatus.ADDED,
        "old": FileStatus.MODIFIED,
        "older": FileStatus.MODIFIED,
    }
    assert (image.layers[1].added, image.layers[1].modified) == (3, 2)
    assert (image.total_bytes, image.kept_bytes, image.wasted_bytes) == (15, 10, 5)


def test_an_opaque_directory_with_nothing_below_it_hides_nothing() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("empty"), file("f", 1)),
            layer(directory("empty"), directory("new"), opaque=("empty", "new")),
        )
    )
    assert statuses(image, 1) == {"empty": FileStatus.UNCHANGED, "new": FileStatus.ADDED}
    assert image.kept_bytes == 1


def test_an_opaque_directory_hides_the_lower_contents_of_subdirectories_it_writes_again() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("opq"), directory("opq/sub"), file("opq/sub/old", 8), file("opq/sub/same", 4)),
            layer(
                directory("opq"),
                directory("opq/sub"),
                file("opq/sub/new", 1),
                file("opq/sub/same", 4),
                opaque=("opq",),
            ),
        )
    )
    assert statuses(image, 1) == {
        "opq": FileStatus.UNCHANGED,
        "opq/sub": FileStatus.UNCHANGED,
        "opq/sub/new": FileStatus.ADDED,
        "opq/sub/old": FileStatus.REMOVED,
        "opq/sub/same": FileStatus.MODIFIED,
    }
    assert FileChange("opq/sub/old", FileStatus.REMOVED, file("opq/sub/old", 8), 8, 1) in image.layers[1].changes
    assert (image.total_bytes, image.kept_bytes, image.wasted_bytes) == (17, 5, 12)
    assert [item.wasted for item in image.layers] == [12, 0]


def test_an_opaque_directory_whose_subdirectory_becomes_a_file_removes_the_subdirectory_once() -> None:
    image = analyze_layers(
        numbered(
            layer(directory("opq"), directory("opq/x"), file("opq/x/f", 3)),
            layer(directory("opq"), file("opq/x", 1), opaque=("opq",)),
        )
    )
    assert statuses(image, 1) == {"opq": FileStatus.UNCHANGED, "opq/x": FileStatus.MODIFIED}
    assert (image.kept_bytes, image.wasted_bytes) == (1, 3)
