"""The overlay2 fast path: layer listings read from diff directories, on hand-made directories (the
suite runs as root: whiteouts, devices and trusted xattrs can be made) and on the fixture daemon's
real layers."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from conftest import CHANGES_CONTAINER, FIXTURE_IMAGES, WASTE_IMAGE
from dockerscope.service import overlay_reader
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, ReadCancelled
from dockerscope.service.overlay_reader import LayerTooDeep, overlay_driver, overlay_layer_dirs, read_layer_dir


def _by_path(listing: LayerListing) -> dict[str, LayerEntry]:
    by_path = {entry.path: entry for entry in listing.entries}
    assert len(by_path) == len(listing.entries), "a path is listed twice"
    return by_path


def _write(path: Path, data: bytes = b"", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


# --- entry kinds -------------------------------------------------------------------------------


def test_files_dirs_and_symlinks_carry_size_mode_owner_and_target(tmp_path: Path) -> None:
    _write(tmp_path / "etc" / "app.conf", b"hello\n", 0o640)
    os.chown(tmp_path / "etc" / "app.conf", 1234, 5678)
    _write(tmp_path / "usr" / "bin" / "tool", b"\x7fELF" * 100, 0o4755)
    (tmp_path / "etc").chmod(0o750)
    (tmp_path / "usr").chmod(0o755)
    (tmp_path / "usr" / "bin").chmod(0o711)
    (tmp_path / "empty").mkdir(0o1777)
    (tmp_path / "empty").chmod(0o1777)
    os.chown(tmp_path / "empty", 42, 43)
    (tmp_path / "usr" / "bin" / "alias").symlink_to("tool")
    (tmp_path / "abs").symlink_to("/nowhere/at/all")

    entries = _by_path(read_layer_dir(str(tmp_path)))

    assert entries == {
        "etc": LayerEntry("etc", EntryType.DIR, 0, 0o750, 0, 0),
        "etc/app.conf": LayerEntry("etc/app.conf", EntryType.FILE, 6, 0o640, 1234, 5678),
        "usr": LayerEntry("usr", EntryType.DIR, 0, 0o755, 0, 0),
        "usr/bin": LayerEntry("usr/bin", EntryType.DIR, 0, 0o711, 0, 0),
        "usr/bin/tool": LayerEntry("usr/bin/tool", EntryType.FILE, 400, 0o4755, 0, 0),
        "usr/bin/alias": LayerEntry("usr/bin/alias", EntryType.SYMLINK, 0, 0o777, 0, 0, "tool"),
        "empty": LayerEntry("empty", EntryType.DIR, 0, 0o1777, 42, 43),
        "abs": LayerEntry("abs", EntryType.SYMLINK, 0, 0o777, 0, 0, "/nowhere/at/all"),
    }


def test_entries_are_exact_layer_entries(tmp_path: Path) -> None:
    _write(tmp_path / "f", b"x")
    (entry,) = read_layer_dir(str(tmp_path)).entries
    assert type(entry) is LayerEntry
    assert entry.link == ""
    assert entry._replace(size=2) == LayerEntry("f", EntryType.FILE, 2, 0o644, 0, 0)


def test_an_empty_layer_lists_nothing(tmp_path: Path) -> None:
    assert read_layer_dir(str(tmp_path)) == LayerListing(())


def test_fifos_devices_and_sockets_are_other(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    os.chmod(tmp_path / "fifo", 0o600)
    os.mknod(tmp_path / "null", stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(tmp_path / "null", 0o666)
    os.mknod(tmp_path / "disk", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    # A character device numbered 0/N or N/0 is a device, not a whiteout.
    os.mknod(tmp_path / "minor", stat.S_IFCHR | 0o600, os.makedev(0, 1))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        listing = read_layer_dir(str(tmp_path))

    entries = _by_path(listing)
    assert set(entries) == {"fifo", "null", "disk", "minor", "sock"}
    assert all(entry.type is EntryType.OTHER and entry.size == 0 and entry.link == "" for entry in entries.values())
    assert entries["fifo"].mode == 0o600
    assert entries["null"].mode == 0o666
    assert listing.deleted == frozenset()


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    _write(tmp_path / "real" / "file", b"abc")
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "outside").symlink_to("/etc")

    entries = _by_path(read_layer_dir(str(tmp_path)))

    assert set(entries) == {"real", "real/file", "link", "outside"}
    assert entries["link"].type is EntryType.SYMLINK


def test_paths_are_relative_without_slashes_and_the_root_is_no_entry(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "b" / "c" / "d" / "leaf")
    layer = tmp_path / "layer"
    layer.mkdir()
    _write(layer / "x")

    assert {entry.path for entry in read_layer_dir(str(tmp_path)).entries} == {
        "a",
        "a/b",
        "a/b/c",
        "a/b/c/d",
        "a/b/c/d/leaf",
        "layer",
        "layer/x",
    }
    # A trailing slash on the directory changes nothing.
    assert {entry.path for entry in read_layer_dir(str(layer) + "/").entries} == {"x"}


def test_odd_names_keep_their_characters(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path))
    odd = [
        b"new\nline",
        b"tab\there",
        b" lead space",
        b"caf\xc3\xa9",
        b"latin1-\xe9",
        b"\xff\xfe",
        b"-dash",
        b"back\\slash",
    ]
    for name in odd:
        with open(raw + b"/" + name, "wb") as handle:
            handle.write(name)
    os.mkdir(raw + b"/dir\xe9")
    with open(raw + b"/dir\xe9/in\nside", "wb") as handle:
        handle.write(b"12")

    entries = _by_path(read_layer_dir(str(tmp_path)))

    # Names that are not UTF-8 come back as os.fsdecode gives them (lone surrogates).
    expected = {os.fsdecode(name): len(name) for name in odd}
    expected["dir\udce9"] = 0
    expected["dir\udce9/in\nside"] = 2
    assert {path: entry.size for path, entry in entries.items()} == expected
    assert "café" in entries
    assert {os.fsencode(path) for path in entries} == {*odd, b"dir\xe9", b"dir\xe9/in\nside"}


# --- whiteouts and opaque directories ------------------------------------------------------------


def test_whiteouts_are_deleted_paths_not_entries(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    _whiteout(tmp_path / "etc" / "passwd-")
    _whiteout(tmp_path / "gone-dir")
    _whiteout(tmp_path / "odd\nname")
    _write(tmp_path / "etc" / "kept", b"k")

    listing = read_layer_dir(str(tmp_path))

    assert listing.deleted == frozenset({"etc/passwd-", "gone-dir", "odd\nname"})
    assert {entry.path for entry in listing.entries} == {"etc", "etc/kept"}
    assert listing.opaque == frozenset()


def test_opaque_directories_are_marked_and_stay_entries(tmp_path: Path) -> None:
    for name in ("trusted", "user", "not-y", "plain", "other-xattr"):
        (tmp_path / name / "inner").mkdir(parents=True)
    os.setxattr(tmp_path / "trusted", "trusted.overlay.opaque", b"y")
    os.setxattr(tmp_path / "trusted" / "inner", "trusted.overlay.opaque", b"y")
    os.setxattr(tmp_path / "user", "user.overlay.opaque", b"y")
    # Newer kernels write "x" for a directory that only holds xattr whiteouts: not opaque.
    os.setxattr(tmp_path / "not-y", "trusted.overlay.opaque", b"x")
    os.setxattr(tmp_path / "other-xattr", "user.comment", b"y")
    # Only directories can be opaque.
    _write(tmp_path / "file")
    os.setxattr(tmp_path / "file", "trusted.overlay.opaque", b"y")
    assert os.getxattr(tmp_path / "trusted", "trusted.overlay.opaque") == b"y"

    listing = read_layer_dir(str(tmp_path))

    assert listing.opaque == frozenset({"trusted", "trusted/inner", "user"})
    entries = _by_path(listing)
    assert all(entries[path].type is EntryType.DIR for path in listing.opaque)
    assert entries["file"].type is EntryType.FILE


def test_xattr_errors_are_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dir").mkdir()

    def unsupported(path: str, *, follow_symlinks: bool = True) -> list[str]:
        raise OSError(95, "Operation not supported", path)

    monkeypatch.setattr(os, "listxattr", unsupported)
    listing = read_layer_dir(str(tmp_path))
    assert listing.opaque == frozenset()
    assert [entry.path for entry in listing.entries] == ["dir"]


# --- hard links ---------------------------------------------------------------------------------


def test_hard_links_name_the_first_path_in_docker_walk_order(tmp_path: Path) -> None:
    # Walk order is by path component: a/x comes before a.b although "a.b" < "a/x" as strings.
    _write(tmp_path / "a" / "x", b"0123456789", 0o600)
    os.link(tmp_path / "a" / "x", tmp_path / "a.b")
    os.link(tmp_path / "a" / "x", tmp_path / "b")
    os.link(tmp_path / "a" / "x", tmp_path / "a" / "w")
    _write(tmp_path / "single", b"s")

    listing = read_layer_dir(str(tmp_path))
    entries = _by_path(listing)

    assert entries["a/w"] == LayerEntry("a/w", EntryType.FILE, 10, 0o600, 0, 0)
    for name in ("a/x", "a.b", "b"):
        assert entries[name] == LayerEntry(name, EntryType.HARDLINK, 10, 0o600, 0, 0, "a/w")
    assert entries["single"].type is EntryType.FILE


def test_walk_order_compares_names_as_bytes(tmp_path: Path) -> None:
    # U+E000 is b"\xee\x80\x80" and sorts before the raw byte \xff, whose str (U+DCFF) sorts first.
    raw = os.fsencode(str(tmp_path))
    with open(raw + b"/\xff", "wb") as handle:
        handle.write(b"data")
    os.chmod(raw + b"/\xff", 0o644)
    os.link(raw + b"/\xff", raw + "/\ue000".encode())

    entries = _by_path(read_layer_dir(str(tmp_path)))

    assert entries["\ue000"].type is EntryType.FILE
    assert entries["\udcff"] == LayerEntry("\udcff", EntryType.HARDLINK, 4, 0o644, 0, 0, "\ue000")


def test_a_link_whose_other_names_are_outside_the_layer_is_a_file(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    _write(layer / "inside", b"abc")
    os.link(layer / "inside", tmp_path / "outside")

    assert _by_path(read_layer_dir(str(layer)))["inside"] == LayerEntry("inside", EntryType.FILE, 3, 0o644, 0, 0)


def test_hard_linked_symlinks_and_fifos_link_like_docker_tar(tmp_path: Path) -> None:
    (tmp_path / "s1").symlink_to("target")
    os.link(tmp_path / "s1", tmp_path / "s2", follow_symlinks=False)
    os.mkfifo(tmp_path / "p2")
    os.chmod(tmp_path / "p2", 0o620)
    os.link(tmp_path / "p2", tmp_path / "p1")

    entries = _by_path(read_layer_dir(str(tmp_path)))

    assert entries["s1"] == LayerEntry("s1", EntryType.SYMLINK, 0, 0o777, 0, 0, "target")
    assert entries["s2"] == LayerEntry("s2", EntryType.HARDLINK, 0, 0o777, 0, 0, "s1")
    assert entries["p1"].type is EntryType.OTHER
    assert entries["p2"] == LayerEntry("p2", EntryType.HARDLINK, 0, 0o620, 0, 0, "p1")


# --- progress, cancellation, errors --------------------------------------------------------------


def test_the_check_interval_is_a_few_thousand_entries() -> None:
    assert 1000 <= overlay_reader._CHECK_EVERY <= 10_000


def test_progress_reports_growing_byte_counts_and_the_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlay_reader, "_CHECK_EVERY", 100)
    for directory in range(10):
        (tmp_path / f"d{directory}").mkdir()
        for number in range(30):
            (tmp_path / f"d{directory}" / f"f{number:02d}").write_bytes(b"x" * (number + 1))
    os.link(tmp_path / "d0" / "f29", tmp_path / "twin")
    seen: list[int] = []

    listing = read_layer_dir(str(tmp_path), on_bytes=seen.append)

    assert len(listing.entries) == 10 + 300 + 1
    # One report every 100 entries, then the total (the linked file counts once) at the end.
    assert len(seen) == 4
    assert seen == sorted(seen)
    assert 0 < seen[0] < seen[-1] == 10 * sum(range(1, 31))


def test_a_set_cancel_event_stops_the_walk(tmp_path: Path) -> None:
    _write(tmp_path / "file")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ReadCancelled):
        read_layer_dir(str(tmp_path), cancel=cancel)


def test_cancelling_midway_stops_inside_a_big_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One flat directory: the check must not wait for the directory to end.
    monkeypatch.setattr(overlay_reader, "_CHECK_EVERY", 100)
    for number in range(1000):
        (tmp_path / f"f{number:04d}").write_bytes(b"")
    cancel = threading.Event()
    reports: list[int] = []

    def report(done: int) -> None:
        reports.append(done)
        cancel.set()

    with pytest.raises(ReadCancelled):
        read_layer_dir(str(tmp_path), cancel=cancel, on_bytes=report)
    assert reports == [0]


def test_an_unset_cancel_event_changes_nothing(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "b", b"12")
    assert read_layer_dir(str(tmp_path), cancel=threading.Event()) == read_layer_dir(str(tmp_path))


def test_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_layer_dir(str(tmp_path / "missing"))
    _write(tmp_path / "file")
    with pytest.raises(NotADirectoryError):
        read_layer_dir(str(tmp_path / "file"))


class _ScanThen:
    """os.scandir that runs `after` once the listing of a directory named `name` is done: a
    deterministic stand-in for a process changing the layer between listing and descending."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, after: Callable[[], None]) -> None:
        self.real = os.scandir
        self.name = name
        self.after = after
        monkeypatch.setattr(os, "scandir", self)

    def __call__(self, target: Any) -> Any:
        scan = self.real(target)
        names = [item.name for item in self.real(target)]
        return _AfterScan(scan, self.after if self.name in names else None)


