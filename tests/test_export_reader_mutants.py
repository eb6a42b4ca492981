"""The export reader on hand-made tar headers: pre-POSIX ones, GNU and ustar magic, pax headers
global and per member, and what a broken export says. Written for the mutants
scripts/mutation.sh finds; each test states what a caller of `read_export` gets."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
import tracemalloc

import pytest
import zstandard

from dockerscope.service.export_reader import ExportFormatError, read_export
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing, ReadCancelled

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
    return outer(files)


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
        (108, b"\x80\x01" + bytes(5) + b"\x05", "a uid out of range in a tar header"),
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


# The fast path reads the four number fields as plain octal text and reports a sign as "a negative
# number"; any other form goes the slow way, which reports "out of range" for the same field.
FIELDS = {"mode": 100, "uid": 108, "gid": 116, "size": 124}


def blank_numbers(block: bytes) -> bytes:
    """`block` with all four number fields empty (all NULs), which reads as 0."""
    for start, width in ((100, 8), (108, 8), (116, 8), (124, 12)):
        block = with_field(block, start, bytes(width))
    return block


@pytest.mark.parametrize("field", FIELDS)
def test_a_sign_in_a_plain_octal_field_is_a_negative_number(field: str) -> None:
    block = with_field(blank_numbers(header(b"f")), FIELDS[field], b"-1")
    refused(export(tar(member(block))), "a negative number in a tar header")


@pytest.mark.parametrize("field", FIELDS)
def test_a_sign_before_junk_is_a_bad_number(field: str) -> None:
    block = with_field(blank_numbers(header(b"f")), FIELDS[field], b"-1X")
    refused(export(tar(member(block))), "bad number in a tar header")


@pytest.mark.parametrize(("field", "what"), [("mode", "a mode"), ("gid", "a gid"), ("size", "a size")])
def test_a_negative_base_256_number_is_out_of_range(field: str, what: str) -> None:
    block = with_field(blank_numbers(header(b"f")), FIELDS[field], base256(-1, 12 if field == "size" else 8))
    refused(export(tar(member(block))), f"{what} out of range in a tar header")


def test_all_number_fields_zero_and_seven_digit_octal() -> None:
    """Zero everywhere is a valid empty file owned by root; seven octal digits without a leading
    zero use the whole field."""
    layer = tar(
        member(blank_numbers(header(b"zero"))),
        member(header(b"full", mode=0o1234567, uid=0o7654321, gid=0o1234567, size=3), b"abc"),
    )
    assert entries(layer) == {
        "zero": LayerEntry("zero", EntryType.FILE, 0, 0, 0, 0),
        "full": LayerEntry("full", EntryType.FILE, 3, 0o4567, 0o7654321, 0o1234567),
    }


def test_a_size_of_eleven_octal_digits() -> None:
    layer = tar(member(with_field(header(b"f", size=0), 124, b"00000001000\0"), bytes(512)))
    assert entries(layer) == {"f": LayerEntry("f", EntryType.FILE, 512, 0o644, 0, 0)}


def test_a_six_digit_checksum_of_long_non_ascii_names() -> None:
    """Names of high bytes push the header's byte sum past 0o100000, all six checksum digits."""
    name, target = "é" * 50, "ü" * 50
    block = header(name.encode(), b"2", link=target.encode())
    assert int(block[148:154], 8) >= 0o100000
    assert entries(tar(member(block)))[name].link == target


def test_a_checksum_field_with_a_stray_letter_is_refused() -> None:
    block = bytearray(header(b"f"))
    block[154:156] = b"X\0"
    refused(export(tar(member(header(b"ok")), member(bytes(block)))), "bad tar header checksum")


LAYER = tar(member(header(b"f", size=1), b"x"))
LAYER_ID = "sha256:" + hashlib.sha256(LAYER).hexdigest()


