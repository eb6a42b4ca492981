"""The readers behind `read_layer_files`, without an engine: the export stream read up to the wanted
files (both export layouts, compressed layers, hard links, a layer twice, early stops, lies), the
overlay fast path's opener against planted symlinks, and image archives."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import resource
import tarfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from archives import Layout, compress, docker_save, step, write_tar
from bytesinks import Sinks
from dockerscope.service import open_archive
from dockerscope.service.export_reader import ExportFormatError, read_export_files, read_layer_members
from dockerscope.service.layer_bytes import open_layer_file
from dockerscope.service.layer_contents import ContentsUnavailable
from dockerscope.service.layer_files import ReadCancelled

CHUNK = 64 << 10
BIG = 8 << 20


def layer_tar(files: Mapping[str, bytes], hardlinks: Mapping[str, str] | None = None) -> bytes:
    """An uncompressed layer: regular files, then hard links (name: the file it links to)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (hardlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


SMALL = layer_tar({"etc/conf": b"first\n", "etc/empty": b"", "etc/other": b"other\n"}, {"etc/conf.link": "etc/conf"})
HUGE = layer_tar({"big.bin": os.urandom(BIG), "etc/conf": b"second\n"})
TOP = layer_tar({"etc/conf": b"third\n"})


def _big_of(layer: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        data = tar.extractfile("big.bin")
        assert data is not None
        return data.read()


HUGE_BIG = _big_of(HUGE)


def export_tar(files: Mapping[str, bytes]) -> bytes:
    """An export stream: the members in lexical order, as docker's save writes its directory."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def member_end(stream: bytes, name: str) -> int:
    """Where the data of the export member `name` ends in the stream."""
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        member = tar.getmember(name)
        return member.offset_data + member.size


class Counted:
    """The stream in chunks, counting the bytes taken from it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), CHUNK):
            chunk = self.data[start : start + CHUNK]
            self.taken += len(chunk)
            yield chunk


def newer_export(layers: list[bytes], how: str = "plain") -> tuple[bytes, list[str], list[str]]:
    """A docker 25+ export (OCI blobs, index.json, manifest.json): the stream, the diff ids and
    each layer's member path."""
    layout = Layout()
    descriptor = layout.image(layers, [step(f"layer {n}") for n in range(len(layers))], how=how)
    files = layout.files([descriptor])
    manifest = json.loads(files[f"blobs/sha256/{descriptor['digest'][7:]}"])
    paths = [f"blobs/sha256/{layer['digest'][7:]}" for layer in manifest["layers"]]
    files["manifest.json"] = json.dumps(
        [{"Config": f"blobs/sha256/{manifest['config']['digest'][7:]}", "RepoTags": [], "Layers": paths}]
    ).encode()
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'][7:]}"])
    return export_tar(files), config["rootfs"]["diff_ids"], paths


def legacy_export(layers: list[bytes]) -> tuple[bytes, list[str], list[str]]:
    """A legacy docker save: `<id>/layer.tar` directories, manifest.json last."""
    files = docker_save([(["test/app:1"], layers, [step(f"layer {n}") for n in range(len(layers))])])
    manifest = json.loads(files["manifest.json"])[0]
    config = json.loads(files[manifest["Config"]])
    return export_tar(files), config["rootfs"]["diff_ids"], manifest["Layers"]


@pytest.mark.parametrize("layout", [newer_export, legacy_export])
def test_the_wanted_files_of_an_export_are_its_bytes_and_the_stream_is_left_after_their_layer(layout: object) -> None:
    stream, diff_ids, paths = layout([SMALL, HUGE, TOP])  # type: ignore[operator]
    wanted = {0: ["etc/conf", "etc/missing", "etc/empty"], 2: ["etc/conf"]}
    sinks = Sinks()
    counted = Counted(stream)
    read_export_files(counted, diff_ids, wanted, sinks)
    assert sinks.data() == {(0, "etc/conf"): b"first\n", (0, "etc/empty"): b"", (2, "etc/conf"): b"third\n"}
    assert sorted(sink.size for sink in sinks.opened.values()) == [0, 6, 6] and sinks.all_closed_once()
    # Read up to the later of the two wanted layers (plus the chunk it ends in), never further.
    assert counted.taken <= max(member_end(stream, paths[0]), member_end(stream, paths[2])) + CHUNK
    first = min((0, 2), key=lambda index: member_end(stream, paths[index]))
    counted = Counted(stream)
    read_export_files(counted, diff_ids, {first: ["etc/conf"]}, Sinks())
    assert counted.taken <= member_end(stream, paths[first]) + CHUNK