class _AfterScan:
    def __init__(self, scan: Any, after: Callable[[], None] | None) -> None:
        self.scan = scan
        self.after = after

    def __enter__(self) -> Any:
        return self.scan.__enter__()

    def __iter__(self) -> Any:
        return iter(self.scan)

    def __exit__(self, *exc: object) -> None:
        self.scan.__exit__(*exc)
        if self.after is not None:
            self.after()


def test_files_vanishing_during_the_walk_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "stays" / "file", b"1")
    _write(tmp_path / "goes" / "file", b"2")
    _ScanThen(monkeypatch, "goes", lambda: shutil.rmtree(tmp_path / "goes"))
    listing = read_layer_dir(str(tmp_path))
    assert {entry.path for entry in listing.entries} == {"stays", "stays/file", "goes"}


def test_a_directory_swapped_for_a_symlink_during_the_walk_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process in a running container can replace a directory of its own writable layer with a
    symlink to / between the listing and the descent: the host's files must not become the layer's."""
    layer = tmp_path / "layer"
    _write(layer / "app" / "config", b"1")
    _write(tmp_path / "host" / "secret", b"host file")

    def swap() -> None:
        shutil.rmtree(layer / "app")
        (layer / "app").symlink_to(tmp_path / "host")

    _ScanThen(monkeypatch, "app", swap)
    listing = read_layer_dir(str(layer))
    assert {entry.path for entry in listing.entries} == {"app"}


def test_a_directory_swapped_for_another_directory_is_not_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = tmp_path / "layer"
    _write(layer / "app" / "config", b"1")
    _write(layer / "elsewhere" / "secret", b"moved in")

    def swap() -> None:
        shutil.rmtree(layer / "app")
        (layer / "elsewhere").rename(layer / "app")

    _ScanThen(monkeypatch, "app", swap)
    paths = {entry.path for entry in read_layer_dir(str(layer)).entries}
    assert "app/secret" not in paths
    assert "app/config" not in paths


def test_a_root_that_is_a_symlink_raises(tmp_path: Path) -> None:
    _write(tmp_path / "real" / "file")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        read_layer_dir(str(tmp_path / "link"))


def test_a_tree_deeper_than_the_cap_raises_and_closes_every_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overlay_reader, "MAX_DEPTH", 20)
    deep = tmp_path.joinpath(*["d"] * 25)
    deep.mkdir(parents=True)
    open_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(LayerTooDeep) as raised:
        read_layer_dir(str(tmp_path))
    assert isinstance(raised.value, OSError)
    assert len(os.listdir("/proc/self/fd")) == open_before
    # Nineteen levels below the root fit within the cap.
    assert len(read_layer_dir(str(tmp_path.joinpath(*["d"] * 6))).entries) == 19


def test_descriptors_stay_bounded_by_the_depth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide tree: each level's subdirectories are walked one at a time, so the open descriptors
    follow the depth, not the number of directories."""
    for first in range(30):
        for second in range(30):
            (tmp_path / f"a{first}" / f"b{second}").mkdir(parents=True)
    real_open = os.open
    most = 0
    base = len(os.listdir("/proc/self/fd"))

    def counting_open(*args: Any, **kwargs: Any) -> int:
        nonlocal most
        fd = real_open(*args, **kwargs)
        most = max(most, len(os.listdir("/proc/self/fd")) - base)
        return fd

    monkeypatch.setattr(os, "open", counting_open)
    listing = read_layer_dir(str(tmp_path))
    assert len(listing.entries) == 30 + 900
    assert most <= 4


