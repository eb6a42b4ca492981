"""The export reader: layer listings from the tar headers of an image export stream."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import re
import tarfile
import threading
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from typing import Any

import docker
import pytest
import zstandard

from conftest import FIXTURE_IMAGES, WASTE_IMAGE
from dockerscope.service.export_reader import ExportedLayer, ExportFormatError, read_export
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


def _legacy_export(
    layers: list[bytes],
    *,
    links: dict[int, int] | None = None,
    claimed: list[str] | None = None,
    config_fields: dict[str, Any] | None = None,
) -> tuple[bytes, list[str]]:
    """A `docker save` archive as API <= 1.43 writes it: layers in another order than the image's,
    the config first, manifest.json last. `links` makes layer i a symlink to layer j's layer.tar, as
    docker writes a layer that appears twice. The config names the layers' digests as diff ids, or
    the `claimed` ones, and holds `config_fields` too. Returns the archive and the diff ids."""
    links = links or {}
    diff_ids = claimed or [_digest(layer) for layer in layers]
    dirs = [hashlib.sha256(f"layer {index}".encode()).hexdigest() for index in range(len(layers))]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}, **(config_fields or {})}).encode()
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
    [layer] = read_export([export])
    return layer.listing


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

    assert [layer.diff_id for layer in layers] == diff_ids
    base, top = (layer.listing for layer in layers)
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

    layers = read_export(_chunks(export, 700), expected=diff_ids)

    assert [layer.diff_id for layer in layers] == diff_ids
    assert layers[0][1] == _single_layer(BASE_LAYER)
    assert layers[1][1].deleted == {"etc/hosts"}
    assert all(layer.verified for layer in layers)  # hashed after gunzip or zstd, across members and frames


def test_oci_layout_without_manifest_json_follows_the_index_to_the_exported_manifest() -> None:
    diff_ids = [_digest(BASE_LAYER), _digest(TOP_LAYER)]
    export = _oci_export([BASE_LAYER, TOP_LAYER], diff_ids, manifest_json=False, nested_index=True)

    layers = read_export([export])

    assert [layer.diff_id for layer in layers] == diff_ids
    assert layers[1][1].deleted == {"etc/hosts"}


def test_oci_layout_lists_a_repeated_layer_twice() -> None:
    diff_ids = [_digest(BASE_LAYER), _digest(TOP_LAYER), _digest(BASE_LAYER)]
    export = _oci_export([BASE_LAYER, TOP_LAYER, BASE_LAYER], diff_ids)

    layers = read_export([export])

    assert [layer.diff_id for layer in layers] == diff_ids
    assert layers[2][1] == layers[0][1]


def test_legacy_layout_resolves_a_symlinked_duplicate_layer() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER, TOP_LAYER, BASE_LAYER], links={2: 0})

    layers = read_export([export])

    assert [layer.diff_id for layer in layers] == diff_ids
    assert layers[2][1] == layers[0][1]
    assert len(layers[2][1].entries) == 3


def test_an_empty_layer_tar() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER, _tar(), bytes(1024)])

    layers = read_export([export])

    assert [layer.diff_id for layer in layers] == diff_ids
    assert layers[1][1] == LayerListing(()) == layers[2][1]


def test_a_large_member_that_is_no_layer_is_skipped() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER])
    header, data = _member("junk.bin", data=b"junk" * (5 << 20) + b"!")
    junk = header.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)

    layers = read_export([junk, export])

    assert [layer.diff_id for layer in layers] == diff_ids


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

    assert [len(layer.listing.entries) for layer in layers] == [3, 5000, 1]
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


# Hostile exports. Each ends well under a second, with an ExportFormatError or a result.


def _read_within(seconds: float, chunks: Iterable[bytes], **options: Any) -> list[ExportedLayer]:
    """read_export in a thread; the test fails when it still runs after `seconds`: a hostile stream
    must not make the reader spin (it would ignore a cancel meanwhile)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(read_export(chunks, **options))
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"read_export still runs after {seconds} s")
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def _pax_record(key: str, value: str) -> bytes:
    """One pax record, `<length> <key>=<value>` and a newline, its length counting itself."""
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _raw(header: bytes | bytearray, data: bytes = b"") -> bytes:
    """A member as a tar holds it: its header block, its data, padding to a whole block."""
    return bytes(header) + data + bytes(-len(data) % 512)


