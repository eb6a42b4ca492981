"""The cache decoder on arbitrary and damaged input: it never raises, and whatever it returns is a
listing every consumer can trust (right types, sizes and ids in range). Deterministic and bounded."""

from __future__ import annotations

import json
import zlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockerscope.service.layer_cache import decode, encode
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing

DIFF_ID = "sha256:" + "ab" * 32
HEADER = b"dockerscope layer listing 2\n"
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

names = st.text(st.characters(codec="utf-8", exclude_categories=()) | st.sampled_from("\udcff\udc80/.\n"), max_size=12)
entries = st.builds(
    LayerEntry,
    path=names,
    type=st.sampled_from(EntryType),
    size=st.integers(0, 2**63 - 1),
    mode=st.integers(0, 0o7777),
    uid=st.integers(0, 2**32 - 1),
    gid=st.integers(0, 2**32 - 1),
    link=names,
)
listings = st.builds(
    LayerListing,
    entries=st.lists(entries, max_size=12).map(tuple),
    deleted=st.frozensets(names, max_size=4),
    opaque=st.frozensets(names, max_size=4),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
KEYS = ("diff_id", "path", "size", "type", "mode", "uid", "gid", "link", "deleted", "opaque")


def assert_trustworthy(listing: LayerListing | None) -> None:
    """What the analysis relies on, checked here independently of the decoder's own checks."""
    if listing is None:
        return
    assert type(listing) is LayerListing
    assert type(listing.entries) is tuple
    for entry in listing.entries:
        assert type(entry) is LayerEntry
        path, kind, size, mode, uid, gid, link = entry
        assert type(path) is str and type(link) is str
        assert type(kind) is EntryType
        assert type(size) is int and 0 <= size <= 2**63 - 1
        assert type(mode) is int and 0 <= mode <= 0o7777
        assert type(uid) is int and type(gid) is int and 0 <= uid <= 2**32 - 1 and 0 <= gid <= 2**32 - 1
    for paths in (listing.deleted, listing.opaque):
        assert type(paths) is frozenset and all(type(path) is str for path in paths)


def _file(document: Any) -> bytes:
    return HEADER + zlib.compress(json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    assert_trustworthy(decode(data, DIFF_ID))
    assert_trustworthy(decode(HEADER + data, DIFF_ID))


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_compressed_bytes(data: bytes) -> None:
    assert_trustworthy(decode(HEADER + zlib.compress(data), DIFF_ID))


@FUZZ
@given(json_values)
def test_arbitrary_json(document: Any) -> None:
    assert_trustworthy(decode(_file(document), DIFF_ID))


@FUZZ
@given(listings)
def test_valid_files_round_trip(listing: LayerListing) -> None:
    assert decode(encode(DIFF_ID, listing), DIFF_ID) == listing
    assert decode(encode(DIFF_ID, listing), "sha256:" + "cd" * 32) is None


@FUZZ
@given(listings, st.data())
def test_mutated_bytes_of_valid_files(listing: LayerListing, data: st.DataObject) -> None:
    raw = bytearray(encode(DIFF_ID, listing))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(("flip", "cut", "insert", "delete")))
        if action == "flip":
            raw[position] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del raw[position:]
        elif action == "insert":
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[position]
        if not raw:
            break
    assert_trustworthy(decode(bytes(raw), DIFF_ID))


@FUZZ
@given(listings, st.sampled_from(KEYS), json_values, st.data())
def test_mutated_columns_of_valid_files(listing: LayerListing, key: str, value: Any, data: st.DataObject) -> None:
    """The zlib check passes and the JSON parses: only the decoder's own checks stand between a
    wrong value and the analysis."""
    document = json.loads(zlib.decompress(encode(DIFF_ID, listing)[len(HEADER) :]).decode("utf-8", "surrogatepass"))
    column = document[key]
    if isinstance(column, list) and column and data.draw(st.booleans()):
        # Replace one element, or one run value or count, rather than the whole column.
        target = column
        if isinstance(column[0], list) and data.draw(st.booleans()):
            target = column[data.draw(st.integers(0, len(column) - 1))]
        if target:
            target[data.draw(st.integers(0, len(target) - 1))] = value
    else:
        document[key] = value
    assert_trustworthy(decode(_file(document), DIFF_ID))