# --- overlay_layer_dirs --------------------------------------------------------------------------


def _graph_driver(upper: Path | str | None, *lower: Path | str, name: str = "overlay2") -> dict[str, Any]:
    data: dict[str, str] = {}
    if upper is not None:
        data["UpperDir"] = str(upper)
        data["MergedDir"] = str(Path(upper).parent / "merged")
        data["WorkDir"] = str(Path(upper).parent / "work")
    if lower:
        data["LowerDir"] = ":".join(str(directory) for directory in lower)
    return {"Name": name, "Data": data}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A daemon data root whose `overlay2` directory is root's and not writable by others."""
    (tmp_path / "docker" / "overlay2").mkdir(parents=True, mode=0o710)
    return tmp_path / "docker"


@pytest.fixture
def layer_dirs(root: Path) -> list[Path]:
    """Four diff directories under the data root, oldest first."""
    dirs = [root / "overlay2" / f"layer{number}" / "diff" for number in range(4)]
    for directory in dirs:
        directory.mkdir(parents=True)
    return dirs


def test_lower_dirs_are_listed_top_first(layer_dirs: list[Path], root: Path) -> None:
    oldest, second, third, top = layer_dirs
    driver = _graph_driver(top, third, second, oldest)
    assert overlay_layer_dirs(driver, 4, str(root)) == [str(directory) for directory in layer_dirs]


