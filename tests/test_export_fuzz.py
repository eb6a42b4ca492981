"""Property tests on the export reader: whatever bytes arrive in place of an image export (flipped,
inserted, deleted or cut bytes, made-up tar headers with valid checksums, pax records of any key
and value, in the outer tar or inside a layer, compressed or not), the reader ends quickly and
either raises ExportFormatError or returns layers that hash to the diff ids it was given."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import tarfile
import threading
from typing import Any

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockerscope.service.export_reader import ExportFormatError, read_export
from dockerscope.service.layer_files import ReadCancelled
from test_export_reader import (
    BASE_LAYER,
    TOP_LAYER,
    _base256,
    _chunks,
    _digest,
    _legacy_export,
    _member,
    _oci_export,
    _pax,
    _tar,
    _with_checksum,
)

FUZZ = settings(max_examples=400, deadline=1000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

LONG_NAME_LAYER = _tar(
    _member("usr/" + "long-directory/" * 10 + "file", data=b"x" * 700, uid=10_000_000),
    _member("usr/link", tarfile.SYMTYPE, linkname="/" + "target/" * 20),
    _member("usr/hard", tarfile.LNKTYPE, linkname="usr/" + "long-directory/" * 10 + "file"),
    tar_format=tarfile.GNU_FORMAT,
)
LAYERS = [BASE_LAYER, TOP_LAYER, LONG_NAME_LAYER]
DIFF_IDS = [_digest(layer) for layer in LAYERS]
SEEDS = {
    "legacy": _legacy_export(LAYERS, links={2: 0})[0],
    "oci-gzip": _oci_export([gzip.compress(layer) for layer in LAYERS], DIFF_IDS),
    "oci-zstd-index": _oci_export(
        [zstandard.compress(layer) for layer in LAYERS], DIFF_IDS, manifest_json=False, nested_index=True
    ),
}
PAX_KEYS = [b"path", b"linkpath", b"uid", b"gid", b"size", b"GNU.sparse.realsize", b"GNU.sparse.size", b"mtime"]
TYPE_FLAGS = b"0125xgLKS734\0"
NAMES = [b"a", b"manifest.json", b"index.json", b"x/layer.tar"]


def _numbers(width: int) -> st.SearchStrategy[bytes]:
    """What a numeric header field of this width may hold: octal text, signed or not, GNU
    base-256 of any value, or any bytes."""
    octal = st.integers(-(8 ** (width - 2)), 8 ** (width - 1) - 1).map(lambda value: b"%o" % value)
    base256 = st.integers(-(256 ** (width - 1)), 256 ** (width - 1) - 1).map(lambda value: _base256(value, width))
    small = st.integers(0, 4096).map(lambda value: b"%0*o\0" % (width - 1, value))
    return st.one_of(small, octal, base256, st.binary(min_size=width, max_size=width)).map(
        lambda field: field[:width].ljust(width, b"\0")
    )


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    """A tar header block of made-up fields, its checksum valid unless drawn otherwise."""
    block = bytearray(512)
    name = draw(st.one_of(st.sampled_from(NAMES), st.binary(max_size=100)))
    block[: len(name)] = name
    for offset, width in ((100, 8), (108, 8), (116, 8), (124, 12), (483, 12)):
        block[offset : offset + width] = draw(_numbers(width))
    block[156] = draw(st.sampled_from(TYPE_FLAGS))
    block[257:265] = draw(st.sampled_from([b"ustar\x0000", b"ustar  \0", bytes(8)]))
    prefix = draw(st.binary(max_size=155))
    block[345 : 345 + len(prefix)] = prefix
    block[482] = draw(st.integers(0, 1))
    block[504] = draw(st.integers(0, 1))
    return _with_checksum(block) if draw(st.booleans()) else bytes(block)


# Numbers at and beyond the bounds the reader must hold.
EDGE_NUMBERS = [-1, -512, -1024, -(10**9), -(2**63), 0, 7, 511, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 10**30]


@st.composite
def _pax_members(draw: st.DrawFn) -> bytes:
    """A pax header, local or global, of records with any key and value, their lengths mostly right."""
    records = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.one_of(st.sampled_from(PAX_KEYS), st.sampled_from(PAX_KEYS), st.binary(max_size=12)))
        value = draw(
            st.one_of(
                st.sampled_from(EDGE_NUMBERS).map(lambda value: str(value).encode()),
                st.integers(-(2**70), 2**70).map(lambda value: str(value).encode()),
                st.binary(max_size=40),
                st.just(b"9" * 5000),
            )
        )
        body = b" " + key + b"=" + value + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
        if draw(st.integers(0, 3)) == 0:
            length = draw(st.integers(-5, 10**6))
        records.append(str(length).encode() + body)
    kind = draw(st.sampled_from([tarfile.XHDTYPE, tarfile.XHDTYPE, tarfile.XGLTYPE]))
    return _pax(b"".join(records), kind)


@functools.cache
def _member_starts(data: bytes, base: int = 0, holder: int | None = None) -> list[tuple[int, int | None]]:
    """Where each member's header starts in an uncompressed tar and in the tars it holds, and
    where its end-of-archive marker starts: the offsets a made-up member does the most harm at.
    Each comes with the offset of the header of the member that holds it (None at the top)."""
    starts: list[tuple[int, int | None]] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for info in archive:
            starts.append((base + info.offset, holder))
            if info.isfile() and info.offset_data - info.offset == 512:
                with contextlib.suppress(tarfile.TarError):
                    inner = data[info.offset_data : info.offset_data + info.size]
                    starts += _member_starts(inner, base + info.offset_data, base + info.offset)
        starts.append((base + archive.offset, holder))
    return starts


def _grow(buffer: bytearray, header: int, extra: int) -> None:
    """Add `extra` bytes to the size in the ustar header at `header`, its checksum made right again."""
    block = bytearray(buffer[header : header + 512])
    block[124:136] = b"%011o\0" % (int(block[124:135], 8) + extra)
    buffer[header : header + 512] = _with_checksum(block)


_MEMBER_OPERATIONS = st.one_of(
    st.tuples(st.just("replace-header"), st.integers(0, 1 << 12), _headers()),
    st.tuples(st.just("insert-member"), st.integers(0, 1 << 12), st.one_of(_headers(), _pax_members())),
)
_OPERATIONS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 700)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20)),
    _MEMBER_OPERATIONS,
    _MEMBER_OPERATIONS,
)


def _mutate(data: bytes, operations: list[tuple[Any, ...]]) -> bytes:
    """Apply the operations: those on members at the member starts (taken modulo their number) of
    the original data, from the last one back so that each offset still holds, the size of the
    member holding an inserted one grown to match; then the others at positions taken modulo the
    data's length."""
    buffer = bytearray(data)
    starts = _member_starts(data)
    on_members = [operation for operation in operations if operation[0] in ("replace-header", "insert-member")]
    for kind, index, block in sorted(on_members, key=lambda operation: -starts[operation[1] % len(starts)][0]):
        at, holder = starts[index % len(starts)]
        if kind == "replace-header":
            buffer[at : at + 512] = block
        else:
            buffer[at:at] = block
            if holder is not None:
                _grow(buffer, holder, len(block))
    for operation in operations:
        kind, at = operation[0], operation[1] % (len(buffer) + 1)
        if kind == "flip" and buffer:
            buffer[at % len(buffer)] ^= operation[2]
        elif kind == "insert":
            buffer[at:at] = operation[2]
        elif kind == "delete":
            del buffer[at : at + operation[2]]
        elif kind == "truncate":
            del buffer[at:]
    return bytes(buffer)


