"""Where a path's bytes lie as of a layer: removals, opaque directories, directories replaced by
files, symlinks followed inside the image, hard links; checked by hand and against the
filesystem replay (`filesystem_at`) on generated layer stacks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dockerscope.service.file_analysis import FileStatus, analyze_layers, filesystem_at
from dockerscope.service.file_reading import FileNotReadable, FileVersion, locate_file, locate_final
from dockerscope.service.final_filesystem import final_filesystem
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing
from layer_stacks import PATHS, listings, writes_below_a_file


def file(path: str, size: int = 1) -> LayerEntry:
    return LayerEntry(path, EntryType.FILE, size, 0o644, 0, 0)


def directory(path: str) -> LayerEntry:
    return LayerEntry(path, EntryType.DIR, 0, 0o755, 0, 0)


def symlink(path: str, target: str) -> LayerEntry:
    return LayerEntry(path, EntryType.SYMLINK, 0, 0o777, 0, 0, target)


def hardlink(path: str, target: str, size: int = 1) -> LayerEntry:
    return LayerEntry(path, EntryType.HARDLINK, size, 0o644, 0, 0, target)


def layer(*entries: LayerEntry, deleted: tuple[str, ...] = (), opaque: tuple[str, ...] = ()) -> LayerListing:
    return LayerListing(entries=entries, deleted=frozenset(deleted), opaque=frozenset(opaque))


def image(*listings: LayerListing):
    return analyze_layers([(f"sha256:{index:064x}", listing) for index, listing in enumerate(listings)])


def where(files, as_of: int, path: str) -> tuple[int, str]:
    version = locate_file(files, as_of, path)
    return version.layer, version.member


def test_the_highest_layer_at_or_below_wins() -> None:
    files = image(layer(directory("etc"), file("etc/os")), layer(file("etc/os", 5)), layer(file("etc/other")))
    assert where(files, 0, "/etc/os") == (0, "etc/os")
    assert where(files, 1, "etc/os") == (1, "etc/os")
    assert where(files, 2, "./etc/os") == (1, "etc/os")


def test_a_removed_file_is_gone_above_its_removal_and_there_below_it() -> None:
    files = image(layer(directory("etc"), file("etc/os")), layer(deleted=("etc/os",)))
    with pytest.raises(FileNotReadable, match="not in the image as of layer 2"):
        locate_file(files, 1, "etc/os")
    assert where(files, 0, "etc/os") == (0, "etc/os")


def test_removing_or_hiding_a_directory_takes_what_lay_below_it() -> None:
    files = image(
        layer(directory("a"), directory("a/b"), file("a/b/c"), directory("o"), directory("o/p"), file("o/p/q")),
        layer(deleted=("a",)),
        layer(directory("a"), directory("a/b")),
        layer(directory("o"), opaque=("o",)),
    )
    with pytest.raises(FileNotReadable, match="/a/b/c is not in the image"):
        locate_file(files, 2, "a/b/c")
    assert where(files, 2, "o/p/q") == (0, "o/p/q")
    with pytest.raises(FileNotReadable, match="/o/p is not in the image"):
        locate_file(files, 3, "o/p/q")


def test_a_directory_replaced_by_a_file_and_back_keeps_nothing_from_below() -> None:
    files = image(layer(directory("d"), file("d/f")), layer(file("d")), layer(directory("d")))
    with pytest.raises(FileNotReadable, match="/d is not a directory"):
        locate_file(files, 1, "d/f")
    with pytest.raises(FileNotReadable, match="/d/f is not in the image"):
        locate_file(files, 2, "d/f")


def test_symlinks_are_followed_inside_the_image_and_never_out_of_it() -> None:
    files = image(
        layer(
            directory("bin"),
            file("bin/busybox", 900),
            symlink("bin/sh", "busybox"),
            symlink("usr", "/"),
            symlink("escape", "../../../../bin/sh"),
            directory("lib"),
            symlink("lib/here", "../bin"),
        )
    )
    version = locate_file(files, 0, "usr/lib/here/sh")
    assert (version.path, version.layer, version.entry.size) == ("bin/busybox", 0, 900)
    assert version.followed == ("/usr → /", "/lib/here → /bin", "/bin/sh → /bin/busybox")
    assert locate_file(files, 0, "escape").path == "bin/busybox"


def test_symlink_loops_and_dangling_links_say_so() -> None:
    files = image(layer(symlink("a", "b"), symlink("b", "a"), symlink("nowhere", "/missing")))
    with pytest.raises(FileNotReadable, match="more than 40 symlinks"):
        locate_file(files, 0, "a")
    with pytest.raises(FileNotReadable, match="/missing is not in the image"):
        locate_file(files, 0, "nowhere")


def test_directories_and_devices_have_no_contents_to_show() -> None:
    files = image(layer(directory("dev"), LayerEntry("dev/null", EntryType.OTHER, 0, 0o666, 0, 0)))
    with pytest.raises(FileNotReadable, match="/dev is a directory"):
        locate_file(files, 0, "dev")
    with pytest.raises(FileNotReadable, match="device"):
        locate_file(files, 0, "dev/null")
    with pytest.raises(FileNotReadable, match="/ is a directory"):
        locate_file(files, 0, "/")


def test_a_hard_link_reads_the_bytes_its_layer_keeps_under_the_linked_name() -> None:
    files = image(layer(directory("bin"), file("bin/a", 7), hardlink("bin/b", "bin/a", 7)))
    assert where(files, 0, "bin/b") == (0, "bin/a")


@settings(max_examples=150, deadline=None)
@given(st.lists(listings(), min_size=1, max_size=5))
def test_every_file_is_found_where_the_filesystem_replay_has_it(layers: list[LayerListing]) -> None:
    assume(not writes_below_a_file(layers))
    files = image(*layers)
    for as_of in range(len(layers)):
        present = {
            change.path: change
            for change in filesystem_at(files, as_of)
            if change.status is not FileStatus.REMOVED or change.layer != as_of
        }
        for path in PATHS:
            change = present.get(path)
            prefixes = [path[:end] for end in range(len(path) + 1) if end == len(path) or path[end] == "/"]
            through = [present.get(prefix) for prefix in prefixes]
            if any(
                item is not None and item.entry is not None and item.entry.type is EntryType.SYMLINK for item in through
            ):
                continue  # followed: test_symlinks_are_followed_inside_the_image_and_never_out_of_it
            if change is None or change.entry is None or change.entry.type is not EntryType.FILE:
                with pytest.raises(FileNotReadable):
                    locate_file(files, as_of, path)
            else:
                assert where(files, as_of, path) == (change.layer, path)


def _found(locate: Callable[..., FileVersion], *arguments: object) -> tuple[int, str] | str:
    try:
        version = locate(*arguments)
    except FileNotReadable as error:
        return str(error)
    return version.layer, version.member


@settings(max_examples=150, deadline=None)
@given(st.lists(listings(), min_size=1, max_size=5))
def test_the_final_filesystem_finds_what_the_top_layer_has(layers: list[LayerListing]) -> None:
    """The comparison finds files in a final filesystem replayed from listings; it finds each one
    where the layers' changes put it, symlinks included, and says the same when it cannot."""
    assume(not writes_below_a_file(layers))
    files, top = image(*layers), len(layers) - 1
    final = final_filesystem([(f"sha256:{index:064x}", listing) for index, listing in enumerate(layers)])
    for path in [*PATHS, "a/t"]:
        assert _found(locate_final, final, top, path) == _found(locate_file, files, top, path)