def test_a_one_layer_image_has_only_an_upper_dir(layer_dirs: list[Path], root: Path) -> None:
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0]), 1, str(root)) == [str(layer_dirs[0])]
    only_upper = {"Name": "overlay2", "Data": {"UpperDir": str(layer_dirs[0]), "LowerDir": ""}}
    assert overlay_layer_dirs(only_upper, 1, str(root)) == [str(layer_dirs[0])]


def test_a_layer_count_that_does_not_match_gives_none(layer_dirs: list[Path], root: Path) -> None:
    driver = _graph_driver(layer_dirs[3], layer_dirs[2], layer_dirs[1])
    assert overlay_layer_dirs(driver, 3, str(root)) is not None
    assert overlay_layer_dirs(driver, 4, str(root)) is None
    assert overlay_layer_dirs(driver, 2, str(root)) is None
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0]), 0, str(root)) is None


def test_a_missing_or_unusable_directory_gives_none(layer_dirs: list[Path], root: Path) -> None:
    missing = root / "overlay2" / "gone" / "diff"
    assert overlay_layer_dirs(_graph_driver(layer_dirs[1], missing), 2, str(root)) is None
    assert overlay_layer_dirs(_graph_driver(missing, layer_dirs[0]), 2, str(root)) is None
    _write(root / "overlay2" / "plain" / "diff")
    assert overlay_layer_dirs(_graph_driver(root / "overlay2" / "plain" / "diff"), 1, str(root)) is None
    assert overlay_layer_dirs(_graph_driver("relative/diff"), 1, str(root)) is None