def _header_block(name: str, data: bytes = b"", **fields: Any) -> bytearray:
    return bytearray(_member(name, data=data, **fields)[0].tobuf(tarfile.USTAR_FORMAT))


def _pax(records: bytes, kind: bytes = tarfile.XHDTYPE) -> bytes:
    """A pax extended header (`x`, or `g` for a global one) holding these records."""
    info = tarfile.TarInfo("PaxHeader")
    info.type = kind
    info.size = len(records)
    return _raw(info.tobuf(tarfile.USTAR_FORMAT), records)


def _base256(value: int, width: int) -> bytes:
    """A GNU base-256 number field: 0x80 then the value, or two's complement from 0xff when negative."""
    if value < 0:
        return (256**width + value).to_bytes(width, "big")
    return b"\x80" + value.to_bytes(width - 1, "big")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("size", "-1024", id="size-negative-spun"),
        pytest.param("size", str(-(10**9)), id="size-very-negative-index-error"),
        pytest.param("size", str(2**63), id="size-2**63"),
        pytest.param("uid", "-1", id="uid-negative"),
        pytest.param("uid", str(2**32), id="uid-2**32"),
        pytest.param("gid", str(2**40), id="gid-2**40"),
        pytest.param("GNU.sparse.realsize", "-5", id="realsize-negative"),
        pytest.param("GNU.sparse.size", str(2**64), id="sparse-size-2**64"),
    ],
)
def test_pax_numbers_out_of_range_are_refused(key: str, value: str) -> None:
    layer = _pax(_pax_record(key, value)) + _raw(_header_block("f", b"abc"), b"abc") + bytes(1024)
    export, _ = _legacy_export([layer])

    with pytest.raises(ExportFormatError, match="out of range"):
        _read_within(1, [export])


@pytest.mark.parametrize(
    ("offset", "width", "value"),
    [
        pytest.param(100, 8, 2**40, id="mode-2**40"),
        pytest.param(108, 8, -1, id="uid-negative"),
        pytest.param(116, 8, 2**32, id="gid-2**32"),
        pytest.param(124, 12, -512, id="size-negative"),
        pytest.param(124, 12, 2**63, id="size-2**63"),
    ],
)
def test_base_256_numbers_out_of_range_are_refused(offset: int, width: int, value: int) -> None:
    header = _header_block("f")
    header[offset : offset + width] = _base256(value, width)
    export, _ = _legacy_export([_with_checksum(header) + bytes(1024)])

    with pytest.raises(ExportFormatError, match="out of range"):
        _read_within(1, [export])


def test_a_gnu_sparse_size_out_of_range_is_refused() -> None:
    header = bytearray(_member("sparse", tarfile.GNUTYPE_SPARSE, data=b"d" * 600)[0].tobuf(tarfile.GNU_FORMAT))
    header[483:495] = _base256(-1, 12)
    export, _ = _legacy_export([_with_checksum(header) + b"d" * 600 + bytes(424) + bytes(1024)])

    with pytest.raises(ExportFormatError, match="sparse file's size out of range"):
        _read_within(1, [export])


def _oci_with_indexes(indexes: dict[str, list[str]], top: list[str]) -> tuple[bytes, list[str]]:
    """An OCI export of a one-layer image whose index.json names the documents `top`. `indexes`
    are image indexes stored under made-up digests, so they may name each other or themselves;
    `image` names the image's manifest."""
    diff_ids = [_digest(BASE_LAYER)]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"config": {"digest": _digest(config)}, "layers": [{"digest": diff_ids[0]}]}).encode()
    names = {"image": _digest(manifest), **{name: _digest(name.encode()) for name in indexes}}

    def index(entries: list[str]) -> bytes:
        return json.dumps({"schemaVersion": 2, "manifests": [{"digest": names[entry]} for entry in entries]}).encode()

    blobs = {diff_ids[0]: BASE_LAYER, _digest(config): config, names["image"]: manifest}
    blobs.update({names[name]: index(entries) for name, entries in indexes.items()})
    members = [_member(f"blobs/sha256/{digest[7:]}", data=data) for digest, data in blobs.items()]
    return _tar(*members, _member("index.json", data=index(top))), diff_ids