def outer(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """An export holding these files, and symlinks named by `links` to their targets."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def legacy(manifest: object, config: object = None, **files: bytes) -> bytes:
    """A legacy export of LAYER at `layer.tar` with this manifest.json and config.json."""
    if config is None:
        config = {"rootfs": {"diff_ids": [LAYER_ID]}}
    stored = {"layer.tar": LAYER, "config.json": json.dumps(config).encode(), **files}
    return outer({**stored, "manifest.json": json.dumps(manifest).encode()})


GOOD = [{"Config": "config.json", "Layers": ["layer.tar"]}]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({}, "manifest.json lists no image"),
        ([], "manifest.json lists no image"),
        (["config.json"], "manifest.json lists no image"),
        ([{"Layers": ["layer.tar"]}], "unexpected Config in the export: NoneType"),
        ([{"Config": "config.json", "Layers": "layer.tar"}], "unexpected Layers in the export: str"),
        ([{"Config": "config.json", "Layers": [1]}], "unexpected Layers in the export: int"),
        ([{"Config": "config.json", "Layers": ["x"] * 4097}], "the export names 4097 layers, more than 4096"),
        ([{"Config": "absent.json", "Layers": ["layer.tar"]}], "'absent.json' is missing in the export"),
        ([{"Config": "layer.tar", "Layers": ["layer.tar"]}], "'layer.tar' is missing in the export"),
        ([{"Config": "config.json", "Layers": ["absent.tar"]}], "layer 'absent.tar' is missing in the export"),
        (
            [{"Config": "config.json", "Layers": ["config.json"]}],
            "layer 'config.json' is not a tar, gzip or zstd stream in the export",
        ),
        ([{"Config": "c" * 100, "Layers": []}], f"'{'c' * 78}… is missing in the export"),
    ],
)
def test_what_a_broken_manifest_json_says(manifest: object, message: str) -> None:
    refused(legacy(manifest), message)


def test_4096_layers_are_not_too_many() -> None:
    """The bound is inclusive: 4096 entries get past it to the next check, the layer count."""
    refused(legacy([{"Config": "config.json", "Layers": ["x"] * 4096}]), "4096 layers but 1 diff ids")


@pytest.mark.parametrize(
    ("name", "message"),
    [("a" * 77, f"'{'a' * 77}' is missing in the export"), ("a" * 78, f"'{'a' * 78}' is missing in the export")],
)
def test_paths_in_messages_are_quoted_whole_up_to_80_characters(name: str, message: str) -> None:
    refused(legacy([{"Config": name, "Layers": []}]), message)


def test_a_path_of_79_characters_is_cut_in_a_message() -> None:
    refused(legacy([{"Config": "a" * 79, "Layers": []}]), f"'{'a' * 78}… is missing in the export")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "unexpected config in the export: list"),
        ({}, "unexpected rootfs in the export: NoneType"),
        ({"rootfs": {"diff_ids": {}}}, "unexpected diff_ids in the export: dict"),
        ({"rootfs": {"diff_ids": [LAYER_ID, LAYER_ID]}}, "1 layers but 2 diff ids"),
        ({"rootfs": {"diff_ids": [7]}}, "unexpected diff_ids in the export: int"),
    ],
)
def test_what_a_broken_config_says(config: object, message: str) -> None:
    refused(legacy(GOOD, config), message)


def test_a_config_that_is_not_json() -> None:
    data = outer({"layer.tar": LAYER, "config.json": b"{oops", "manifest.json": json.dumps(GOOD).encode()})
    refused(
        data,
        "'config.json' is not JSON: 'Expecting property name enclosed in double quotes: line 1 column 2 (char 1)'",
    )


def test_an_export_without_manifest_or_index() -> None:
    refused(outer({"layer.tar": LAYER}), "the export has neither manifest.json nor index.json")


def test_a_symlink_loop_is_refused() -> None:
    data = outer({"layer.tar": LAYER}, {"manifest.json": "a", "a": "manifest.json"})
    refused(data, "too many links from 'manifest.json'")


def test_an_unverified_layer_and_its_check_against_the_image() -> None:
    other = "sha256:" + "0" * 64
    data = legacy(GOOD, {"rootfs": {"diff_ids": [other]}})
    [layer] = read_export([data])
    assert (layer.diff_id, layer.verified) == (other, False)
    with pytest.raises(ExportFormatError) as caught:
        read_export([data], expected=[other])
    assert str(caught.value) == f"layer 1 ('{other}') does not match its diff id: its content hashes to {LAYER_ID}"
    with pytest.raises(ExportFormatError) as caught:
        read_export([data], expected=[LAYER_ID])
    assert str(caught.value) == f"layer 1 of the export is '{other}', the image's is {LAYER_ID}"
    with pytest.raises(ExportFormatError) as caught:
        read_export([data], expected=[other, other])
    assert str(caught.value) == "the export has 1 layers, the image 2"


def test_names_and_link_targets_that_fill_their_fields() -> None:
    """A 100-byte name or link target has no NUL: it ends where its field does. A member with an
    empty name is no entry."""
    name, target = b"n" * 100, b"t" * 100
    layer = tar(
        member(header(name, size=1), b"x"),
        member(header(b"link", b"2", link=target)),
        member(header(b"", size=1), b"y"),
        member(header(b"last")),
    )
    assert entries(layer) == {
        "n" * 100: LayerEntry("n" * 100, EntryType.FILE, 1, 0o644, 0, 0),
        "link": LayerEntry("link", EntryType.SYMLINK, 0, 0o644, 0, 0, "t" * 100),
        "last": LayerEntry("last", EntryType.FILE, 0, 0o644, 0, 0),
    }


def test_ustar_prefixes_of_one_and_of_155_bytes() -> None:
    """The prefix field is 155 bytes: what follows it is no part of the name. A long prefix sets
    byte 482, which only a GNU sparse header reads as "extension blocks follow"."""
    long_prefix = b"p" * 155
    block = with_field(header(b"b", size=1, prefix=long_prefix), 500, b"junk")
    layer = tar(member(header(b"a", size=1, prefix=b"d"), b"x"), member(block, b"y"), member(header(b"c")))
    assert sorted(entries(layer)) == ["c", "d/a", "p" * 155 + "/b"]


def test_pax_sizes_and_sparse_names() -> None:
    """A pax `size` says how much data follows; GNU sparse keys give the file's real size and name."""
    layer = tar(
        pax({"size": "3"}),
        member(header(b"grown"), b"abc"),
        pax({"GNU.sparse.size": "50"}),
        member(header(b"sparse1", size=1), b"x"),
        pax({"GNU.sparse.realsize": "70", "GNU.sparse.size": "60", "GNU.sparse.name": "real"}),
        member(header(b"GNUSparseFile.0/real", size=1), b"x"),
    )
    assert entries(layer) == {
        "grown": LayerEntry("grown", EntryType.FILE, 3, 0o644, 0, 0),
        "sparse1": LayerEntry("sparse1", EntryType.FILE, 50, 0o644, 0, 0),
        "real": LayerEntry("real", EntryType.FILE, 70, 0o644, 0, 0),
    }


def test_an_old_gnu_sparse_member_without_extension_blocks() -> None:
    block = with_field(header(b"sparse", b"S", 1, magic=GNU), 483, b"12345670123\0")
    layer = tar(member(block, b"d"), member(header(b"after", size=1), b"x"))
    assert entries(layer) == {
        "sparse": LayerEntry("sparse", EntryType.FILE, 0o12345670123, 0o644, 0, 0),
        "after": LayerEntry("after", EntryType.FILE, 1, 0o644, 0, 0),
    }


def pax_of(size: int, flag: bytes = b"g") -> bytes:
    """A pax header (global by default) whose data is exactly `size` bytes: one comment record."""
    return pax({"comment": "c" * (size - len(str(size)) - len(" comment=\n"))}, flag)


def test_global_pax_headers_may_take_64_kib_together() -> None:
    layer = tar(pax_of(32 << 10), pax_of(32 << 10), member(header(b"f")))
    assert entries(layer) == {"f": LayerEntry("f", EntryType.FILE, 0, 0o644, 0, 0)}
    layer = tar(pax_of(32 << 10), pax_of((32 << 10) + 1), member(header(b"f")))
    refused(export(layer), "the global pax headers of a tar stream are too large")


def test_a_pax_record_whose_length_takes_20_digits_is_refused() -> None:
    """The length must end within 20 bytes of the record's start."""
    record = b"000000000000000000" + b"30 path=abc\n"
    layer = tar(member(header(b"ok")), member(header(b"PaxHeader", b"x", len(record)), record), member(header(b"f")))
    refused(export(layer), "bad pax header record")


def test_a_whiteout_of_no_name_deletes_nothing() -> None:
    layer = tar(member(header(b"d/.wh.")), member(header(b".wh.")))
    assert listing(layer) == LayerListing((), frozenset(), frozenset())


def gzip_layer(*parts: bytes) -> bytes:
    """An export whose one layer is `parts` joined: gzip members and padding."""
    return export(b"".join(parts), diff_ids=[LAYER_ID])


def test_gzip_members_after_zero_padding_are_read() -> None:
    half = len(LAYER) // 2
    data = gzip_layer(gzip.compress(LAYER[:half]), bytes(300 << 10), gzip.compress(LAYER[half:]))
    [layer] = read_export([data])
    assert layer.verified


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ((gzip.compress(LAYER)[:-8],), "a gzip layer ends early"),
        (
            (gzip.compress(LAYER), b"XX"),
            "a layer does not decompress: Error -3 while decompressing data: incorrect header check",
        ),
    ],
)
def test_broken_gzip_layers(parts: tuple[bytes, ...], message: str) -> None:
    refused(gzip_layer(*parts), message)