@pytest.mark.parametrize(
    "upper",
    [
        "/etc",
        "/root",
        "/",
        "{root}/overlay2",
        "{root}/overlay2/layer0",
        "{root}/overlay2/layer0/diff/",
        "{root}/overlay2/layer0/diff/sub",
        "{root}/overlay2/layer0/./diff",
        "{root}/overlay2/layer0/../layer1/diff",
        "{root}/overlay2/../overlay2/layer0/diff",
        "{root}//overlay2/layer0/diff",
        "{root}/overlay2/./diff",
        "{root}/overlay2/layer0/work",
        "{root}/other/layer0/diff",
        "{root}/overlay2-not/layer0/diff",
        "{tmp}/outside/diff",
    ],
)
def test_a_daemon_naming_directories_outside_its_overlay2_tree_gets_no_fast_path(
    layer_dirs: list[Path], root: Path, tmp_path: Path, upper: str
) -> None:
    """A daemon saying UpperDir=/etc must not get the host's files listed (and cached) as a layer."""
    (tmp_path / "outside" / "diff").mkdir(parents=True)
    (layer_dirs[0] / "sub").mkdir()
    directory = upper.format(root=root, tmp=tmp_path)
    assert overlay_layer_dirs(_graph_driver(directory), 1, str(root)) is None
    assert overlay_layer_dirs(_graph_driver(layer_dirs[1], directory), 2, str(root)) is None