def test_an_export_whose_manifest_comes_first_hands_compressed_layers_files_over_as_they_pass() -> None:
    layout = Layout()
    descriptor = layout.image([SMALL, HUGE, TOP], [step("a"), step("b"), step("c")], how="gzip")
    files = layout.files([descriptor])
    manifest = json.loads(files[f"blobs/sha256/{descriptor['digest'][7:]}"])
    paths = [f"blobs/sha256/{layer['digest'][7:]}" for layer in manifest["layers"]]
    config_path = f"blobs/sha256/{manifest['config']['digest'][7:]}"
    first = {"manifest.json": json.dumps([{"Config": config_path, "RepoTags": [], "Layers": paths}]).encode()}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in [*first.items(), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stream = out.getvalue()
    diff_ids = json.loads(files[config_path])["rootfs"]["diff_ids"]
    sinks = Sinks(stop_after=1 << 20)
    counted = Counted(stream)
    read_export_files(counted, diff_ids, {1: ["big.bin"]}, sinks)
    [sink] = sinks.opened.values()
    assert bytes(sink.data[: 1 << 20]) == HUGE_BIG[: 1 << 20]
    # Given over as it streamed by: the read stopped inside the layer, long before its end.
    assert counted.taken < member_end(stream, paths[1]) - BIG // 2


def test_a_sink_s_own_failure_reaches_the_caller_of_an_archive_as_it_was(tmp_path: Path) -> None:
    class DiskFull:
        def write(self, data: bytes | memoryview) -> bool:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    saved = write_tar(tmp_path / "saved.tar", docker_save([(["test/app:1"], [SMALL], [step("a")])]))
    source = open_archive(str(saved))
    [image] = asyncio.run(source.snapshot()).images
    with pytest.raises(OSError, match="No space left") as failure:
        asyncio.run(source.read_layer_files(image.id, {0: ["etc/conf"]}, lambda *_: DiskFull()))
    assert failure.value.errno == 28
    source.close()


def test_a_file_of_a_compressed_layer_is_read_whatever_its_blob_is_named() -> None:
    for how in ("gzip", "zstd"):
        stream, diff_ids, _ = newer_export([SMALL, TOP], how=how)
        sinks = Sinks()
        read_export_files(Counted(stream), diff_ids, {0: ["etc/other", "etc/empty"], 1: ["etc/conf"]}, sinks)
        assert sinks.data() == {(0, "etc/other"): b"other\n", (0, "etc/empty"): b"", (1, "etc/conf"): b"third\n"}
        assert sinks.all_closed_once()


def test_a_hard_link_has_no_bytes_of_its_own_the_file_it_names_has_them() -> None:
    stream, diff_ids, _ = newer_export([SMALL])
    sinks = Sinks()
    read_export_files(Counted(stream), diff_ids, {0: ["etc/conf.link", "etc/conf"]}, sinks)
    assert sinks.data() == {(0, "etc/conf"): b"first\n"}


def test_the_same_layer_twice_in_an_image_gives_both_its_places_their_bytes() -> None:
    for layout in (newer_export, legacy_export):
        stream, diff_ids, _ = layout([SMALL, TOP, SMALL])
        assert diff_ids[0] == diff_ids[2]
        sinks = Sinks()
        read_export_files(Counted(stream), diff_ids, {0: ["etc/conf"], 2: ["etc/conf"]}, sinks)
        assert sinks.data() == {(0, "etc/conf"): b"first\n", (2, "etc/conf"): b"first\n"}, layout.__name__


def test_a_thousand_files_of_a_layer_the_legacy_layout_does_not_name_share_one_spool() -> None:
    many = layer_tar({f"d/{number:04d}": f"{number}\n".encode() * 1000 for number in range(1000)})
    stream, diff_ids, _ = legacy_export([many, TOP])
    wanted = {0: [f"d/{number:04d}" for number in range(1000)]}
    open_files: list[int] = []
    sinks = Sinks()

    def opener(layer: int, path: str, size: int) -> object:
        open_files.append(len(os.listdir("/proc/self/fd")))
        return sinks(layer, path, size)

    before = len(os.listdir("/proc/self/fd"))
    read_export_files(Counted(stream), diff_ids, wanted, opener)  # type: ignore[arg-type]
    assert len(sinks.opened) == 1000 and sinks.data()[(0, "d/0999")] == b"999\n" * 1000
    assert max(open_files) <= before + 2


def test_a_sink_that_has_enough_ends_the_read_in_the_middle_of_a_big_file() -> None:
    stream, diff_ids, paths = newer_export([SMALL, HUGE, TOP])
    sinks = Sinks(stop_after=1 << 20)
    counted = Counted(stream)
    read_export_files(counted, diff_ids, {1: ["big.bin"]}, sinks)
    [sink] = sinks.opened.values()
    assert sink.size == BIG and sink.closes == 1
    assert (1 << 20) <= len(sink.data) <= (1 << 20) + CHUNK
    assert counted.taken < member_end(stream, paths[1]) - BIG // 2


def test_a_cancelled_export_read_stops_and_closes_its_sinks() -> None:
    for layout in (newer_export, legacy_export):
        stream, diff_ids, _ = layout([SMALL, HUGE])
        cancel = threading.Event()
        sinks = Sinks(cancel=cancel)
        with pytest.raises(ReadCancelled):
            read_export_files(Counted(stream), diff_ids, {1: ["big.bin"]}, sinks, cancel=cancel)
        assert sinks.all_closed_once()


def test_an_export_without_a_wanted_layer_or_with_a_lying_blob_name_is_an_error() -> None:
    stream, diff_ids, _ = newer_export([SMALL, TOP])
    with pytest.raises(ExportFormatError, match="holds no layer 2"):
        read_export_files(Counted(stream), [diff_ids[0], "sha256:" + "0" * 64], {1: ["etc/conf"]}, Sinks())
    layout = Layout()
    descriptor = layout.image([SMALL, TOP], [step("a"), step("b")], how="plain")
    files = layout.files([descriptor])
    small, top = (f"blobs/sha256/{diff_id[7:]}" for diff_id in diff_ids)
    files[small], files[top] = files[top], files[small]
    with pytest.raises(ExportFormatError, match="does not hash to the diff id its name says"):
        read_export_files(Counted(export_tar(files)), diff_ids, {0: ["etc/conf"]}, Sinks())


@pytest.mark.parametrize("how", ["plain", "gzip", "zstd"])
def test_one_layer_blob_gives_its_members_and_is_left_once_they_are_read(how: str) -> None:
    blob = compress(HUGE + TOP, how) if how != "plain" else HUGE
    sinks = Sinks()
    counted = Counted(blob)
    read_layer_members(counted, ["big.bin"], lambda path, size: sinks(0, path, size))
    assert len(sinks.data()[(0, "big.bin")]) == BIG
    stopped = Sinks(stop_after=1)
    counted = Counted(blob)
    read_layer_members(counted, ["big.bin", "nothing"], lambda path, size: stopped(0, path, size))
    assert len(stopped.data()[(0, "big.bin")]) <= CHUNK * 64 and stopped.all_closed_once()


# --- the overlay fast path's opener ---------------------------------------------------------------


@pytest.fixture
def layer_dir(tmp_path: Path) -> Iterator[int]:
    """A layer directory with a file, a fifo, and symlinks planted to lead out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not the layer's\n")
    root = tmp_path / "layer"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"in the layer\n")
    (root / "etc").symlink_to(outside)  # a directory on the way that is a symlink
    (root / "dir" / "up").symlink_to("../../outside")
    (root / "dir" / "secret").symlink_to(outside / "secret")  # the file itself a symlink
    os.mkfifo(root / "fifo")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def _read(fd: int | None) -> bytes | None:
    if fd is None:
        return None
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def test_the_fast_path_opens_only_regular_files_of_the_layer_and_follows_no_symlink(layer_dir: int) -> None:
    assert _read(open_layer_file(layer_dir, "dir/file")) == b"in the layer\n"
    for path in (
        "etc/secret",  # through a symlinked directory
        "dir/up/secret",
        "dir/secret",  # a symlink as the last component
        "dir/../dir/file",
        "../outside/secret",
        "dir//file",
        "fifo",  # would block an open without O_NONBLOCK; not a regular file anyway
        "dir",
        "dir/nothing",
        "dir/file/below",
    ):
        assert open_layer_file(layer_dir, path) is None, path


def test_a_deep_path_holds_one_directory_open_at_a_time(tmp_path: Path) -> None:
    deep = tmp_path / "layer" / Path(*["d"] * 200)
    deep.mkdir(parents=True)
    (deep / "file").write_bytes(b"deep\n")
    root = os.open(tmp_path / "layer", os.O_RDONLY | os.O_DIRECTORY)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
    try:
        fd = open_layer_file(root, "/".join([*["d"] * 200, "file"]))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        os.close(root)
    assert _read(fd) == b"deep\n"


# --- archives -------------------------------------------------------------------------------------


async def _read_archive(path: Path, wanted: Mapping[int, list[str]]) -> dict[tuple[int, str], bytes]:
    source = open_archive(str(path))
    try:
        [image] = [image for image in (await source.snapshot()).images if image.tags]
        sinks = Sinks()
        assert await source.read_layer_files(image.id, wanted, sinks) == "archive"
        assert sinks.all_closed_once()
        return sinks.data()
    finally:
        source.close()


def test_an_archive_gives_its_layers_files_in_every_layout(tmp_path: Path) -> None:
    wanted = {0: ["etc/conf", "etc/conf.link", "etc/empty"], 1: ["big.bin"], 2: ["etc/conf"]}
    expected = {
        (0, "etc/conf"): b"first\n",
        (0, "etc/empty"): b"",
        (1, "big.bin"): HUGE_BIG,
        (2, "etc/conf"): b"third\n",
    }
    history = [step("a"), step("b"), step("c")]
    saved = write_tar(tmp_path / "saved.tar", docker_save([(["test/app:1"], [SMALL, HUGE, TOP], history)]))
    packed = tmp_path / "saved.tar.gz"
    packed.write_bytes(gzip.compress(saved.read_bytes(), compresslevel=1))
    assert asyncio.run(_read_archive(saved, wanted)) == expected
    assert asyncio.run(_read_archive(packed, wanted)) == expected
    for how in ("gzip", "zstd"):
        layout = Layout()
        descriptor = layout.image([SMALL, HUGE, TOP], history, how=how, tag="1")
        root = layout.write_dir(tmp_path / f"oci-{how}", [descriptor])
        assert asyncio.run(_read_archive(root, wanted)) == expected, how


def test_an_archive_has_no_containers_and_no_layer_beyond_its_own(tmp_path: Path) -> None:
    saved = write_tar(tmp_path / "saved.tar", docker_save([(["test/app:1"], [SMALL], [step("a")])]))
    source = open_archive(str(saved))
    [image] = asyncio.run(source.snapshot()).images
    assert source.capabilities.file_contents
    with pytest.raises(ContentsUnavailable, match="no containers"):
        asyncio.run(source.read_layer_files(image.id, {1: ["x"]}, Sinks(), container_id="abc"))
    with pytest.raises(ContentsUnavailable, match="no layer 2"):
        asyncio.run(source.read_layer_files(image.id, {1: ["x"]}, Sinks()))
    source.close()