def test_a_corrupt_zstd_layer() -> None:
    data = gzip_layer(b"\x28\xb5\x2f\xfd" + b"\xff" * 600)
    refused(data, "a layer does not decompress: zstd decompressor error: Unsupported frame parameter")


def zstd_frames(*pieces: bytes) -> bytes:
    compressor = zstandard.ZstdCompressor()
    return b"".join(compressor.compress(piece) for piece in pieces)


@pytest.mark.parametrize(
    "layer",
    [
        pytest.param(zstd_frames(LAYER)[:-3], id="inside-the-only-block"),
        pytest.param(zstd_frames(LAYER[:512], LAYER[512:])[:-3], id="inside-the-second-frame"),
        pytest.param(zstd_frames(LAYER[:512], LAYER[512:])[:-2][:12], id="inside-a-frame-header"),
    ],
)
def test_a_truncated_zstd_layer_is_refused(layer: bytes) -> None:
    """A zstd stream cut short used to give whatever tar it had made so far, or none: an empty
    listing for a layer cut inside its first block."""
    refused(gzip_layer(layer), "a zstd layer ends early")


def test_zstd_layer_in_several_frames_is_read_whole() -> None:
    [layer] = read_export([gzip_layer(zstd_frames(LAYER[:512], LAYER[512:1024], LAYER[1024:]))])
    assert layer.verified
    assert [entry.path for entry in layer.listing.entries] == ["f"]