def test_an_index_that_names_itself_is_read_once() -> None:
    export, _ = _oci_with_indexes({"loop": ["loop"] * 20}, ["loop"])

    with pytest.raises(ExportFormatError, match="names no image manifest"):
        _read_within(1, [export])


def test_cycles_and_diamonds_of_indexes_still_lead_to_the_image() -> None:
    indexes = {"a": ["b", "c"] * 10, "b": ["d"] * 20 + ["a"], "c": ["d"] * 20 + ["c"], "d": ["a", "b", "c", "d"] * 5}
    export, diff_ids = _oci_with_indexes(indexes, ["a", "image"])

    layers = _read_within(1, [export])

    assert [layer.diff_id for layer in layers] == diff_ids
    assert layers[0].verified


def test_indexes_naming_too_many_documents_are_refused() -> None:
    fan = {f"index-{number}": [] for number in range(100)}
    export, _ = _oci_with_indexes({"top": list(fan), **fan}, ["top", "image"])

    with pytest.raises(ExportFormatError, match="more than 64 documents"):
        _read_within(1, [export])


def test_cancel_is_checked_while_following_indexes() -> None:
    export, _ = _oci_with_indexes({"loop": ["loop"] * 20}, ["loop"])
    cancel = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield export
        cancel.set()  # the stream is read: only the walk through the indexes is left

    with pytest.raises(ReadCancelled):
        _read_within(1, chunks(), cancel=cancel)


def test_global_pax_headers_beyond_64_kib_are_refused() -> None:
    filler = b"".join(_pax_record(f"comment.{index}", "x" * 1000) for index in range(40))
    layer = _pax(filler, tarfile.XGLTYPE) + _pax(filler, tarfile.XGLTYPE) + _raw(_header_block("f")) + bytes(1024)

    with pytest.raises(ExportFormatError, match=r"global pax headers .* too large"):
        _read_within(1, [_legacy_export([layer])[0]])


def _best_of_three(export: bytes) -> float:
    """The least CPU time of this thread that reading the export took in three runs: the other
    processes and threads of a loaded machine (CI's pytest workers, daemons) do not count."""
    times = []
    for _ in range(3):
        started = time.thread_time()
        read_export([export])
        times.append(time.thread_time() - started)
    return min(times)


def test_a_global_pax_header_costs_nothing_per_member() -> None:
    """A global header of 6000 records before 10,000 members: the members take no longer to read
    than without it (merging the records into each member's took four times as long)."""
    records = _pax_record("uid", "7") + b"".join(_pax_record(f"k{index}", "") for index in range(6000))
    assert len(records) < 64 << 10
    members = _raw(_header_block("f")) * 10_000 + bytes(1024)
    plain, _ = _legacy_export([members])
    with_global, _ = _legacy_export([_pax(records, tarfile.XGLTYPE) + members])

    [exported] = read_export([with_global])

    assert exported.listing.entries == (LayerEntry("f", EntryType.FILE, 0, 0o644, 7, 0),)
    seconds, plain_seconds = _best_of_three(with_global), _best_of_three(plain)
    assert seconds < 2 * plain_seconds


def test_non_layer_members_share_one_memory_budget() -> None:
    """30 members of 4 MiB that are no layer come before an honest export: 64 MiB of them are
    kept, then nothing more, not even the manifest."""
    junk = b"{" * (4 << 20)
    export, _ = _legacy_export([BASE_LAYER])

    def chunks() -> Iterator[bytes]:
        for number in range(30):
            info = _member(f"junk-{number}.json")[0]
            info.size = len(junk)
            yield info.tobuf(tarfile.PAX_FORMAT)
            yield junk
        yield export

    tracemalloc.start()
    try:
        with pytest.raises(ExportFormatError, match=r"manifest\.json' is too large"):
            _read_within(2, chunks())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 80 << 20


def test_a_non_layer_member_over_8_mib_is_not_kept() -> None:
    export, _ = _legacy_export([BASE_LAYER], config_fields={"padding": " " * (9 << 20)})

    with pytest.raises(ExportFormatError, match=r"\.json' is too large"):
        read_export([export])


