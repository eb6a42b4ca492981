"""The export reader: layer listings from the tar headers of an image export stream."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import tarfile
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import zstandard

from conftest import FIXTURE_IMAGES, WASTE_IMAGE
from dockerscope.service.export_reader import ExportFormatError, read_export
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, ReadCancelled, normalize_path

Member = tuple[tarfile.TarInfo, bytes]


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: Any) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    info.mode = fields.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    for field, value in fields.items():
        setattr(info, field, value)
    return info, data


def _tar(*members: Member, tar_format: int = tarfile.PAX_FORMAT, **options: Any) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format, **options) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _legacy_export(layers: list[bytes], *, links: dict[int, int] | None = None) -> tuple[bytes, list[str]]:
    """A `docker save` archive as API <= 1.43 writes it: layers in another order than the image's,
    the config first, manifest.json last. `links` makes layer i a symlink to layer j's layer.tar, as
    docker writes a layer that appears twice. Returns the archive and the diff ids."""
    links = links or {}
    diff_ids = [_digest(layer) for layer in layers]
    dirs = [hashlib.sha256(f"layer {index}".encode()).hexdigest() for index in range(len(layers))]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    members = [_member(config_name, data=config)]
    for index in reversed(range(len(layers))):
        members.append(_member(f"{dirs[index]}/", tarfile.DIRTYPE))
        members.append(_member(f"{dirs[index]}/VERSION", data=b"1.0"))
        members.append(_member(f"{dirs[index]}/json", data=b'{"id": "x"}'))
        if index in links:
            target = f"../{dirs[links[index]]}/layer.tar"
            members.append(_member(f"{dirs[index]}/layer.tar", tarfile.SYMTYPE, linkname=target))
        else:
            members.append(_member(f"{dirs[index]}/layer.tar", data=layers[index]))
    manifest = [{"Config": config_name, "RepoTags": ["x:1"], "Layers": [f"{name}/layer.tar" for name in dirs]}]
    members.append(_member("manifest.json", data=json.dumps(manifest).encode()))
    members.append(_member("repositories", data=b'{"x": {"1": "0"}}'))
    return _tar(*members), diff_ids


def _oci_export(
    blobs: list[bytes], diff_ids: list[str], *, manifest_json: bool = True, nested_index: bool = False
) -> bytes:
    """An export as API >= 1.44 writes it. With `nested_index`, index.json names an image index whose
    first entries are an attestation manifest and a manifest for a platform left out of the export."""
    stored: dict[str, bytes] = {}

    def add(data: bytes) -> str:
        stored[_digest(data)] = data
        return _digest(data)

    def descriptor(digest: str, **extra: Any) -> dict[str, Any]:
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1, **extra}

    layer_digests = [add(blob) for blob in blobs]
    config = add(json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    manifest = {"schemaVersion": 2, "config": {"digest": config}, "layers": [{"digest": d} for d in layer_digests]}
    top = add(json.dumps(manifest).encode())
    if nested_index:
        attestation = add(json.dumps({"schemaVersion": 2, "config": {"digest": config}, "layers": []}).encode())
        entries = [
            descriptor(attestation, annotations={"vnd.docker.reference.type": "attestation-manifest"}),
            descriptor(_digest(b"another platform")),
            descriptor(top),
        ]
        top = add(json.dumps({"schemaVersion": 2, "manifests": entries}).encode())
    members = [_member("blobs/", tarfile.DIRTYPE), _member("blobs/sha256/", tarfile.DIRTYPE)]
    members += [_member(f"blobs/sha256/{digest[7:]}", data=data) for digest, data in stored.items()]
    members.append(
        _member("index.json", data=json.dumps({"schemaVersion": 2, "manifests": [descriptor(top)]}).encode())
    )
    if manifest_json:
        docker_manifest = [
            {"Config": f"blobs/sha256/{config[7:]}", "Layers": [f"blobs/sha256/{d[7:]}" for d in layer_digests]}
        ]
        members.append(_member("manifest.json", data=json.dumps(docker_manifest).encode()))
    members.append(_member("oci-layout", data=b'{"imageLayoutVersion": "1.0.0"}'))
    return _tar(*members)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _by_path(listing: LayerListing) -> dict[str, LayerEntry]:
    entries = {entry.path: entry for entry in listing.entries}
    assert len(entries) == len(listing.entries)
    return entries


def _single_layer(layer: bytes) -> LayerListing:
    export, _ = _legacy_export([layer])
    [(_, listing)] = read_export([export])
    return listing


BASE_LAYER = _tar(
    _member("./", tarfile.DIRTYPE),
    _member("etc/", tarfile.DIRTYPE),
    _member("etc/hosts", data=b"127.0.0.1 localhost\n"),
    _member("usr/bin/tool", data=b"#!/bin/sh\n", mode=0o4755, uid=3, gid=4),
)
TOP_LAYER = _tar(
    _member("etc/", tarfile.DIRTYPE),
    _member("etc/.wh.hosts"),
    _member("usr/bin/", tarfile.DIRTYPE),
    _member("usr/bin/tool", data=b"#!/bin/bash\n"),
)


@pytest.mark.parametrize("chunk_size", [1, 511, 512, 513, 10_000, 1 << 30])
def test_legacy_layout_gives_the_layers_in_manifest_order_with_their_diff_ids(chunk_size: int) -> None:
    export, diff_ids = _legacy_export([BASE_LAYER, TOP_LAYER])

    layers = read_export(_chunks(export, chunk_size))

    assert [diff_id for diff_id, _ in layers] == diff_ids
    base, top = (listing for _, listing in layers)
    assert sorted(base.entries) == [
        LayerEntry("etc", EntryType.DIR, 0, 0o755, 0, 0),
        LayerEntry("etc/hosts", EntryType.FILE, 20, 0o644, 0, 0),
        LayerEntry("usr/bin/tool", EntryType.FILE, 10, 0o4755, 3, 4),
    ]
    assert base.deleted == frozenset() and base.opaque == frozenset()
    assert sorted(entry.path for entry in top.entries) == ["etc", "usr/bin", "usr/bin/tool"]
    assert top.deleted == {"etc/hosts"}


def test_entry_types_sizes_and_links() -> None:
    listing = _single_layer(
        _tar(
            _member("data/", tarfile.DIRTYPE, mode=0o2775, uid=7, gid=8),
            _member("data/file", data=b"12345", mode=0o600),
            _member("data/hard", tarfile.LNKTYPE, linkname="data/file"),
            _member("./data/hard-to-missing", tarfile.LNKTYPE, linkname="./data/missing"),
            _member("data/sym", tarfile.SYMTYPE, linkname="../etc/./target", mode=0o777),
            _member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
            _member("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
            _member("run/fifo", tarfile.FIFOTYPE),
            _member("empty", data=b""),
        )
    )

    assert _by_path(listing) == {
        "data": LayerEntry("data", EntryType.DIR, 0, 0o2775, 7, 8),
        "data/file": LayerEntry("data/file", EntryType.FILE, 5, 0o600, 0, 0),
        "data/hard": LayerEntry("data/hard", EntryType.HARDLINK, 5, 0o644, 0, 0, "data/file"),
        "data/hard-to-missing": LayerEntry("data/hard-to-missing", EntryType.HARDLINK, 0, 0o644, 0, 0, "data/missing"),
        "data/sym": LayerEntry("data/sym", EntryType.SYMLINK, 0, 0o777, 0, 0, "../etc/./target"),
        "dev/null": LayerEntry("dev/null", EntryType.OTHER, 0, 0o666, 0, 0),
        "dev/sda": LayerEntry("dev/sda", EntryType.OTHER, 0, 0o644, 0, 0),
        "run/fifo": LayerEntry("run/fifo", EntryType.OTHER, 0, 0o644, 0, 0),
        "empty": LayerEntry("empty", EntryType.FILE, 0, 0o644, 0, 0),
    }


def test_whiteouts_opaque_dirs_and_aufs_metadata() -> None:
    listing = _single_layer(
        _tar(
            _member(".wh.top-level"),
            _member("a/", tarfile.DIRTYPE),
            _member("a/.wh.gone"),
            _member("a/b/", tarfile.DIRTYPE),
            _member("a/b/.wh..wh..opq"),
            _member("a/b/new", data=b"n"),
            _member("a/not.wh.special", data=b"x"),
            _member(".wh..wh.plnk/", tarfile.DIRTYPE),
            _member(".wh..wh.plnk/123.456", data=b"aufs"),
            _member(".wh..wh.aufs"),
        )
    )

    assert sorted(_by_path(listing)) == ["a", "a/b", "a/b/new", "a/not.wh.special"]
    assert listing.deleted == {"top-level", "a/gone"}
    assert listing.opaque == {"a/b"}


LONG_DIR = "/".join(f"directory-{index:02d}" for index in range(12))


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_big_ids_and_utf8(tar_format: int) -> None:
    listing = _single_layer(
        _tar(
            _member(f"{LONG_DIR}/file", data=b"abc", uid=10_000_000, gid=3_000_000),
            _member(f"{LONG_DIR}/link", tarfile.SYMTYPE, linkname=f"/{LONG_DIR}/file"),
            _member(f"{LONG_DIR}/hard", tarfile.LNKTYPE, linkname=f"{LONG_DIR}/file"),
            _member("café/ünïcode-名前.txt", data=b"x"),
            tar_format=tar_format,
        )
    )

    entries = _by_path(listing)
    assert entries[f"{LONG_DIR}/file"] == LayerEntry(
        f"{LONG_DIR}/file", EntryType.FILE, 3, 0o644, 10_000_000, 3_000_000
    )
    assert entries[f"{LONG_DIR}/link"].link == f"/{LONG_DIR}/file"
    assert entries[f"{LONG_DIR}/hard"].size == 3
    assert entries["café/ünïcode-名前.txt"].size == 1


def test_ustar_prefix_field_holds_the_start_of_a_long_path() -> None:
    path = f"{LONG_DIR[:140]}/file"
    listing = _single_layer(_tar(_member(path, data=b"1"), tar_format=tarfile.USTAR_FORMAT))

    assert [entry.path for entry in listing.entries] == [path]


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_non_utf8_names_decode_with_surrogateescape(tar_format: int) -> None:
    listing = _single_layer(
        _tar(_member("caf\udce9/x", data=b"1"), tar_format=tar_format, encoding="utf-8", errors="surrogateescape")
    )

    assert [entry.path for entry in listing.entries] == ["caf\udce9/x"]
    assert listing.entries[0].path.encode("utf-8", "surrogateescape") == b"caf\xe9/x"


def test_pax_global_header_applies_to_every_member() -> None:
    listing = _single_layer(_tar(_member("a", data=b"1"), _member("b"), pax_headers={"uid": "4242"}))

    assert {entry.path: entry.uid for entry in listing.entries} == {"a": 4242, "b": 4242}


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def test_old_gnu_sparse_member_with_extension_blocks() -> None:
    """A GNU sparse header, followed by one extension block before its stored data."""
    header = bytearray(_member("sparse", tarfile.GNUTYPE_SPARSE, data=b"d" * 600)[0].tobuf(tarfile.GNU_FORMAT))
    header[482] = 1  # an extension block follows
    header[483:495] = b"%011o\0" % 1_000_000  # the real size
    extension = bytearray(512)
    extension[504] = 0  # no further extension block
    sparse = _with_checksum(header) + bytes(extension) + b"d" * 600 + bytes(424)
    layer = sparse + _tar(_member("after", data=b"xy"))

    entries = _by_path(_single_layer(layer))

    assert entries["sparse"] == LayerEntry("sparse", EntryType.FILE, 1_000_000, 0o644, 0, 0)
    assert entries["after"].size == 2


def _gzip_members(data: bytes) -> bytes:
    """Gzip in two members, as concatenating gzip files gives."""
    middle = len(data) // 2
    return gzip.compress(data[:middle]) + gzip.compress(data[middle:]) + bytes(8)


def _zstd_frames(data: bytes) -> bytes:
    middle = len(data) // 2
    compressor = zstandard.ZstdCompressor()
    return compressor.compress(data[:middle]) + compressor.compress(data[middle:])


@pytest.mark.parametrize("manifest_json", [True, False])
@pytest.mark.parametrize("compress", [gzip.compress, _gzip_members, zstandard.compress, _zstd_frames])
def test_oci_layout_with_compressed_layers(compress: Any, manifest_json: bool) -> None:
    diff_ids = [_digest(BASE_LAYER), _digest(TOP_LAYER)]
    export = _oci_export([compress(BASE_LAYER), compress(TOP_LAYER)], diff_ids, manifest_json=manifest_json)

    layers = read_export(_chunks(export, 700))

    assert [diff_id for diff_id, _ in layers] == diff_ids
    assert layers[0][1] == _single_layer(BASE_LAYER)
    assert layers[1][1].deleted == {"etc/hosts"}


def test_oci_layout_without_manifest_json_follows_the_index_to_the_exported_manifest() -> None:
    diff_ids = [_digest(BASE_LAYER), _digest(TOP_LAYER)]
    export = _oci_export([BASE_LAYER, TOP_LAYER], diff_ids, manifest_json=False, nested_index=True)

    layers = read_export([export])

    assert [diff_id for diff_id, _ in layers] == diff_ids
    assert layers[1][1].deleted == {"etc/hosts"}


def test_oci_layout_lists_a_repeated_layer_twice() -> None:
    diff_ids = [_digest(BASE_LAYER), _digest(TOP_LAYER), _digest(BASE_LAYER)]
    export = _oci_export([BASE_LAYER, TOP_LAYER, BASE_LAYER], diff_ids)

    layers = read_export([export])

    assert [diff_id for diff_id, _ in layers] == diff_ids
    assert layers[2][1] == layers[0][1]


def test_legacy_layout_resolves_a_symlinked_duplicate_layer() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER, TOP_LAYER, BASE_LAYER], links={2: 0})

    layers = read_export([export])

    assert [diff_id for diff_id, _ in layers] == diff_ids
    assert layers[2][1] == layers[0][1]
    assert len(layers[2][1].entries) == 3


def test_an_empty_layer_tar() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER, _tar(), bytes(1024)])

    layers = read_export([export])

    assert [diff_id for diff_id, _ in layers] == diff_ids
    assert layers[1][1] == LayerListing(()) == layers[2][1]


def test_a_large_member_that_is_no_layer_is_skipped() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER])
    header, data = _member("junk.bin", data=b"junk" * (5 << 20) + b"!")
    junk = header.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)

    layers = read_export([junk, export])

    assert [diff_id for diff_id, _ in layers] == diff_ids


ZEROS = bytes(1 << 20)


def _big_layer(name: str, file_sizes: list[int]) -> Iterator[bytes]:
    """A layer tar as a member of the outer export, streamed without ever holding its data."""
    blocks = []
    for index, size in enumerate(file_sizes):
        info = _member(f"{name}/file-{index}")[0]
        info.size = size
        blocks.append(info.tobuf(tarfile.PAX_FORMAT))
    outer = _member(f"{name}/layer.tar")[0]
    outer.size = sum(len(block) + size + (-size % 512) for block, size in zip(blocks, file_sizes, strict=True)) + 1024
    yield outer.tobuf(tarfile.PAX_FORMAT)
    for block, size in zip(blocks, file_sizes, strict=True):
        yield block
        left = size + (-size % 512)
        while left:
            yield ZEROS[: min(left, len(ZEROS))]
            left -= min(left, len(ZEROS))
    yield bytes(1024)


def _big_export(layer_sizes: list[list[int]]) -> Iterator[bytes]:
    names = [f"{index:064x}" for index in range(len(layer_sizes))]
    for name, sizes in zip(names, layer_sizes, strict=True):
        yield from _big_layer(name, sizes)
    config = json.dumps({"rootfs": {"diff_ids": [f"sha256:{name}" for name in names]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "Layers": [f"{name}/layer.tar" for name in names]}]).encode()
    yield _tar(_member("config.json", data=config), _member("manifest.json", data=manifest))


def test_progress_rises_and_file_contents_are_never_held() -> None:
    reports: list[tuple[int, int]] = []
    sizes = [[40 << 20, 1, 70 << 20], [3] * 5000, [100 << 20]]
    tracemalloc.start()
    try:
        layers = read_export(_big_export(sizes), on_progress=lambda *report: reports.append(report))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [len(listing.entries) for _, listing in layers] == [3, 5000, 1]
    assert peak < 8 << 20
    assert reports == sorted(reports)
    assert reports[-1][0] == 3
    assert [layers_done for layers_done, _ in reports].count(0) >= 2  # reports inside the first layer
    assert reports[-1][1] > 200 << 20
    assert all(later[1] - earlier[1] <= 40 << 20 for earlier, later in itertools.pairwise(reports))


def test_cancel_set_during_the_read_raises() -> None:
    cancel = threading.Event()
    chunks_read = 0

    def chunks() -> Iterator[bytes]:
        nonlocal chunks_read
        for chunk in _big_export([[100 << 20], [100 << 20]]):
            chunks_read += 1
            yield chunk

    def cancel_after_the_first_layer(layers_done: int, bytes_done: int) -> None:
        if layers_done:
            cancel.set()

    with pytest.raises(ReadCancelled):
        read_export(chunks(), cancel=cancel, on_progress=cancel_after_the_first_layer)
    assert chunks_read < 150  # the second layer alone is 100 chunks


class _SetOnSecondCheck(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > 1


def test_cancel_is_checked_within_a_layer_of_many_entries() -> None:
    """6000 entries fit one 4 MiB slice of the stream: only the per-entry check can see the event."""
    export, _ = _legacy_export([_tar(*(_member(f"f{index}") for index in range(6000)))])
    cancel = _SetOnSecondCheck()

    with pytest.raises(ReadCancelled):
        read_export([export], cancel=cancel)
    assert cancel.checks == 2


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a tar archive".ljust(2048, b"!"), id="not-a-tar"),
        pytest.param(_legacy_export([BASE_LAYER])[0][:2000], id="truncated"),
        pytest.param(_tar(_member("manifest.json", data=b"[]")), id="no-image"),
        pytest.param(_tar(_member("manifest.json", data=b'[{"Config": "c", "Layers": []}]')), id="no-config"),
        pytest.param(_tar(_member("x", data=gzip.compress(BASE_LAYER)[:-20])), id="truncated-gzip"),
        pytest.param(
            _tar(
                _member("c", data=b'{"rootfs": {"diff_ids": ["sha256:0"]}}'),
                _member("manifest.json", data=b'[{"Config": "c", "Layers": ["c"]}]'),
            ),
            id="layer-not-a-tar",
        ),
    ],
)
def test_unreadable_streams_raise_export_format_error(stream: bytes) -> None:
    with pytest.raises(ExportFormatError):
        read_export([stream])


# Against the private daemon.


def _tarfile_listing(layer: tarfile.TarFile) -> LayerListing:
    """The same listing from the standard library's tar reader, for comparison."""
    entries, deleted, opaque = [], set(), set()
    kinds = {tarfile.REGTYPE: EntryType.FILE, tarfile.DIRTYPE: EntryType.DIR, tarfile.SYMTYPE: EntryType.SYMLINK}
    sizes = {normalize_path(member.name): member.size for member in layer.getmembers() if member.isfile()}
    for member in layer.getmembers():
        path = normalize_path(member.name)
        parent, _, base = path.rpartition("/")
        if base == ".wh..wh..opq":
            opaque.add(parent)
        elif base.startswith(".wh."):
            deleted.add(f"{parent}/{base[4:]}".lstrip("/"))
        elif path:
            kind = EntryType.HARDLINK if member.islnk() else kinds.get(member.type, EntryType.OTHER)
            link = normalize_path(member.linkname) if member.islnk() else member.linkname
            size = sizes.get(link, 0) if member.islnk() else member.size if member.isfile() else 0
            entries.append(LayerEntry(path, kind, size, member.mode & 0o7777, member.uid, member.gid, link))
    return LayerListing(tuple(sorted(entries)), frozenset(deleted), frozenset(opaque))