def test_a_zstd_bomb_is_inflated_in_bounded_pieces() -> None:
    """256 MiB of zeros are a few kilobytes of zstd; they are decompressed 32 MiB at a time at most,
    never whole."""
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    digest = hashlib.sha256()
    bomb = b""
    for piece in (header(b"zeros", size=256 << 20), *(bytes(64 << 20) for _ in range(4)), bytes(1024)):
        digest.update(piece)
        bomb += compressor.compress(piece)
    bomb += compressor.flush()
    data = export(bomb, diff_ids=["sha256:" + digest.hexdigest()])
    tracemalloc.start()
    try:
        [layer] = read_export([data])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert layer.listing.entries[0].size == 256 << 20
    assert peak < 100 << 20


def test_a_kept_member_with_more_data_than_its_pax_size_says() -> None:
    data = outer({"manifest.json": json.dumps(GOOD).encode()})
    records = pax({"GNU.sparse.realsize": "2"})
    refused(records + data, "'manifest.json' holds more data than its header says")


def test_member_names_that_are_not_utf8_are_read() -> None:
    data = legacy(GOOD, **{"not\udcffutf8": b"{}"})
    assert b"not\xffutf8" in data
    [layer] = read_export([data])
    assert layer.verified


def with_members(data: bytes, *members: tarfile.TarInfo) -> bytes:
    """The export `data` with these data-less members appended (its end marker dropped)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for info in members:
            archive.addfile(info)
    return data.rstrip(b"\0") + bytes(-len(data.rstrip(b"\0")) % 512) + buffer.getvalue()


def tar_info(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("manifest.json", "the export has neither manifest.json nor index.json"),
        ("layer.tar", "layer 'layer.tar' is missing in the export"),
    ],
)
def test_a_later_directory_of_the_same_name_replaces_a_member(name: str, message: str) -> None:
    refused(with_members(legacy(GOOD), tar_info(name, tarfile.DIRTYPE)), message)


def test_a_later_directory_replaces_a_member_too_large_to_keep() -> None:
    data = outer({"manifest.json": b"[" * ((8 << 20) + 1)})
    refused(data, "'manifest.json' is too large in the export")
    refused(
        with_members(data, tar_info("manifest.json", tarfile.DIRTYPE)),
        "the export has neither manifest.json nor index.json",
    )


@pytest.mark.parametrize(
    ("kind", "link"),
    [(tarfile.SYMTYPE, "layer.tar"), (tarfile.SYMTYPE, "./layer.tar"), (tarfile.LNKTYPE, "d/layer.tar")],
)
def test_layers_reached_through_links(kind: bytes, link: str) -> None:
    """A symlink's target is relative to its directory, a hard link's to the archive's root."""
    manifest = [{"Config": "config.json", "Layers": ["d/link.tar"]}]
    config = json.dumps({"rootfs": {"diff_ids": [LAYER_ID]}}).encode()
    data = outer({"d/layer.tar": LAYER, "config.json": config, "manifest.json": json.dumps(manifest).encode()})
    [layer] = read_export([with_members(data, tar_info("d/link.tar", kind, link))])
    assert (layer.diff_id, layer.verified) == (LAYER_ID, True)