def test_layers_the_image_does_not_have_are_dropped_as_they_end() -> None:
    """10 layer tars of 300 entries each that no manifest names: with the image's diff ids given,
    no more than one of their listings is held at a time (all ten take about 0.8 MiB)."""
    entries = b"".join(_raw(_header_block(f"{'directory/' * 8}file-{index}")) for index in range(300))
    strays = b"".join(
        _raw(_header_block(f"stray-{number}/layer.tar", layer), layer)
        for number in range(10)
        for layer in [entries + _raw(_header_block(f"stray-{number}")) + bytes(1024)]
    )
    export, diff_ids = _legacy_export([BASE_LAYER])

    reports: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        layers = read_export([strays, export], expected=diff_ids, on_progress=lambda *report: reports.append(report))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [(layer.diff_id, layer.verified) for layer in layers] == [(diff_ids[0], True)]
    assert peak < 512 << 10
    assert max(layers_done for layers_done, _ in reports) == 1


FORGED_TOP_LAYER = _tar(  # TOP_LAYER without its whiteout: it would hide that etc/hosts is deleted
    _member("usr/bin/", tarfile.DIRTYPE),
    _member("usr/bin/tool", data=b"#!/bin/bash\n"),
)


def test_an_honest_export_is_verified_with_or_without_the_image_layers() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER, TOP_LAYER])

    unchecked = read_export([export])
    checked = read_export([export], expected=diff_ids)

    assert unchecked == checked
    assert [(layer.diff_id, layer.verified) for layer in checked] == [(diff_ids[0], True), (diff_ids[1], True)]


def test_a_layer_that_does_not_hash_to_its_diff_id_is_refused() -> None:
    claimed = [_digest(BASE_LAYER), _digest(TOP_LAYER)]
    export, _ = _legacy_export([BASE_LAYER, FORGED_TOP_LAYER], claimed=claimed)

    with pytest.raises(ExportFormatError, match=f"layer 2 .*{re.escape(claimed[1])}.* does not match its diff id"):
        read_export([export], expected=claimed)
    unchecked = read_export([export])
    assert [layer.verified for layer in unchecked] == [True, False]
    assert unchecked[1].listing.deleted == frozenset()


def test_a_truncated_gzip_layer_ending_at_a_member_boundary_is_refused() -> None:
    """The first of two gzip members is a whole tar of the first entries: only the digest tells."""
    truncated = gzip.compress(BASE_LAYER[:1024])
    export, _ = _legacy_export([truncated], claimed=[_digest(BASE_LAYER)])

    with pytest.raises(ExportFormatError, match=r"layer 1 .* does not match"):
        read_export([export], expected=[_digest(BASE_LAYER)])


def test_an_export_of_other_layers_than_the_image_has_is_refused() -> None:
    export, diff_ids = _legacy_export([BASE_LAYER, TOP_LAYER])

    with pytest.raises(ExportFormatError, match="layer 2 of the export"):
        read_export([export], expected=[diff_ids[0], _digest(b"another layer")])
    with pytest.raises(ExportFormatError, match="the export has 2 layers, the image 1"):
        read_export([export], expected=diff_ids[:1])


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(
            _tar(_member("c", data=b"[" * 100_000), _member("manifest.json", data=b'[{"Config": "c", "Layers": []}]')),
            id="json-recursion",
        ),
        pytest.param(
            _tar(
                _member("c", data=b"\xff\xfe\xd8\x00"),
                _member("manifest.json", data=b'[{"Config": "c", "Layers": []}]'),
            ),
            id="json-not-unicode",
        ),
        pytest.param(_tar(_member("x", data=zstandard.compress(BASE_LAYER)[:40] + bytes(600))), id="zstd-corrupt"),
        pytest.param(_tar(_member("x", data=gzip.compress(BASE_LAYER) + b"\x1f\x8bjunk")), id="gzip-junk-after"),
        pytest.param(
            _legacy_export([_pax(b"99999999999999999999999999 path=x\n") + bytes(1024)])[0], id="pax-length-digits"
        ),
        pytest.param(_legacy_export([_pax(b"0 path=x\n") + bytes(1024)])[0], id="pax-length-zero"),
        pytest.param(_legacy_export([_pax(b"-9 path=x\n") + bytes(1024)])[0], id="pax-length-negative"),
    ],
)
def test_failures_inside_a_sink_are_export_format_errors(stream: bytes) -> None:
    with pytest.raises(ExportFormatError):
        _read_within(1, [stream])