def test_a_layer_directory_reached_through_a_symlink_gets_no_fast_path(
    layer_dirs: list[Path], root: Path, tmp_path: Path
) -> None:
    (tmp_path / "host" / "diff").mkdir(parents=True)
    _write(tmp_path / "host" / "diff" / "secret")
    (root / "overlay2" / "evil").symlink_to(tmp_path / "host")
    (root / "overlay2" / "layer9").mkdir()
    (root / "overlay2" / "layer9" / "diff").symlink_to(tmp_path / "host" / "diff")
    for directory in (root / "overlay2" / "evil" / "diff", root / "overlay2" / "layer9" / "diff"):
        assert overlay_layer_dirs(_graph_driver(directory), 1, str(root)) is None


def test_a_data_root_reached_through_a_symlink_gets_no_fast_path(
    layer_dirs: list[Path], root: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert overlay_layer_dirs(_graph_driver(alias / "overlay2" / "layer0" / "diff"), 1, str(alias)) is None
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0]), 1, str(alias)) is None


@pytest.mark.parametrize("root_dir", [None, "", 7, ["/var/lib/docker"], "relative/docker", "/no/such/root", "/x\0y"])
def test_a_missing_or_malformed_data_root_gives_none(layer_dirs: list[Path], root_dir: object) -> None:
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0]), 1, root_dir) is None


@pytest.mark.parametrize(("uid", "mode"), [(1000, 0o710), (0, 0o730), (0, 0o712), (0, 0o777)])
def test_an_overlay2_directory_others_can_write_to_gets_no_fast_path(
    layer_dirs: list[Path], root: Path, uid: int, mode: int
) -> None:
    storage = root / "overlay2"
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0]), 1, str(root)) is not None
    os.chown(storage, uid, 0)
    storage.chmod(mode)
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0]), 1, str(root)) is None


@pytest.mark.parametrize(
    "graph_driver",
    [
        None,
        {},
        {"Name": "overlay2"},
        {"Name": "overlay2", "Data": None},
        {"Name": "overlay2", "Data": ["UpperDir"]},
        ["overlay2"],
        "overlay2",
        {"Name": "overlay2", "Data": {"UpperDir": ""}},
        {"Name": "overlay2", "Data": {"UpperDir": 7}},
        {"Name": "overlay2", "Data": {"UpperDir": "/tmp", "LowerDir": ["/tmp"]}},
    ],
)
def test_missing_or_malformed_graph_driver_data_gives_none(graph_driver: object, root: Path) -> None:
    assert overlay_layer_dirs(graph_driver, 1, str(root)) is None


@pytest.mark.parametrize("name", ["fuse-overlayfs", "devicemapper", "btrfs", "vfs", "windowsfilter", "", "Overlay2"])
def test_other_storage_drivers_give_none(layer_dirs: list[Path], root: Path, name: str) -> None:
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0], name=name), 1, str(root)) is None


@pytest.fixture
def podman_dirs(root: Path) -> list[Path]:
    """Three layers as Podman's overlay driver keeps them: `<graphroot>/overlay/<id>/diff`, the
    `overlay` directory root's alone, and the `l/` short links of the lower chain beside them."""
    storage = root / "overlay"
    storage.mkdir(mode=0o700)
    (storage / "l").mkdir()
    dirs = [storage / f"{number}{'a' * 63}" / "diff" for number in range(3)]
    for number, directory in enumerate(dirs):
        directory.mkdir(parents=True, mode=0o555)
        (storage / "l" / f"SHORT{number}").symlink_to(f"../{directory.parent.name}/diff")
    return dirs