def oci(manifest: object, index: object = None, extra: dict[str, bytes] | None = None) -> bytes:
    """An OCI export of LAYER whose index.json names this image manifest (or is `index`), with
    `extra` blobs by digest."""
    config = json.dumps({"rootfs": {"diff_ids": [LAYER_ID]}}).encode()
    body = json.dumps(manifest).encode()
    manifest_id = hashlib.sha256(body).hexdigest()
    if index is None:
        index = {"manifests": ["not a descriptor", {"digest": 5}, {"digest": f"sha256:{manifest_id}"}]}
    files = {
        f"blobs/sha256/{LAYER_ID[7:]}": LAYER,
        f"blobs/sha256/{hashlib.sha256(config).hexdigest()}": config,
        f"blobs/sha256/{manifest_id}": body,
        "index.json": json.dumps(index).encode(),
        **{f"blobs/sha256/{digest[7:]}": blob for digest, blob in (extra or {}).items()},
    }
    return outer(files)


def config_digest() -> str:
    return "sha256:" + hashlib.sha256(json.dumps({"rootfs": {"diff_ids": [LAYER_ID]}}).encode()).hexdigest()


def test_an_oci_export_skips_index_entries_that_are_no_descriptors() -> None:
    [layer] = read_export([oci({"config": {"digest": config_digest()}, "layers": [{"digest": LAYER_ID}]})])
    assert (layer.diff_id, layer.verified) == (LAYER_ID, True)


@pytest.mark.parametrize(
    ("manifest", "index", "message"),
    [
        ({"layers": []}, [], "unexpected index in the export: list"),
        ({"layers": []}, {"manifests": []}, "index.json names no image manifest in the export"),
        ({"layers": []}, None, "unexpected config in the export: NoneType"),
        ({"config": {"digest": "sha256"}, "layers": []}, None, "bad digest 'sha256'"),
        ({"config": {"digest": ":abc"}, "layers": []}, None, "bad digest ':abc'"),
        ({"config": {"digest": "sha256:"}, "layers": []}, None, "bad digest 'sha256:'"),
        ({"config": {"digest": "sha256:a/b"}, "layers": []}, None, "bad digest 'sha256:a/b'"),
        ({"config": {"digest": "sha256:abc"}, "layers": []}, None, "'blobs/sha256/abc' is missing in the export"),
        ({"config": {"digest": "sha256:a:b"}, "layers": []}, None, "'blobs/sha256/a:b' is missing in the export"),
        ({"config": {"digest": config_digest()}, "layers": ["x"]}, None, "unexpected layers in the export: str"),
        ({"config": {"digest": config_digest()}, "layers": [{}]}, None, "unexpected digest in the export: NoneType"),
    ],
)
def test_what_a_broken_oci_index_says(manifest: object, index: object, message: str) -> None:
    refused(oci(manifest, index), message)


