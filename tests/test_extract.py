"""Extraction planned from layer listings and written from a fake source: what lands at the
destination, and that nothing lands anywhere else whatever the image's names and links say."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

import dockerscope.service.extract as extract_module
from dockerscope.service import DockerServiceError, ImageSource, ReadCancelled
from dockerscope.service.extract import (
    MAX_DEPTH,
    DestinationExists,
    ExtractError,
    ExtractPlan,
    ExtractProgress,
    ExtractResult,
    PlannedEntry,
    extract_files,
    plan_extraction,
)
from dockerscope.service.file_analysis import analyze_layers
from dockerscope.service.file_reading import FileNotReadable, SinkOpener
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, check_cancel


def file(path: str, size: int = 1, mode: int = 0o644, uid: int = 0, gid: int = 0) -> LayerEntry:
    return LayerEntry(path, EntryType.FILE, size, mode, uid, gid)


def directory(path: str, mode: int = 0o755) -> LayerEntry:
    return LayerEntry(path, EntryType.DIR, 0, mode, 0, 0)


def symlink(path: str, target: str) -> LayerEntry:
    return LayerEntry(path, EntryType.SYMLINK, 0, 0o777, 0, 0, target)


def hardlink(path: str, target: str, size: int = 1) -> LayerEntry:
    return LayerEntry(path, EntryType.HARDLINK, size, 0o644, 0, 0, target)


def device(path: str) -> LayerEntry:
    return LayerEntry(path, EntryType.OTHER, 0, 0o666, 0, 0)


def layer(*entries: LayerEntry, deleted: tuple[str, ...] = ()) -> LayerListing:
    return LayerListing(entries=entries, deleted=frozenset(deleted))


def image(*listings: LayerListing) -> Any:
    return analyze_layers([(f"sha256:{index:064x}", listing) for index, listing in enumerate(listings)])


class FakeSource:
    """Bytes per (layer, member), pushed in chunks of `chunk` bytes; `on_write` runs before each."""

    def __init__(self, data: Mapping[tuple[int, str], bytes], chunk: int = 4) -> None:
        self.data = data
        self.chunk = chunk
        self.asked: list[dict[int, list[str]]] = []
        self.on_write: Any = None

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
        self.asked.append({layer: list(paths) for layer, paths in wanted.items()})

        def read() -> None:
            for layer_index, paths in wanted.items():
                for path in paths:
                    data = self.data.get((layer_index, path))
                    if data is None:
                        continue
                    sink = open_sink(layer_index, path, len(data))
                    for start in range(0, len(data), self.chunk):
                        check_cancel(cancel)
                        if self.on_write is not None:
                            self.on_write()
                        if not sink.write(memoryview(data)[start : start + self.chunk]):
                            break
                    sink.close()

        await asyncio.to_thread(read)
        return "fake"


def run(source: FakeSource, plan: ExtractPlan, destination: Path, **options: Any) -> ExtractResult:
    return asyncio.run(extract_files(cast(ImageSource, source), "sha256:image", plan, str(destination), **options))


def planned(path: str, entry: LayerEntry, member: str = "", layer_index: int = 0) -> PlannedEntry:
    return PlannedEntry(path, entry, layer_index, member)


def plan_of(*entries: PlannedEntry, root: LayerEntry | None = None) -> ExtractPlan:
    top = PlannedEntry("", root or directory("", 0o755), 0)
    return ExtractPlan("x", "x", 0, (top, *entries))


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Path]:
    """A directory for the destination, beside an `outside` tree whose contents must never change."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    where = tmp_path / "work"
    where.mkdir()
    before = snapshot(tmp_path)
    yield where
    after = snapshot(tmp_path)
    changed = {path for path in after.keys() | before.keys() if before.get(path) != after.get(path)}
    assert all(path.startswith("work/dest") for path in changed), changed
    assert not [name for name in os.listdir(where) if "dockerscope-" in name]


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under root with its mode, inode and (for files) bytes; nothing followed."""
    seen: dict[str, tuple[int, int, bytes]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            data = Path(path).read_bytes() if stat.S_ISREG(info.st_mode) else b""
            seen[os.path.relpath(path, root)] = (info.st_mode, info.st_ino, data)
    return seen


# Planning.


def test_a_directory_is_planned_as_of_the_layer_with_the_layer_holding_each_file() -> None:
    files = image(
        layer(directory("etc"), file("etc/a", 3), file("etc/b", 2), device("etc/null")),
        layer(file("etc/a", 5), file("etc/c", 1), deleted=("etc/b",)),
        layer(file("etc/d", 1)),
    )
    plan = plan_extraction(files, 1, "/etc/")
    assert [(p.path, p.layer, p.member) for p in plan.entries] == [
        ("", 0, ""),
        ("a", 1, "etc/a"),
        ("c", 1, "etc/c"),
        ("null", 0, ""),
    ]
    assert (plan.file_count, plan.byte_count) == (2, 6)
    assert [p.path for p in plan_extraction(files, 0, "etc").entries] == ["", "a", "b", "null"]


def test_symlinked_parents_are_followed_and_a_hard_link_reads_its_target() -> None:
    files = image(
        layer(
            directory("usr"),
            directory("usr/lib"),
            file("usr/lib/x", 4),
            hardlink("usr/lib/y", "usr/lib/x", 4),
            symlink("lib", "usr/lib"),
        )
    )
    plan = plan_extraction(files, 0, "/lib")
    assert plan.image_path == "usr/lib"
    assert plan.followed == ("/lib → /usr/lib",)
    assert [(p.path, p.member) for p in plan.entries[1:]] == [("x", "usr/lib/x"), ("y", "usr/lib/x")]
    assert plan.byte_count == 4
    single = plan_extraction(files, 0, "lib/y")
    assert (single.is_directory, single.entries[0].member) == (False, "usr/lib/x")


def test_paths_under_a_symlink_of_the_image_are_left_out_and_counted() -> None:
    files = image(layer(symlink("etc", "/outside")), layer(file("etc/passwd")))
    plan = plan_extraction(files, 1, "/")
    assert [p.path for p in plan.entries] == ["", "etc"]
    assert plan.hidden == 1


def test_what_is_not_there_or_is_a_device_cannot_be_planned() -> None:
    files = image(layer(directory("dev"), device("dev/null")), layer(deleted=("dev",)))
    with pytest.raises(FileNotReadable, match="device"):
        plan_extraction(files, 0, "/dev/null")
    with pytest.raises(FileNotReadable, match="not in the image as of layer 2"):
        plan_extraction(files, 1, "/dev")


# Writing.


def test_a_tree_is_written_with_its_bytes_links_and_modes(place: Path) -> None:
    files = image(
        layer(
            directory("app", 0o750),
            directory("app/bin", 0o555),
            file("app/bin/tool", 10, 0o755),
            hardlink("app/bin/alias", "app/bin/tool", 10),
            symlink("app/bin/sh", "/bin/busybox"),
            file("app/empty", 0, 0o600),
            device("app/fifo"),
        )
    )
    source = FakeSource({(0, "app/bin/tool"): b"0123456789"})
    reports: list[ExtractProgress] = []
    result = run(source, plan_extraction(files, 0, "/app"), place / "dest", on_progress=reports.append)
    dest = place / "dest"
    assert (dest / "bin" / "tool").read_bytes() == b"0123456789"
    assert os.stat(dest / "bin" / "alias").st_ino == os.stat(dest / "bin" / "tool").st_ino
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"
    assert (dest / "empty").read_bytes() == b""
    assert not (dest / "fifo").exists()
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(dest / "bin").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(dest / "bin" / "tool").st_mode) == 0o755
    assert (result.files, result.bytes, result.skipped, result.missing) == (4, 10, 1, ())
    assert source.asked == [{0: ["app/bin/tool"]}]
    assert reports[-1] == ExtractProgress(4, 4, 10, 10)


def test_a_single_file_is_written_as_a_file(place: Path) -> None:
    files = image(layer(directory("etc"), file("etc/os", 3)), layer(file("etc/os", 5)))
    source = FakeSource({(0, "etc/os"): b"old", (1, "etc/os"): b"newer"})
    run(source, plan_extraction(files, 0, "/etc/os"), place / "dest")
    assert (place / "dest").read_bytes() == b"old"


def test_setuid_and_owners_are_kept_only_as_root(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = image(layer(file("su", 1, 0o4755, uid=123, gid=45)))
    source = FakeSource({(0, "su"): b"x"})
    monkeypatch.setattr(extract_module, "is_root", lambda: False)
    run(source, plan_extraction(files, 0, "/su"), place / "dest")
    info = os.stat(place / "dest")
    assert stat.S_IMODE(info.st_mode) == 0o755
    assert (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid())
    if os.geteuid() == 0:
        monkeypatch.setattr(extract_module, "is_root", lambda: True)
        run(source, plan_extraction(files, 0, "/su"), place / "dest-root")
        info = os.stat(place / "dest-root")
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o4755, 123, 45)


def test_names_with_newlines_and_escapes_are_written_as_they_are(place: Path) -> None:
    name = "a\nb\x1b[2J\x07"
    source = FakeSource({(0, f"x/{name}"): b"odd"})
    run(source, plan_of(planned(name, file(name, 3), f"x/{name}")), place / "dest")
    assert (place / "dest" / name).read_bytes() == b"odd"


@pytest.mark.parametrize(
    "path",
    ["../escaped", "/abs/olute", "a/../../escaped", "./dot", "a//b", ""],
)
def test_unsafe_names_are_refused_and_nothing_is_written(place: Path, path: str) -> None:
    source = FakeSource({(0, "m"): b"bad"})
    entries = [planned("a", directory("a")), planned(path, file(path, 3), "m")]
    with pytest.raises(ExtractError, match=r"unsafe path|twice|not a directory"):
        run(source, plan_of(*entries), place / "dest")
    assert not (place / "dest").exists()


def test_a_file_written_through_a_symlink_of_the_image_is_refused(place: Path) -> None:
    outside = place.parent / "outside"
    source = FakeSource({(0, "m"): b"pwned"})
    entries = [planned("etc", symlink("etc", str(outside))), planned("etc/passwd", file("etc/passwd", 5), "m")]
    with pytest.raises(ExtractError, match="not a directory of the extraction"):
        run(source, plan_of(*entries), place / "dest")
    entries = [planned("passwd", symlink("passwd", str(outside / "passwd"))), planned("passwd", file("passwd", 5), "m")]
    with pytest.raises(ExtractError, match="twice"):
        run(source, plan_of(*entries), place / "dest")


def test_symlinks_of_the_image_pointing_out_are_written_and_never_followed(place: Path) -> None:
    outside = place.parent / "outside"
    files = image(
        layer(symlink("etc", str(outside)), symlink("up", "../../../../outside/passwd")),
        layer(file("etc/passwd", 5)),
    )
    result = run(FakeSource({(1, "etc/passwd"): b"pwned"}), plan_extraction(files, 1, "/"), place / "dest")
    assert os.readlink(place / "dest" / "etc") == str(outside)
    assert result.skipped == 1


def test_a_hard_link_to_outside_the_extraction_is_a_copy_of_the_image_bytes(place: Path) -> None:
    source = FakeSource({(0, "etc/passwd"): b"image passwd"})
    entries = [planned("h", hardlink("h", "../../etc/passwd", 12), "etc/passwd")]
    run(source, plan_of(*entries), place / "dest")
    assert (place / "dest" / "h").read_bytes() == b"image passwd"
    assert os.stat(place / "dest" / "h").st_nlink == 1


def test_a_symlink_planted_at_the_destination_is_not_followed(place: Path) -> None:
    outside = place.parent / "outside"
    (place / "dest").symlink_to(outside)
    source = FakeSource({(0, "passwd"): b"pwned"})
    plan = plan_of(planned("passwd", file("passwd", 5), "passwd"))
    with pytest.raises(DestinationExists):
        run(source, plan, place / "dest")
    assert (place / "dest").is_symlink()
    run(source, plan, place / "dest", replace=True)
    assert not (place / "dest").is_symlink()
    assert (place / "dest" / "passwd").read_bytes() == b"pwned"


def test_a_symlink_planted_inside_a_replaced_destination_is_not_followed(place: Path) -> None:
    outside = place.parent / "outside"
    (place / "dest").mkdir()
    (place / "dest" / "etc").symlink_to(outside)
    source = FakeSource({(0, "etc/passwd"): b"pwned"})
    plan = plan_of(planned("etc", directory("etc")), planned("etc/passwd", file("etc/passwd", 5), "etc/passwd"))
    run(source, plan, place / "dest", replace=True)
    assert (place / "dest" / "etc" / "passwd").read_bytes() == b"pwned"
    assert not (place / "dest" / "etc").is_symlink()


def test_an_existing_destination_is_kept_without_replace_and_replaced_only_when_complete(place: Path) -> None:
    (place / "dest").write_text("mine")
    source = FakeSource({(0, "f"): b"image"})
    plan = ExtractPlan("f", "f", 0, (PlannedEntry("", file("f", 5), 0, "f"),))
    with pytest.raises(DestinationExists, match="exists"):
        run(source, plan, place / "dest")
    assert (place / "dest").read_text() == "mine"

    def fail() -> None:
        raise DockerServiceError("test", "the daemon went away")

    source.on_write = fail
    with pytest.raises(DockerServiceError):
        run(source, plan, place / "dest", replace=True)
    assert (place / "dest").read_text() == "mine"
    source.on_write = None
    run(source, plan, place / "dest", replace=True)
    assert (place / "dest").read_bytes() == b"image"


def test_cancel_removes_the_partial_output(place: Path) -> None:
    cancel = threading.Event()
    entries = [planned(f"d{n}", directory(f"d{n}")) for n in range(20)]
    entries += [planned(f"d{n}/f", file(f"d{n}/f", 100), f"m{n}") for n in range(20)]
    entries.sort(key=lambda entry: entry.path)
    source = FakeSource({(0, f"m{n}"): bytes(100) for n in range(20)})
    writes = 0

    def count() -> None:
        nonlocal writes
        writes += 1
        if writes == 30:
            cancel.set()

    source.on_write = count
    with pytest.raises(ReadCancelled):
        run(source, plan_of(*entries), place / "dest", cancel=cancel)
    assert not (place / "dest").exists()


def test_very_deep_paths_are_written_to_a_point_and_refused_beyond_it(place: Path) -> None:
    deep = ["/".join(["d"] * depth) for depth in range(1, 301)]
    entries = [planned(path, directory(path)) for path in deep]
    entries.append(planned(deep[-1] + "/f", file("f", 2), "f"))
    run(FakeSource({(0, "f"): b"ok"}), plan_of(*entries), place / "dest")
    assert (place / "dest" / deep[-1] / "f").read_bytes() == b"ok"
    too_deep = ["/".join(["e"] * depth) for depth in range(1, MAX_DEPTH + 2)]
    with pytest.raises(ExtractError, match=f"more than {MAX_DEPTH} directories deep"):
        run(FakeSource({}), plan_of(*(planned(path, directory(path)) for path in too_deep)), place / "dest2")


def test_a_name_too_long_for_the_filesystem_is_a_clear_error(place: Path) -> None:
    name = "n" * 300
    with pytest.raises(ExtractError, match="too long for this filesystem"):
        run(FakeSource({(0, "m"): b"x"}), plan_of(planned(name, file(name, 1), "m")), place / "dest")
    with pytest.raises(ExtractError, match="too long for this filesystem"):
        run(FakeSource({}), plan_of(planned(name, directory(name))), place / "dest")


def test_files_the_source_does_not_have_are_named(place: Path) -> None:
    plan = plan_of(planned("here", file("here", 2), "here"), planned("gone", file("gone", 2), "gone"))
    result = run(FakeSource({(0, "here"): b"ok"}), plan, place / "dest")
    assert result.missing == ("/gone",)
    assert not (place / "dest" / "gone").exists()


def test_progress_reports_do_not_count_the_plan_again(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A report comes with every chunk: counting a 60,000-entry plan for each made minutes of seconds."""
    counted = 0
    file_count = ExtractPlan.file_count.fget
    assert file_count is not None

    def counting(plan: ExtractPlan) -> int:
        nonlocal counted
        counted += 1
        return file_count(plan)

    monkeypatch.setattr(ExtractPlan, "file_count", property(counting))
    entries = [planned(f"f{n:03}", file(f"f{n:03}", 40), f"m{n}") for n in range(100)]
    reports: list[ExtractProgress] = []
    run(
        FakeSource({(0, f"m{n}"): bytes(40) for n in range(100)}),
        plan_of(*entries),
        place / "dest",
        on_progress=reports.append,
    )
    assert len(reports) > 1000
    assert reports[-1] == ExtractProgress(100, 100, 4000, 4000)
    assert counted <= 2