def test_podman_overlay_layers_under_the_graph_root_get_the_fast_path(podman_dirs: list[Path], root: Path) -> None:
    oldest, middle, top = podman_dirs
    driver = _graph_driver(top, middle, oldest, name="overlay")
    assert overlay_layer_dirs(driver, 3, str(root)) == [str(directory) for directory in podman_dirs]
    assert overlay_driver(driver) == "overlay"
    assert overlay_driver(_graph_driver(top)) == "overlay2"


def test_a_driver_naming_the_other_drivers_directories_gets_no_fast_path(
    layer_dirs: list[Path], podman_dirs: list[Path], root: Path
) -> None:
    """overlay2 layers live under `overlay2/`, Podman's overlay layers under `overlay/`: a daemon
    naming the other tree gets the export stream."""
    assert overlay_layer_dirs(_graph_driver(layer_dirs[0], name="overlay"), 1, str(root)) is None
    assert overlay_layer_dirs(_graph_driver(podman_dirs[0], name="overlay2"), 1, str(root)) is None


def test_podman_short_links_and_other_layouts_get_no_fast_path(podman_dirs: list[Path], root: Path) -> None:
    """The `l/` links are symlinks, and Docker's old overlay driver kept layers in `<id>/root`."""
    storage = root / "overlay"
    (storage / "legacy" / "root").mkdir(parents=True)
    for directory in (storage / "l" / "SHORT0", storage / "l" / "SHORT0" / "diff", storage / "legacy" / "root"):
        assert overlay_layer_dirs(_graph_driver(directory, name="overlay"), 1, str(root)) is None


@pytest.mark.parametrize(("uid", "mode"), [(1000, 0o700), (0, 0o720), (0, 0o702)])
def test_a_podman_overlay_directory_others_can_write_to_gets_no_fast_path(
    podman_dirs: list[Path], root: Path, uid: int, mode: int
) -> None:
    driver = _graph_driver(podman_dirs[0], name="overlay")
    assert overlay_layer_dirs(driver, 1, str(root)) is not None
    os.chown(root / "overlay", uid, 0)
    (root / "overlay").chmod(mode)
    assert overlay_layer_dirs(driver, 1, str(root)) is None