def _read(data: bytes, chunk_size: int, expected: bool) -> None:
    """Read the stream: ExportFormatError is fine. Layers returned hold only numbers in range and,
    when the image's diff ids were given, hash to them. Any other error fails the test."""
    try:
        layers = read_export(
            _chunks(data, chunk_size), cancel=threading.Event(), expected=DIFF_IDS if expected else None
        )
    except (ExportFormatError, ReadCancelled):
        return
    for layer in layers:
        for entry in layer.listing.entries:
            assert 0 <= entry.size < 2**63 and 0 <= entry.uid < 2**32 and 0 <= entry.gid < 2**32, entry
    if expected:
        assert [(layer.diff_id, layer.verified) for layer in layers] == [(diff_id, True) for diff_id in DIFF_IDS]


CHUNK_SIZES = st.sampled_from([1 << 30, 511, 4096])


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.lists(_OPERATIONS, min_size=1, max_size=6), CHUNK_SIZES, st.booleans())
def test_a_mutated_export_gives_an_export_format_error_or_verified_layers(
    seed: str, operations: list[tuple[Any, ...]], chunk_size: int, expected: bool
) -> None:
    _read(_mutate(SEEDS[seed], operations), chunk_size, expected)


@settings(FUZZ, max_examples=250)
@given(
    st.lists(st.lists(_MEMBER_OPERATIONS, max_size=3), min_size=3, max_size=3),
    st.sampled_from(["none", "gzip", "zstd"]),
    CHUNK_SIZES,
    st.booleans(),
)
def test_mutated_layers_inside_an_honest_archive_give_an_error_or_verified_layers(
    layer_operations: list[list[tuple[Any, ...]]], compression: str, chunk_size: int, expected: bool
) -> None:
    """The outer archive is well formed; the layers inside it (compressed after the change) hold
    made-up headers and pax records, in place of their own or added between them."""
    layers = [_mutate(layer, operations) for layer, operations in zip(LAYERS, layer_operations, strict=True)]
    compress = {"none": bytes, "gzip": gzip.compress, "zstd": zstandard.compress}[compression]
    export = _oci_export([compress(layer) for layer in layers], DIFF_IDS)
    _read(export, chunk_size, expected)


@FUZZ
@given(st.binary(max_size=4096), CHUNK_SIZES)
def test_any_bytes_give_an_export_format_error(data: bytes, chunk_size: int) -> None:
    _read(data, chunk_size, expected=False)