def test_a_header_summed_as_signed_bytes_is_accepted() -> None:
    """Old writers sum the header's bytes as signed chars: a name with bytes above 127 then gives
    another checksum, which tarfile accepts too."""
    header = _header_block("caf\u00e9", b"x")
    header[148:156] = b" " * 8
    signed = sum(byte - 256 if byte > 127 else byte for byte in header)
    header[148:156] = b"%06o\0 " % signed

    listing = _single_layer(_raw(header, b"x") + bytes(1024))

    assert [(entry.path, entry.size) for entry in listing.entries] == [("caf\u00e9", 1)]


def test_bytes_after_a_layers_end_marker_are_hashed_but_not_read() -> None:
    layer = BASE_LAYER + b"trailing bytes that are no tar header".ljust(600, b"!")
    export, diff_ids = _legacy_export([layer])

    [exported] = read_export([export], expected=diff_ids)

    assert exported.listing == _single_layer(BASE_LAYER)
    assert exported.verified


def test_a_later_member_replaces_an_earlier_one_of_the_same_name() -> None:
    """As extracting the tar would: a symlink `manifest.json` to nowhere, then the real one."""
    export, diff_ids = _legacy_export([BASE_LAYER])
    stale = _member("manifest.json", tarfile.SYMTYPE, linkname="nowhere")[0].tobuf(tarfile.PAX_FORMAT)

    layers = read_export([stale, export])

    assert [layer.diff_id for layer in layers] == diff_ids


@pytest.mark.parametrize(("depth", "found"), [(4, True), (5, False)])
def test_indexes_are_followed_four_deep(depth: int, found: bool) -> None:
    """index.json names an index that names an index ... `depth` of them, the last naming the image."""
    chain = {f"index-{level}": [f"index-{level + 1}" if level < depth else "image"] for level in range(1, depth + 1)}
    export, diff_ids = _oci_with_indexes(chain, ["index-1"])

    if found:
        assert [layer.diff_id for layer in read_export([export])] == diff_ids
    else:
        with pytest.raises(ExportFormatError, match="names no image manifest"):
            read_export([export])


def test_cancel_is_checked_between_gzip_members() -> None:
    """100,000 empty gzip members give no output at all: only a check per member sees the event."""
    export, _ = _legacy_export([gzip.compress(b"") * 100_000])
    cancel = _SetOnSecondCheck()

    with pytest.raises(ReadCancelled):
        _read_within(1, [export], cancel=cancel)
    assert cancel.checks == 2


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


@pytest.mark.parametrize("image", FIXTURE_IMAGES)
def test_fixture_images_give_their_diff_ids_and_what_tarfile_reads(api: docker.APIClient, image: str) -> None:
    export = b"".join(api.get_image(image))

    layers = read_export(_chunks(export, 65536))

    assert [layer.diff_id for layer in layers] == api.inspect_image(image)["RootFS"]["Layers"]
    with tarfile.open(fileobj=io.BytesIO(export)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        for path, (_, listing, _) in zip(manifest[0]["Layers"], layers, strict=True):
            with tarfile.open(fileobj=archive.extractfile(path)) as layer:
                expected = _tarfile_listing(layer)
            assert LayerListing(tuple(sorted(listing.entries)), listing.deleted, listing.opaque) == expected


def test_waste_image_changes_deletes_and_hides(api: docker.APIClient) -> None:
    layers = read_export(api.get_image(WASTE_IMAGE, chunk_size=1 << 20))

    assert [layer.diff_id for layer in layers] == api.inspect_image(WASTE_IMAGE)["RootFS"]["Layers"]
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


@pytest.mark.parametrize("image", FIXTURE_IMAGES)
def test_fixture_exports_hash_to_the_images_diff_ids(api: docker.APIClient, image: str) -> None:
    diff_ids = api.inspect_image(image)["RootFS"]["Layers"]

    layers = read_export(api.get_image(image, chunk_size=65536), expected=diff_ids)

    assert [(layer.diff_id, layer.verified) for layer in layers] == [(diff_id, True) for diff_id in diff_ids]
