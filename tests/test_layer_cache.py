"""The on-disk layer listing cache: exact round trips, hostile ids, damaged files, the size bound."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from dockerscope.service import layer_cache
from dockerscope.service.layer_cache import LayerCache, default_cache_dir
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing

HEADER = b"dockerscope layer listing 1\n"


def _diff_id(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _file(directory: Path, diff_id: str) -> Path:
    return directory / f"{diff_id.removeprefix('sha256:')}.v1"


def _cache_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def _listing(prefix: str, count: int = 20) -> LayerListing:
    """`count` files whose paths all have the same length, so equal counts give equal file sizes."""
    entries = tuple(LayerEntry(f"{prefix}/file-{i:05}", EntryType.FILE, i * 7, 0o644, 0, 0) for i in range(count))
    return LayerListing(entries)


def _big_listing(count: int) -> LayerListing:
    entries = []
    for i in range(count):
        package = f"usr/share/doc/package-{i // 40}"
        if i % 40 == 0:
            entries.append(LayerEntry(package, EntryType.DIR, 0, 0o755, 0, 0))
        elif i % 97 == 0:
            entries.append(LayerEntry(f"{package}/link-{i}", EntryType.SYMLINK, 0, 0o777, 0, 0, f"../x/file-{i}.txt"))
        else:
            entries.append(LayerEntry(f"{package}/file-{i}.txt", EntryType.FILE, (i * 7919) % 200_000, 0o644, 0, 0))
    return LayerListing(tuple(entries), frozenset({"usr/lib/gone"}), frozenset({"etc/conf.d"}))


ODD_PATHS = (
    "usr/bin/new\nline",
    "tmp/\x1b[31mred",
    "srv/Übergröße/日本語",
    "srv/emoji-😀",
    "srv/undecodable-\udcff\udc80",  # os.fsdecode of b"\xff\x80"
    "srv/pair-\ud83d\ude00",  # two separate code points, not the emoji: must not merge
    'srv/quote"back\\slash',
    "srv/nul\x00inside",
    " leading space",
)

FULL_LISTING = LayerListing(
    entries=(
        LayerEntry("usr", EntryType.DIR, 0, 0o755, 0, 0),
        LayerEntry("usr/bin/tool", EntryType.FILE, 12_345_678_901, 0o4755, 0, 0),
        LayerEntry("usr/bin/alias", EntryType.HARDLINK, 12_345_678_901, 0o755, 0, 0, "usr/bin/tool"),
        LayerEntry("usr/bin/sym", EntryType.SYMLINK, 0, 0o777, 1000, 1000, "../lib/\udcfe\nodd"),
        LayerEntry("dev/null", EntryType.OTHER, 0, 0o666, 0, 0),
        LayerEntry("etc/conf.d", EntryType.DIR, 0, 0o700, 65534, 65534),
        # Order is kept as given, not sorted.
        LayerEntry("a/first-after", EntryType.FILE, 0, 0o600, 2**31, 2**32 - 1),
        *(LayerEntry(path, EntryType.FILE, i, 0o644, 0, 0) for i, path in enumerate(ODD_PATHS)),
    ),
    deleted=frozenset({"var/cache/old", "srv/gone-\udcff", "tmp/new\nline"}),
    opaque=frozenset({"etc/conf.d", "srv/\x1b"}),
)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "layers"


@pytest.fixture
def cache(directory: Path) -> LayerCache:
    return LayerCache(directory)


# --- round trips ---------------------------------------------------------------------------------


def test_round_trip_keeps_every_field_type_and_order(cache: LayerCache) -> None:
    diff_id = _diff_id("full")
    cache.put(diff_id, FULL_LISTING)
    loaded = cache.get(diff_id)
    assert loaded == FULL_LISTING
    assert loaded is not None
    assert [entry.path for entry in loaded.entries] == [entry.path for entry in FULL_LISTING.entries]
    assert all(type(entry) is LayerEntry for entry in loaded.entries)
    assert {entry.type for entry in loaded.entries} == set(EntryType)
    assert all(
        entry.type is original.type for entry, original in zip(loaded.entries, FULL_LISTING.entries, strict=True)
    )


@pytest.mark.parametrize("path", ODD_PATHS)
def test_odd_path_round_trips_exactly(cache: LayerCache, path: str) -> None:
    listing = LayerListing((LayerEntry(path, EntryType.SYMLINK, 0, 0o777, 0, 0, path),), frozenset({path}))
    cache.put(_diff_id(path), listing)
    loaded = cache.get(_diff_id(path))
    assert loaded is not None
    assert loaded.entries[0].path == path
    assert len(loaded.entries[0].path) == len(path)
    assert loaded == listing


def test_empty_listing_round_trips(cache: LayerCache) -> None:
    cache.put(_diff_id("empty"), LayerListing(()))
    assert cache.get(_diff_id("empty")) == LayerListing(())


def test_unknown_id_is_a_miss(cache: LayerCache, directory: Path) -> None:
    assert cache.get(_diff_id("never stored")) is None
    cache.put(_diff_id("one"), _listing("one"))
    assert cache.get(_diff_id("two")) is None


def test_listings_are_kept_per_diff_id(cache: LayerCache) -> None:
    cache.put(_diff_id("one"), _listing("one"))
    cache.put(_diff_id("two"), _listing("two"))
    assert cache.get(_diff_id("one")) == _listing("one")
    assert cache.get(_diff_id("two")) == _listing("two")


def test_second_cache_on_the_same_directory_sees_the_listing(cache: LayerCache, directory: Path) -> None:
    cache.put(_diff_id("shared"), FULL_LISTING)
    assert LayerCache(directory).get(_diff_id("shared")) == FULL_LISTING


def test_big_listing_round_trips_quickly(cache: LayerCache, directory: Path) -> None:
    """A guard against slow paths creeping in, loose enough for a loaded machine: a 60,000-entry
    listing loads in about 0.04 s on a developer machine."""
    listing = _big_listing(60_000)
    cache.put(_diff_id("big"), listing)
    assert _file(directory, _diff_id("big")).stat().st_size < 60_000 * 10
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        loaded = cache.get(_diff_id("big"))
        timings.append(time.perf_counter() - started)
        assert loaded == listing
    assert min(timings) < 0.5


# --- ids -----------------------------------------------------------------------------------------

HOSTILE_IDS = (
    "../x",
    "sha256:../../etc",
    "sha256:../../" + "a" * 58,
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "a" * 64 + "\n",
    "sha256:" + "a" * 64 + "/../../x",
    "sha256:" + "٣" * 64,  # Arabic-Indic digits are digits to \d, not hex
    "sha512:" + "a" * 64,
    "a" * 64,
    "",
)


@pytest.mark.parametrize("diff_id", HOSTILE_IDS)
def test_hostile_id_is_neither_stored_nor_read(tmp_path: Path, diff_id: str) -> None:
    directory = tmp_path / "deep" / "layers"
    cache = LayerCache(directory)
    cache.put(diff_id, FULL_LISTING)
    assert cache.get(diff_id) is None
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == []


# --- damaged files -------------------------------------------------------------------------------


def _payload(document: object, header: bytes = HEADER) -> bytes:
    return header + zlib.compress(json.dumps(document).encode())


def _valid_document(diff_id: str) -> dict[str, object]:
    return {
        "diff_id": diff_id,
        "path": ["a", "b"],
        "size": [1, 2],
        "type": [["file"], [2]],
        "mode": [[420], [2]],
        "uid": [[0], [2]],
        "gid": [[0], [2]],
        "link": [[""], [2]],
        "deleted": [],
        "opaque": [],
    }


def _with(diff_id: str, **changes: object) -> bytes:
    return _payload({**_valid_document(diff_id), **changes})


DAMAGE: dict[str, Callable[[bytes, str], bytes]] = {
    "truncated": lambda data, _: data[: len(data) // 2],
    "one byte short": lambda data, _: data[:-1],
    "header only": lambda data, _: data[: len(HEADER)],
    "empty": lambda data, _: b"",
    "garbage": lambda data, _: os.urandom(len(data)),
    "garbage after header": lambda data, _: HEADER + os.urandom(200),
    "flipped byte": lambda data, _: data[:100] + bytes([data[100] ^ 0xFF]) + data[101:],
    "other version": lambda data, _: b"dockerscope layer listing 2\n" + data[len(HEADER) :],
    "no header": lambda data, _: data[len(HEADER) :],
    "not json": lambda data, _: HEADER + zlib.compress(b"{not json"),
    "not utf-8": lambda data, _: HEADER + zlib.compress(b'{"diff_id": "\xff\xfe"}'),
    "json list": lambda data, _: _payload([1, 2, 3]),
    "json string": lambda data, _: _payload("listing"),
    "missing column": lambda data, diff_id: _payload({k: v for k, v in _valid_document(diff_id).items() if k != "uid"}),
    "short size column": lambda data, diff_id: _with(diff_id, size=[1]),
    "short runs": lambda data, diff_id: _with(diff_id, mode=[[420], [1]]),
    "huge run": lambda data, diff_id: _with(diff_id, mode=[[420, 493], [10**12, 2 - 10**12]]),
    "unpaired runs": lambda data, diff_id: _with(diff_id, gid=[[0, 1], [2]]),
    "runs not a pair": lambda data, diff_id: _with(diff_id, link=[[""]]),
    "unknown type": lambda data, diff_id: _with(diff_id, type=[["socket"], [2]]),
    "unhashable deleted": lambda data, diff_id: _with(diff_id, deleted=[["a"]]),
    "deep nesting": lambda data, _: HEADER + zlib.compress(b"[" * 100_000 + b"]" * 100_000),
    "other diff id": lambda data, _: _payload(_valid_document(_diff_id("someone else"))),
}


def test_the_hand_built_document_is_valid(cache: LayerCache, directory: Path) -> None:
    """The damage cases below change one thing each of this document, so it must load."""
    diff_id = _diff_id("hand built")
    directory.mkdir()
    _file(directory, diff_id).write_bytes(_payload(_valid_document(diff_id)))
    entries = (LayerEntry("a", EntryType.FILE, 1, 0o644, 0, 0), LayerEntry("b", EntryType.FILE, 2, 0o644, 0, 0))
    assert cache.get(diff_id) == LayerListing(entries)


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_file_is_a_miss_and_removed(
    cache: LayerCache, directory: Path, damage: Callable[[bytes, str], bytes]
) -> None:
    diff_id = _diff_id("damaged")
    cache.put(diff_id, FULL_LISTING)
    path = _file(directory, diff_id)
    path.write_bytes(damage(path.read_bytes(), diff_id))
    assert cache.get(diff_id) is None
    assert not path.exists()
    cache.put(diff_id, FULL_LISTING)
    assert cache.get(diff_id) == FULL_LISTING


def test_unreadable_file_is_a_miss(cache: LayerCache, directory: Path) -> None:
    diff_id = _diff_id("a directory")
    _file(directory, diff_id).mkdir(parents=True)
    assert cache.get(diff_id) is None
    cache.put(diff_id, FULL_LISTING)
    assert cache.get(diff_id) is None
    assert _cache_files(directory) == [_file(directory, diff_id).name]


# --- unusable directories ------------------------------------------------------------------------


def test_directory_under_a_regular_file_makes_put_a_no_op(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cache = LayerCache(blocker / "layers")
    cache.put(_diff_id("one"), FULL_LISTING)
    assert cache.get(_diff_id("one")) is None
    assert blocker.read_text() == "x"


def test_regular_file_in_place_of_the_directory_makes_put_a_no_op(tmp_path: Path) -> None:
    blocker = tmp_path / "layers"
    blocker.write_text("x")
    cache = LayerCache(blocker)
    cache.put(_diff_id("one"), FULL_LISTING)
    assert cache.get(_diff_id("one")) is None
    assert blocker.read_text() == "x"


def test_directory_is_created_private(cache: LayerCache, directory: Path) -> None:
    assert not directory.exists()
    cache.put(_diff_id("one"), _listing("one"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(_file(directory, _diff_id("one")).stat().st_mode) == 0o600


def test_nothing_touches_the_disk_before_a_put(directory: Path) -> None:
    cache = LayerCache(directory)
    assert cache.get(_diff_id("one")) is None
    assert not directory.exists()


# --- atomic writes -------------------------------------------------------------------------------


def test_put_leaves_only_the_cache_file(cache: LayerCache, directory: Path) -> None:
    cache.put(_diff_id("one"), FULL_LISTING)
    cache.put(_diff_id("one"), FULL_LISTING)
    assert _cache_files(directory) == [_file(directory, _diff_id("one")).name]


def test_failed_rename_removes_the_temp_file_and_keeps_the_old_one(
    cache: LayerCache, directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.put(_diff_id("one"), _listing("old"))

    def failing_replace(source: str, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(layer_cache.os, "replace", failing_replace)
    cache.put(_diff_id("one"), _listing("new"))
    assert _cache_files(directory) == [_file(directory, _diff_id("one")).name]
    assert cache.get(_diff_id("one")) == _listing("old")


def test_concurrent_writers_of_one_id_are_harmless(directory: Path) -> None:
    listing = _big_listing(3_000)
    diff_id = _diff_id("raced")
    start = threading.Barrier(6)
    loaded: list[LayerListing | None] = []

    def write() -> None:
        cache = LayerCache(directory)
        start.wait()
        for _ in range(5):
            cache.put(diff_id, listing)
            loaded.append(cache.get(diff_id))

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loaded == [listing] * 30
    assert _cache_files(directory) == [_file(directory, diff_id).name]


# --- the size bound ------------------------------------------------------------------------------


def _file_size(tmp_path: Path, count: int = 20) -> int:
    """The size of a `_listing` file, measured in a scratch cache. Sizes vary by a few bytes with
    the name, so the bounds below leave half a file of slack."""
    scratch = LayerCache(tmp_path / "scratch")
    scratch.put(_diff_id("size"), _listing("size", count))
    return _file(tmp_path / "scratch", _diff_id("size")).stat().st_size


def _set_mtime(directory: Path, diff_id: str, seconds: float) -> None:
    os.utime(_file(directory, diff_id), (seconds, seconds))


def test_least_recently_used_file_goes_first(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    cache = LayerCache(directory, max_bytes=3 * size + size // 2)
    for name in ("aaa", "bbb", "ccc"):
        cache.put(_diff_id(name), _listing(name))
    assert len(_cache_files(directory)) == 3
    _set_mtime(directory, _diff_id("aaa"), 1_000_000)
    _set_mtime(directory, _diff_id("bbb"), 2_000_000)
    _set_mtime(directory, _diff_id("ccc"), 3_000_000)
    assert cache.get(_diff_id("aaa")) == _listing("aaa")  # now the most recently used
    cache.put(_diff_id("ddd"), _listing("ddd"))
    assert cache.get(_diff_id("bbb")) is None
    for name in ("aaa", "ccc", "ddd"):
        assert cache.get(_diff_id(name)) == _listing(name)


def test_eviction_removes_as_many_files_as_needed(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    big_size = _file_size(tmp_path, count=100)
    assert 1.5 * size < big_size < 2.5 * size  # so two files must go, and two are enough
    max_bytes = 4 * size + size // 2
    cache = LayerCache(directory, max_bytes=max_bytes)
    for index, name in enumerate(("aaa", "bbb", "ccc", "ddd")):
        cache.put(_diff_id(name), _listing(name))
        _set_mtime(directory, _diff_id(name), 1_000_000 * (index + 1))
    cache.put(_diff_id("big"), _listing("big", count=100))
    assert _cache_files(directory) == sorted(_file(directory, _diff_id(name)).name for name in ("ccc", "ddd", "big"))
    assert sum(path.stat().st_size for path in directory.iterdir()) <= max_bytes


def test_get_refreshes_the_mtime(cache: LayerCache, directory: Path) -> None:
    cache.put(_diff_id("one"), _listing("one"))
    _set_mtime(directory, _diff_id("one"), 1_000_000)
    cache.get(_diff_id("one"))
    assert _file(directory, _diff_id("one")).stat().st_mtime > time.time() - 60


def test_the_file_just_written_is_kept_even_when_others_look_newer(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    cache = LayerCache(directory, max_bytes=2 * size + size // 2)
    for name in ("aaa", "bbb"):
        cache.put(_diff_id(name), _listing(name))
        _set_mtime(directory, _diff_id(name), time.time() + 3600)
    cache.put(_diff_id("new"), _listing("new"))
    assert cache.get(_diff_id("new")) == _listing("new")
    assert len(_cache_files(directory)) == 2


def test_oversized_listing_is_not_stored_and_evicts_nothing(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    cache = LayerCache(directory, max_bytes=2 * size)
    cache.put(_diff_id("small"), _listing("small"))
    cache.put(_diff_id("huge"), _listing("huge", count=500))
    assert cache.get(_diff_id("huge")) is None
    assert cache.get(_diff_id("small")) == _listing("small")


def test_zero_bound_stores_nothing(directory: Path) -> None:
    cache = LayerCache(directory, max_bytes=0)
    cache.put(_diff_id("one"), LayerListing(()))
    assert cache.get(_diff_id("one")) is None


def test_files_that_are_not_the_caches_are_left_alone(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    directory.mkdir()
    (directory / "notes.txt").write_bytes(b"x" * 10 * size)
    (directory / ("f" * 64)).write_bytes(b"x" * 10 * size)
    cache = LayerCache(directory, max_bytes=2 * size + size // 2)
    cache.put(_diff_id("one"), _listing("one"))
    cache.put(_diff_id("two"), _listing("two"))
    assert cache.get(_diff_id("one")) == _listing("one")
    assert cache.get(_diff_id("two")) == _listing("two")
    assert (directory / "notes.txt").exists()
    assert (directory / ("f" * 64)).exists()


def test_other_versions_files_count_and_age_out(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    directory.mkdir()
    other = directory / ("e" * 64 + ".v2")
    other.write_bytes(b"x" * size)
    os.utime(other, (1_000_000, 1_000_000))
    cache = LayerCache(directory, max_bytes=2 * size + size // 2)
    cache.put(_diff_id("one"), _listing("one"))
    assert other.exists()
    cache.put(_diff_id("two"), _listing("two"))
    assert not other.exists()


def test_stale_temp_files_are_removed_and_fresh_ones_kept(cache: LayerCache, directory: Path) -> None:
    directory.mkdir()
    name = "a" * 64 + ".v1"
    stale = directory / f".{name}.x1y2z3.tmp"
    fresh = directory / f".{name}.q9w8e7.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 2 * 3600,) * 2)
    cache.put(_diff_id("one"), _listing("one"))
    assert not stale.exists()
    assert fresh.exists()


# --- default directory ---------------------------------------------------------------------------


def test_default_dir_follows_an_absolute_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "dockerscope" / "layers"


@pytest.mark.parametrize("value", [None, "", "relative/cache", "./cache", "~/cache"])
def test_default_dir_falls_back_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", value)
    assert default_cache_dir() == tmp_path / ".cache" / "dockerscope" / "layers"


def test_cache_without_a_directory_uses_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    LayerCache().put(_diff_id("one"), _listing("one"))
    assert _file(tmp_path / "dockerscope" / "layers", _diff_id("one")).exists()
    assert LayerCache().get(_diff_id("one")) == _listing("one")