def test_without_root_the_fast_path_is_off(layer_dirs: list[Path], root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = _graph_driver(layer_dirs[0])
    assert overlay_layer_dirs(driver, 1, str(root)) is not None
    monkeypatch.setattr(overlay_reader.os, "geteuid", lambda: 1000)
    assert overlay_layer_dirs(driver, 1, str(root)) is None


# --- the fixture daemon's real layers ------------------------------------------------------------


def _root_dir(api: docker.APIClient) -> str:
    return str(api.info()["DockerRootDir"])


def _image_layers(api: docker.APIClient, image: str) -> list[LayerListing]:
    inspect = api.inspect_image(image)
    dirs = overlay_layer_dirs(inspect["GraphDriver"], len(inspect["RootFS"]["Layers"]), _root_dir(api))
    assert dirs is not None, inspect["GraphDriver"]
    return [read_layer_dir(directory) for directory in dirs]


def test_every_fixture_image_has_readable_overlay_layers(api: docker.APIClient) -> None:
    for image in FIXTURE_IMAGES:
        inspect = api.inspect_image(image)
        dirs = overlay_layer_dirs(inspect["GraphDriver"], len(inspect["RootFS"]["Layers"]), _root_dir(api))
        assert dirs is not None, image
        assert dirs[-1] == inspect["GraphDriver"]["Data"]["UpperDir"]
        assert all(directory.endswith("/diff") for directory in dirs)
        for directory in dirs:
            read_layer_dir(directory)


def test_waste_image_base_layers(api: docker.APIClient) -> None:
    layers = _image_layers(api, WASTE_IMAGE)
    assert len(layers) == 5
    busybox = _by_path(layers[0])
    assert set(busybox) == {"bin", "bin/busybox"}
    assert busybox["bin/busybox"].type is EntryType.FILE
    assert busybox["bin/busybox"].mode == 0o755
    assert busybox["bin/busybox"].size > 100_000
    applets = _by_path(layers[1])
    assert applets["bin/sh"] == LayerEntry("bin/sh", EntryType.SYMLINK, 0, 0o777, 0, 0, "/bin/busybox")


def test_waste_image_layer_with_hard_link_and_symlink(api: docker.APIClient) -> None:
    layer = _image_layers(api, WASTE_IMAGE)[2]
    entries = _by_path(layer)

    assert entries["data/keep/config"] == LayerEntry("data/keep/config", EntryType.FILE, 3, 0o644, 0, 0)
    assert entries["data/keep/config.link"] == LayerEntry(
        "data/keep/config.link", EntryType.HARDLINK, 3, 0o644, 0, 0, "data/keep/config"
    )
    assert entries["data/config.symlink"] == LayerEntry(
        "data/config.symlink", EntryType.SYMLINK, 0, 0o777, 0, 0, "keep/config"
    )
    assert entries["data/big.bin"].size == 1_048_576
    assert {"data/gone", "data/gone/deep", "data/gone/deep/x", "opq", "opq/old", "opq/old/file"} <= set(entries)
    assert layer.deleted == frozenset()
    assert layer.opaque == frozenset()


def test_waste_image_layer_that_overwrites_and_deletes(api: docker.APIClient) -> None:
    layer = _image_layers(api, WASTE_IMAGE)[3]

    assert _by_path(layer) == {
        "data": LayerEntry("data", EntryType.DIR, 0, 0o755, 0, 0),
        "data/keep": LayerEntry("data/keep", EntryType.DIR, 0, 0o755, 0, 0),
        "data/keep/config": LayerEntry("data/keep/config", EntryType.FILE, 12, 0o644, 0, 0),
    }
    assert layer.deleted == frozenset({"data/big.bin", "data/gone"})
    assert layer.opaque == frozenset()


def test_waste_image_layer_with_an_opaque_directory(api: docker.APIClient) -> None:
    layer = _image_layers(api, WASTE_IMAGE)[4]

    assert _by_path(layer) == {
        "opq": LayerEntry("opq", EntryType.DIR, 0, 0o755, 0, 0),
        "opq/new": LayerEntry("opq/new", EntryType.DIR, 0, 0o750, 0, 0),
        "opq/new/file": LayerEntry("opq/new/file", EntryType.FILE, 6, 0o644, 1000, 1000),
    }
    assert layer.opaque == frozenset({"opq"})
    assert layer.deleted == frozenset()


def test_container_writable_layer_agrees_with_docker_diff(api: docker.APIClient) -> None:
    inspect = api.inspect_container(CHANGES_CONTAINER)
    data = inspect["GraphDriver"]["Data"]
    assert inspect["GraphDriver"]["Name"] == "overlay2"
    # The container's LowerDir starts with its init layer, then the image's layers top first.
    lower = data["LowerDir"].split(":")
    assert lower[0].endswith("-init/diff")
    image = api.inspect_image(inspect["Image"])
    image_dirs = overlay_layer_dirs(image["GraphDriver"], len(image["RootFS"]["Layers"]), _root_dir(api))
    assert overlay_layer_dirs(inspect["GraphDriver"] | {"Data": {"UpperDir": data["UpperDir"]}}, 1, _root_dir(api))
    assert image_dirs is not None
    assert lower[1:] == image_dirs[::-1]

    listing = read_layer_dir(data["UpperDir"])
    changes = api.diff(CHANGES_CONTAINER)

    # docker diff reports a directory holding a change as changed: the writable layer holds it too.
    assert {entry.path for entry in listing.entries} == {
        change["Path"].lstrip("/") for change in changes if change["Kind"] in (0, 1)
    }
    assert listing.deleted == {change["Path"].lstrip("/") for change in changes if change["Kind"] == 2}
    entries = _by_path(listing)
    assert entries["app/new.txt"] == LayerEntry("app/new.txt", EntryType.FILE, 4, 0o644, 0, 0)
    assert entries["app/newdir"].type is EntryType.DIR
    assert entries["app/hello.txt"].type is EntryType.FILE
    assert listing.deleted == frozenset({"app/data.bin"})


def test_container_init_layer_reads_like_any_layer(api: docker.APIClient) -> None:
    lower = api.inspect_container(CHANGES_CONTAINER)["GraphDriver"]["Data"]["LowerDir"].split(":")
    entries = _by_path(read_layer_dir(lower[0]))
    assert entries[".dockerenv"].type is EntryType.FILE
    assert entries["etc/hosts"].type is EntryType.FILE
    assert entries["etc/mtab"] == LayerEntry("etc/mtab", EntryType.SYMLINK, 0, 0o777, 0, 0, "/proc/mounts")