def test_checksums_above_65521_and_of_seven_digits_without_a_nul() -> None:
    """A header of many high bytes sums past Adler-32's modulus. Some writers fill the checksum
    field with seven digits and a space; a base-256 gid sends the header down the slow path."""
    name, target, prefix = "ÿ" * 50, "ÿ" * 50, "ÿ" * 77
    block = header(name.encode(), b"2", link=target.encode(), prefix=prefix.encode())
    assert int(block[148:154], 8) > 65521
    slow = bytearray(with_field(header(b"slow", size=1), 116, base256(9, 8)))
    slow[148:156] = b"%07o " % int(slow[148:154], 8)
    assert entries(tar(member(block), member(bytes(slow), b"x"))) == {
        f"{prefix}/{name}": LayerEntry(f"{prefix}/{name}", EntryType.SYMLINK, 0, 0o644, 0, 0, target),
        "slow": LayerEntry("slow", EntryType.FILE, 1, 0o644, 0, 9),
    }


def test_a_six_digit_checksum_on_the_slow_path() -> None:
    block = with_field(header("é".encode() * 50, b"2", link="ü".encode() * 50), 116, base256(9, 8))
    assert int(block[148:154], 8) >= 0o100000
    assert entries(tar(member(block)))["é" * 50].gid == 9


@pytest.mark.parametrize(
    "layer",
    [
        pytest.param(member(header(b"f", size=1000), b"x" * 10)[:522], id="inside-data"),
        pytest.param(member(header(b"f")) + header(b"g")[:100], id="inside-a-header"),
    ],
)
def test_a_layer_that_stops_inside_a_member(layer: bytes) -> None:
    refused(export(layer, diff_ids=[LAYER_ID]), "a tar stream ends inside a member")


def test_an_old_gnu_sparse_member_with_two_extension_blocks() -> None:
    block = with_field(header(b"sparse", b"S", 1, magic=GNU), 482, b"\x01" + b"%011o\0" % 5000)
    first, second = bytearray(512), bytearray(512)
    first[504] = 1
    second[505] = 1
    layer = tar(block + bytes(first) + bytes(second) + member(b"", b"d"), member(header(b"z")))
    assert entries(layer) == {
        "sparse": LayerEntry("sparse", EntryType.FILE, 5000, 0o644, 0, 0),
        "z": LayerEntry("z", EntryType.FILE, 0, 0o644, 0, 0),
    }


def test_an_old_gnu_sparse_file_of_16_gib_has_its_size_in_base_256() -> None:
    """GNU tar writes a real size of 8 GiB or more in base-256, which fills the 12-byte field: the
    byte after it is padding, no part of the size."""
    block = with_field(header(b"big", b"S", 1, magic=GNU), 483, base256(16 << 30, 12) + b"\x07")
    layer = tar(member(block, b"d"), member(header(b"after")))
    assert entries(layer) == {
        "big": LayerEntry("big", EntryType.FILE, 16 << 30, 0o644, 0, 0),
        "after": LayerEntry("after", EntryType.FILE, 0, 0o644, 0, 0),
    }


def test_pax_headers_of_up_to_1_mib() -> None:
    layer = tar(pax_of(1 << 20, b"x"), member(header(b"f")))
    assert list(entries(layer)) == ["f"]
    refused(export(tar(member(header(b"PaxHeader", b"x", (1 << 20) + 1)))), "a tar extended header of 1048577 bytes")


@pytest.mark.parametrize("total", [65519, 65522])
def test_a_header_without_a_checksum_is_refused_whatever_its_bytes_sum_to(total: int) -> None:
    """Sums next to Adler-32's modulus, where an off-by-one "no checksum" value would pass."""
    block = bytearray(header(b"f"))
    block[148:156] = b" " * 8
    missing = total - sum(block)
    for index in [*range(1, 100), *range(157, 257), *range(265, 512)]:  # name, link, the rest
        block[index] = min(255, missing)
        missing -= block[index]
    assert missing == 0 and sum(block) == total
    block[148:156] = bytes(8)
    refused(export(tar(member(header(b"ok")), member(bytes(block)))), "bad tar header checksum")


IMAGE = {"config": {"digest": config_digest()}, "layers": [{"digest": LAYER_ID}]}
IMAGE_ID = "sha256:" + hashlib.sha256(json.dumps(IMAGE).encode()).hexdigest()


