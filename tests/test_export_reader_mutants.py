"""The export reader on hand-made tar headers: pre-POSIX ones, GNU and ustar magic, pax headers
global and per member, and what a broken export says. Written for the mutants
scripts/mutation.sh finds; each test states what a caller of `read_export` gets."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from dockerscope.service.export_reader import ExportFormatError, read_export
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing

USTAR = b"ustar\x0000"
GNU = b"ustar  \x00"


def header(
    name: bytes,
    flag: bytes = b"0",
    size: int = 0,
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    link: bytes = b"",
    magic: bytes = USTAR,
    prefix: bytes = b"",
    signed: bool = False,
) -> bytes:
    """One tar header block. `magic=b""` makes a pre-POSIX (v7) header; `signed` sums the checksum
    over signed bytes, as some old writers did."""
    block = bytearray(512)
    block[: len(name)] = name
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"%07o\0" % uid
    block[116:124] = b"%07o\0" % gid
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"%011o\0" % 0
    block[156:157] = flag
    block[157 : 157 + len(link)] = link
    block[257 : 257 + len(magic)] = magic
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b" " * 8
    checksum = sum(byte - 256 if signed and byte > 127 else byte for byte in block)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def member(head: bytes, data: bytes = b"") -> bytes:
    return head + data + bytes(-len(data) % 512)


def pax(records: dict[str, str], flag: bytes = b"x") -> bytes:
    """A pax extended header (`g`: a global one) with these records."""
    body = b""
    for key, value in records.items():
        text = f" {key}={value}\n".encode()
        length = len(text) + 1
        while len(str(length)) + len(text) != length:
            length += 1
        body += str(length).encode() + text
    return member(header(b"PaxHeader", flag, len(body)), body)


def tar(*members: bytes) -> bytes:
    return b"".join(members) + bytes(1024)


def export(*layers: bytes, diff_ids: list[str] | None = None) -> bytes:
    """`docker save` output in the legacy layout, holding these layer tars; the config names their
    digests as diff ids, or `diff_ids`."""
    if diff_ids is None:
        diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    files = {"config.json": json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()}
    files.update({f"{index}/layer.tar": layer for index, layer in enumerate(layers)})
    manifest = [{"Config": "config.json", "Layers": [f"{index}/layer.tar" for index in range(len(layers))]}]
    files["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def listing(layer: bytes) -> LayerListing:
    [exported] = read_export([export(layer)])
    assert exported.verified
    return exported.listing


def entries(layer: bytes) -> dict[str, LayerEntry]:
    return {entry.path: entry for entry in listing(layer).entries}


def test_pre_posix_headers_mark_directories_by_a_trailing_slash() -> None:
    """A v7 header has no magic and a NUL type flag; bytes 345 on are no prefix there."""
    layer = tar(
        member(header(b"etc/", b"\0", mode=0o755, magic=b"")),
        member(header(b"etc/motd", b"\0", 5, magic=b"", prefix=b"junk"), b"hello"),
        member(header("etc/café".encode(), b"\0", 3, magic=b"", signed=True), b"abc"),
    )
    assert entries(layer) == {
        "etc": LayerEntry("etc", EntryType.DIR, 0, 0o755, 0, 0),
        "etc/motd": LayerEntry("etc/motd", EntryType.FILE, 5, 0o644, 0, 0),
        "etc/café": LayerEntry("etc/café", EntryType.FILE, 3, 0o644, 0, 0),
    }


def test_only_ustar_magic_makes_bytes_345_on_a_prefix() -> None:
    """Old GNU tar keeps the access time where ustar keeps the prefix."""
    layer = tar(
        member(header(b"run", b"0", 1, magic=GNU, prefix=b"14530201233\0"), b"x"),
        member(header(b"bin", b"0", 1, prefix=b"usr"), b"y"),
        member(header(b"var/", b"0", 0)),
    )
    assert sorted(entries(layer).items()) == [
        ("run", LayerEntry("run", EntryType.FILE, 1, 0o644, 0, 0)),
        ("usr/bin", LayerEntry("usr/bin", EntryType.FILE, 1, 0o644, 0, 0)),
        ("var", LayerEntry("var", EntryType.FILE, 0, 0o644, 0, 0)),
    ]


def test_a_members_own_pax_header_wins_over_the_global_one_for_that_member_only() -> None:
    layer = tar(
        pax({"uid": "1000", "gid": "1001"}, b"g"),
        member(header(b"a", size=1), b"a"),
        pax({"uid": "5"}),
        member(header(b"b", size=1), b"b"),
        member(header(b"c", size=1), b"c"),
    )
    owners = {path: (entry.uid, entry.gid) for path, entry in entries(layer).items()}
    assert owners == {"a": (1000, 1001), "b": (5, 1001), "c": (1000, 1001)}


def refused(data: bytes, message: str) -> None:
    """`read_export` refuses the stream with exactly this message."""
    with pytest.raises(ExportFormatError) as caught:
        read_export([data])
    assert str(caught.value) == message


def base256(value: int, width: int) -> bytes:
    if value < 0:
        return (256**width + value).to_bytes(width, "big")
    return b"\x80" + value.to_bytes(width - 1, "big")


def with_field(block: bytes, start: int, value: bytes) -> bytes:
    """`block` with bytes from `start` replaced and its checksum made right again."""
    changed = bytearray(block)
    changed[start : start + len(value)] = value
    changed[148:156] = b" " * 8
    changed[148:156] = b"%06o\0 " % sum(changed)
    return bytes(changed)


def test_numbers_in_base_256_and_octal_without_leading_zeros() -> None:
    """A base-256 gid makes the reader parse every number field the slow way: octal text that
    starts with 1 or is blank must still read as octal."""
    block = header(b"f", size=1)
    block = with_field(block, 116, base256(70_000, 8))
    block = with_field(block, 108, b"1750 \0\0\0")
    block = with_field(block, 100, b"       \0")
    assert entries(tar(member(block, b"x"))) == {"f": LayerEntry("f", EntryType.FILE, 1, 0, 0o1750, 70_000)}


@pytest.mark.parametrize(
    ("start", "value", "message"),
    [
        (108, base256(-(256**7) + 4096, 8), "a uid out of range in a tar header"),
        (124, base256(-(256**11) + 256**10 + 5, 12), "a size out of range in a tar header"),
        (116, b"12x4\0\0\0\0", "bad number in a tar header"),
    ],
)
def test_negative_base_256_numbers_and_bad_digits_are_refused(start: int, value: bytes, message: str) -> None:
    # A base-256 number in another id field sends every field down the slow path.
    block = with_field(header(b"f"), 108 if start == 116 else 116, base256(1, 8))
    refused(export(tar(member(with_field(block, start, value)))), message)


def test_pax_records_read_in_small_pieces() -> None:
    """A pax header split across many chunks is read whole; `=` may appear in a value, and uid 0
    in a record overrides the header's."""
    long_name = "deep/" * 30 + "a=b"
    layer = tar(pax({"path": long_name, "uid": "0"}), member(header(b"short", size=1, uid=5), b"x"))
    data = export(layer)
    [exported] = read_export(data[index : index + 7] for index in range(0, len(data), 7))
    assert exported.listing.entries == (LayerEntry(long_name, EntryType.FILE, 1, 0o644, 0, 0),)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (b"0000000000000000000000031 path=x\n", "bad pax header record"),
        (b"99 path=x\n", "bad pax header record"),
        (b"x path=y\n", "bad pax header record"),
        (b"path=x\n", "bad pax header record"),
        (b"11 uid=1x1\n", "bad number in a pax header"),
    ],
)
def test_broken_pax_records_are_refused(record: bytes, message: str) -> None:
    layer = tar(member(header(b"PaxHeader", b"x", len(record)), record), member(header(b"f")))
    refused(export(layer), message)


def test_symlink_targets_that_are_not_utf8_keep_their_bytes() -> None:
    layer = tar(member(header(b"link", b"2", link=b"tar\xffget")))
    assert entries(layer)["link"].link == "tar\udcffget"


def test_a_gzip_layer_that_inflates_far_beyond_its_size() -> None:
    """8 MiB of zeros gzip to a few KiB: the reader inflates them in bounded steps, none lost."""
    layer = tar(member(header(b"zeros", size=8 << 20), bytes(8 << 20)))
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    data = export(gzip.compress(layer), diff_ids=[diff_id])
    [exported] = read_export([data])
    assert exported.verified
    assert exported.listing.entries == (LayerEntry("zeros", EntryType.FILE, 8 << 20, 0o644, 0, 0),)
