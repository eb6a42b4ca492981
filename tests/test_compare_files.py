"""One path in two images: compare_versions reads both versions through a source's
read_layer_files and diffs text; the comparison's file tree rows (ComparedFiles)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

import pytest

from dockerscope.service import ChangeType, ComparedImage, FileNotReadable, ReadCancelled, compare_versions
from dockerscope.service.compare import compare_listings
from dockerscope.service.file_compare import MAX_DIFF_LINES
from dockerscope.service.file_reading import FILE_VIEW_LIMIT, SinkOpener
from dockerscope.service.final_filesystem import final_filesystem
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing
from dockerscope.ui.compare_files import ComparedFiles
from dockerscope.ui.file_view import SortOrder

CHUNK = 64 * 1024


class BytesSource:
    """Serves file bytes from memory, in chunks, as a source's read_layer_files does; counts the
    bytes it handed over."""

    def __init__(self, contents: Mapping[tuple[str, int, str], bytes]) -> None:
        self.contents = contents
        self.handed = 0

    async def read_layer_files(
        self,
        image_id: str,
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        *,
        container_id: str | None = None,
        cancel: threading.Event | None = None,
        on_progress: Any = None,
    ) -> str:
        for layer, paths in wanted.items():
            for path in paths:
                data = self.contents.get((image_id, layer, path))
                if data is None:
                    continue
                sink = open_sink(layer, path, len(data))
                for start in range(0, len(data), CHUNK):
                    if cancel is not None and cancel.is_set():
                        break
                    self.handed += len(data[start : start + CHUNK])
                    if not sink.write(data[start : start + CHUNK]):
                        break
                sink.close()
        return "memory"


def _file(path: str, size: int, mode: int = 0o644, uid: int = 0) -> LayerEntry:
    return LayerEntry(path, EntryType.FILE, size, mode, uid, 0)


def _sides(left: bytes, right: bytes, path: str = "etc/conf") -> tuple[BytesSource, ComparedImage, ComparedImage]:
    source = BytesSource({("left", 0, path): left, ("right", 0, path): right})
    left_final = final_filesystem([("d1", LayerListing((_file(path, len(left)),)))])
    right_final = final_filesystem([("d2", LayerListing((_file(path, len(right)),)))])
    return source, ComparedImage("left", left_final, 0), ComparedImage("right", right_final, 0)


async def test_two_texts_give_a_unified_diff() -> None:
    source, left, right = _sides(b"one\ntwo\nthree\n", b"one\n2\nthree\nfour\n")
    result = await compare_versions(source, "etc/conf", left, right, ("a", "b"))  # type: ignore[arg-type]
    assert not result.same and result.no_diff == ""
    assert result.diff == (
        "--- a/etc/conf",
        "+++ b/etc/conf",
        "@@ -1,3 +1,4 @@",
        " one",
        "-two",
        "+2",
        " three",
        "+four",
    )


async def test_the_same_bytes_give_no_diff_lines() -> None:
    source, left, right = _sides(b"same\n", b"same\n")
    result = await compare_versions(source, "etc/conf", left, right)  # type: ignore[arg-type]
    assert result.same and result.diff == ()


async def test_binary_files_say_so_and_whether_they_differ() -> None:
    source, left, right = _sides(b"\x00\x01", b"\x00\x02")
    result = await compare_versions(source, "etc/conf", left, right)  # type: ignore[arg-type]
    assert result.no_diff == "binary" and not result.same and result.diff == ()


async def test_big_files_of_one_size_are_read_through_to_tell_whether_they_differ() -> None:
    size = FILE_VIEW_LIMIT * 3
    tail_differs = b"x" * (size - 1) + b"y"
    source, left, right = _sides(b"x" * size, tail_differs)
    result = await compare_versions(source, "etc/conf", left, right)  # type: ignore[arg-type]
    assert result.no_diff == "larger than 1 MiB" and not result.same
    assert result.before.size == result.after.size == size and len(result.before.data) == FILE_VIEW_LIMIT
    source, left, right = _sides(b"x" * size, b"x" * size)
    assert (await compare_versions(source, "etc/conf", left, right)).same  # type: ignore[arg-type]
    # Different sizes differ without reading past the first MiB of each.
    source, left, right = _sides(b"x" * size, b"x" * (size + 1))
    assert not (await compare_versions(source, "etc/conf", left, right)).same  # type: ignore[arg-type]
    assert source.handed <= 2 * (FILE_VIEW_LIMIT + CHUNK)


async def test_too_many_lines_are_not_diffed() -> None:
    source, left, right = _sides(b"a\n" * (MAX_DIFF_LINES + 1), b"b\n" * (MAX_DIFF_LINES + 1))
    result = await compare_versions(source, "etc/conf", left, right)  # type: ignore[arg-type]
    assert result.no_diff == f"more than {MAX_DIFF_LINES:,} lines" and not result.same


async def test_a_missing_path_and_a_cancelled_read_raise() -> None:
    source, left, right = _sides(b"a", b"b")
    with pytest.raises(FileNotReadable):
        await compare_versions(source, "etc/other", left, right)  # type: ignore[arg-type]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ReadCancelled):
        await compare_versions(source, "etc/conf", left, right, cancel=cancel)  # type: ignore[arg-type]


def _dir(path: str) -> LayerEntry:
    return LayerEntry(path, EntryType.DIR, 0, 0o755, 0, 0)


def test_the_tree_of_differences_marks_rows_and_totals_directories() -> None:
    base = LayerListing((_dir("app"), _dir("app/lib"), _file("app/lib/a", 100), _file("app/conf", 10), _dir("etc")))
    left = [("d1", base)]
    right = [
        ("d1", base),
        (
            "d2",
            LayerListing((_file("app/conf", 12, 0o600, uid=1000), _file("etc/new", 5)), deleted=frozenset({"app/lib"})),
        ),
    ]
    differences = compare_listings(left, right, shared_layers=1)
    compared = ComparedFiles(differences)
    view = compared.view()
    top = {node.name: node for node in view.children_of("", SortOrder.NAME)}
    assert compared.describe(top["app"]).split() == ["-98B", "3", "paths", "below"]
    assert compared.describe(top["etc"]).split() == ["+5B", "1", "path", "below"]
    rows = {node.name: node for node in view.children_of("app", SortOrder.NAME)}
    # A removed directory keeps what was below it: it opens like any directory.
    assert rows["lib"].is_dir and view.has_children("app/lib")
    assert compared.describe(rows["conf"]).strip() == "+2B  10B→12B, mode -rw-r--r--→-rw-------, owner 0:0→1000:0"
    assert [node.name for node in view.children_of("app", SortOrder.SIZE)] == ["lib", "conf"]
    assert compared.counts == {ChangeType.ADDED: 1, ChangeType.REMOVED: 2, ChangeType.CHANGED: 1}
    filtered = compared.view("new")
    assert filtered.matches == 1 and [node.name for node in filtered.children_of("", SortOrder.NAME)] == ["etc"]


def test_directories_total_every_change_below_them_however_deep() -> None:
    left = [("d1", LayerListing((_file("a/x", 10),)))]
    right = [("d2", LayerListing((_file("a/x", 4), _file("a/b/c/d", 7), _file("e", 1))))]
    compared = ComparedFiles(compare_listings(left, right, shared_layers=0))
    view = compared.view()
    nodes = {node.path: node for path in ("", "a", "a/b") for node in view.children_of(path, SortOrder.NAME)}
    # a/x -6B; a/b, a/b/c (directories the analysis adds) and a/b/c/d +7B
    assert compared.describe(nodes["a"]).split() == ["+1B", "4", "paths", "below"]
    assert compared.describe(nodes["a/b"]).split() == ["+7B", "2", "paths", "below"]
    assert compared.describe(nodes["e"]).split()[0] == "+1B"