def documents(count: int) -> dict[str, bytes]:
    """`count` kept JSON documents that are neither an index nor an image manifest, by digest."""
    blobs = [json.dumps({"n": number}).encode() for number in range(count)]
    return {"sha256:" + hashlib.sha256(blob).hexdigest(): blob for blob in blobs}


def test_the_index_walk_passes_over_attestations_and_other_documents() -> None:
    attestation = {"digest": IMAGE_ID, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
    other = documents(63)
    index = {"manifests": [attestation, *({"digest": digest} for digest in other), {"digest": IMAGE_ID}]}
    [layer] = read_export([oci(IMAGE, index, other)])
    assert (layer.diff_id, layer.verified) == (LAYER_ID, True)


def test_the_index_walk_reads_at_most_64_documents() -> None:
    other = documents(64)
    index = {"manifests": [*({"digest": digest} for digest in other), {"digest": IMAGE_ID}]}
    refused(oci(IMAGE, index, other), "the export's indexes name more than 64 documents")


class SetFromLook(threading.Event):
    """A cancel event the reader sees set from its `first`-th look on."""

    def __init__(self, first: int) -> None:
        super().__init__()
        self.first = first
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.first


def test_cancel_is_seen_while_a_zstd_layer_inflates() -> None:
    """The whole export is one slice, looked at once before it is fed: only the zstd output's own
    look sees the event."""
    zstandard = pytest.importorskip("zstandard")
    data = gzip_layer(zstandard.ZstdCompressor().compress(LAYER))
    with pytest.raises(ReadCancelled):
        read_export([data], cancel=SetFromLook(2))


def test_progress_every_32_mib_and_at_each_layer() -> None:
    """A first chunk of exactly 32 MiB reports the bytes so far; the layer, which ends in the
    second 4 MiB slice of the next chunk, reports itself with the bytes read up to its end."""
    data = export(tar(member(header(b"big", size=37 << 20), bytes(37 << 20))))
    calls: list[tuple[int, int]] = []
    chunks = [data[: 32 << 20], data[32 << 20 :]]
    [layer] = read_export(chunks, on_progress=lambda layers, done: calls.append((layers, done)))
    assert layer.verified
    assert calls == [(0, 32 << 20), (1, len(data))]


def test_cancel_is_seen_while_hard_links_take_their_targets_size() -> None:
    """The reader looks once at the export's one slice and once at the layer's 4096th entry; the
    third look comes while the 4096 hard links are resolved."""
    links = [member(header(b"h%d" % number, b"1", link=b"target")) for number in range(4096)]
    data = export(tar(member(header(b"target", size=1), b"x"), *links))
    with pytest.raises(ReadCancelled):
        read_export([data], cancel=SetFromLook(3))


class CountLooks(threading.Event):
    """A cancel event that is never set and counts how often the reader looks at it."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return False


@pytest.mark.parametrize(
    ("files", "hard_links", "looks"),
    [(4095, 0, 1), (4096, 0, 2), (1, 4095, 2), (1, 4096, 3)],
)
def test_the_cancel_event_is_looked_at_once_per_4096_entries_and_per_4096_hard_links(
    files: int, hard_links: int, looks: int
) -> None:
    """The export is one slice, looked at once before it is fed; a layer adds a look at its
    4096th entry and at the 4096th hard link it resolves, none before: a cancel is seen within
    4096 entries, with no look per entry."""
    names = [member(header(b"f%d" % number)) for number in range(files)]
    links = [member(header(b"h%d" % number, b"1", link=b"f0")) for number in range(hard_links)]
    cancel = CountLooks()
    [layer] = read_export([export(tar(*names, *links))], cancel=cancel)
    assert len(layer.listing.entries) == files + hard_links
    assert cancel.looks == looks


def test_a_hard_link_replaced_by_a_symlink_to_a_file_is_listed_as_the_symlink() -> None:
    """The later member wins: the symlink does not take the size of the file it names."""
    data = export(
        tar(
            member(header(b"a", size=5), b"12345"),
            member(header(b"l", b"1", link=b"a")),
            member(header(b"l", b"2", link=b"a")),
        )
    )
    [layer] = read_export([data])
    entries = {entry.path: entry for entry in layer.listing.entries}
    assert entries["l"] == LayerEntry("l", EntryType.SYMLINK, 0, 0o644, 0, 0, "a")