@pytest.mark.daemon
@pytest.mark.parametrize("image", FIXTURE_IMAGES)
def test_fixture_images_give_their_diff_ids_and_what_tarfile_reads(api: docker.APIClient, image: str) -> None:
    export = b"".join(api.get_image(image))

    layers = read_export(_chunks(export, 65536))

    assert [diff_id for diff_id, _ in layers] == api.inspect_image(image)["RootFS"]["Layers"]
    with tarfile.open(fileobj=io.BytesIO(export)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        for path, (_, listing) in zip(manifest[0]["Layers"], layers, strict=True):
            with tarfile.open(fileobj=archive.extractfile(path)) as layer:
                expected = _tarfile_listing(layer)
            assert LayerListing(tuple(sorted(listing.entries)), listing.deleted, listing.opaque) == expected


@pytest.mark.daemon
def test_waste_image_changes_deletes_and_hides(api: docker.APIClient) -> None:
    layers = read_export(api.get_image(WASTE_IMAGE, chunk_size=1 << 20))

    assert [diff_id for diff_id, _ in layers] == api.inspect_image(WASTE_IMAGE)["RootFS"]["Layers"]
    written = _by_path(layers[2][1])
    assert written["data/keep/config.link"] == LayerEntry(
        "data/keep/config.link", EntryType.HARDLINK, 3, 0o644, 0, 0, "data/keep/config"
    )
    assert written["data/keep/config"].type is EntryType.FILE
    assert written["data/config.symlink"].type is EntryType.SYMLINK
    assert written["data/config.symlink"].link == "keep/config"
    changed = layers[3][1]
    assert _by_path(changed)["data/keep/config"] == LayerEntry("data/keep/config", EntryType.FILE, 12, 0o644, 0, 0)
    assert changed.deleted == {"data/big.bin", "data/gone"}
    assert changed.opaque == frozenset()
    hidden = layers[4][1]
    assert hidden.opaque == {"opq"}
    assert hidden.deleted == frozenset()
    entries = _by_path(hidden)
    assert entries["opq/new"].type is EntryType.DIR
    assert entries["opq/new"].mode == 0o750
    assert entries["opq/new/file"].uid == 1000
    assert ".wh..wh..opq" not in " ".join(entries)
