"""The on-disk layer listing cache: exact round trips, hostile ids, damaged files, the size bound."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from dockerscope.service import layer_cache
from dockerscope.service.layer_cache import LayerCache, default_cache_dir
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing

HEADER = b"dockerscope layer listing 2\n"


def _diff_id(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _file(directory: Path, diff_id: str) -> Path:
    return directory / f"{diff_id.removeprefix('sha256:')}.v2"


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
    "other version": lambda data, _: b"dockerscope layer listing 1\n" + data[len(HEADER) :],
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
    directory.mkdir(mode=0o700)
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
    directory.mkdir(mode=0o700)
    _file(directory, diff_id).mkdir()
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

    def failing_replace(source: str, target: object, **kwargs: object) -> None:
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
    directory.mkdir(mode=0o700)
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
    directory.mkdir(mode=0o700)
    other = directory / ("e" * 64 + ".v1")
    other.write_bytes(b"x" * size)
    os.utime(other, (1_000_000, 1_000_000))
    cache = LayerCache(directory, max_bytes=2 * size + size // 2)
    cache.put(_diff_id("one"), _listing("one"))
    assert other.exists()
    cache.put(_diff_id("two"), _listing("two"))
    assert not other.exists()


def test_stale_temp_files_are_removed_and_fresh_ones_kept(cache: LayerCache, directory: Path) -> None:
    directory.mkdir(mode=0o700)
    name = "a" * 64 + ".v2"
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


# --- stores: verified and per daemon -------------------------------------------------------------


def test_a_daemons_listing_is_seen_by_that_daemon_only(cache: LayerCache, directory: Path) -> None:
    """A listing read from a source that cannot be verified (overlay2) must not show up for another
    daemon's image with the same diff id: a hostile daemon could claim any diff id."""
    diff_id = _diff_id("claimed")
    cache.put(diff_id, _listing("planted"), scope="hostile daemon")
    assert cache.get(diff_id, scope="hostile daemon") == _listing("planted")
    assert cache.get(diff_id, scope="honest daemon") is None
    assert cache.get(diff_id) is None
    assert LayerCache(directory).get(diff_id, scope="honest daemon") is None
    assert not _file(directory, diff_id).exists()
    assert _file(directory / "daemons" / layer_cache.scope_dir_name("hostile daemon"), diff_id).exists()


def test_verified_listings_are_shared_and_read_first(cache: LayerCache) -> None:
    diff_id = _diff_id("verified")
    cache.put(diff_id, _listing("own"), scope="one daemon")
    cache.put(diff_id, _listing("verified"))
    for scope in (None, "one daemon", "another daemon"):
        assert cache.get(diff_id, scope=scope) == _listing("verified")


def test_scope_directories_are_digests_and_private(cache: LayerCache, directory: Path) -> None:
    scope = "../../etc\x00/\udcff ID:ABCD"
    cache.put(_diff_id("one"), _listing("one"), scope=scope)
    (store,) = (directory / "daemons").iterdir()
    assert store.name == hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    assert {stat.S_IMODE(path.stat().st_mode) for path in (directory / "daemons", store)} == {0o700}
    assert cache.get(_diff_id("one"), scope=scope) == _listing("one")


def test_the_size_bound_covers_every_store(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    cache = LayerCache(directory, max_bytes=3 * size + size // 2)
    for index, (name, scope) in enumerate((("aaa", "one"), ("bbb", None), ("ccc", "two"))):
        cache.put(_diff_id(name), _listing(name), scope=scope)
        path = _file(
            directory if scope is None else directory / "daemons" / layer_cache.scope_dir_name(scope), _diff_id(name)
        )
        os.utime(path, (1_000_000 * (index + 1),) * 2)
    cache.put(_diff_id("ddd"), _listing("ddd"), scope="two")
    assert cache.get(_diff_id("aaa"), scope="one") is None
    assert not (directory / "daemons" / layer_cache.scope_dir_name("one")).exists()  # emptied, removed
    assert cache.get(_diff_id("bbb")) == _listing("bbb")
    assert cache.get(_diff_id("ccc"), scope="two") == _listing("ccc")
    assert cache.get(_diff_id("ddd"), scope="two") == _listing("ddd")


# --- planted files -------------------------------------------------------------------------------


def _get_within(cache: LayerCache, diff_id: str, seconds: float = 5.0) -> LayerListing | None:
    """`cache.get` in a thread: a read that blocks fails the test instead of hanging it."""
    result: list[LayerListing | None] = []
    thread = threading.Thread(target=lambda: result.append(cache.get(diff_id)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, "reading the cache file blocked"
    return result[0]


def test_a_planted_fifo_is_a_miss_and_does_not_block(cache: LayerCache, directory: Path) -> None:
    diff_id = _diff_id("fifo")
    directory.mkdir(mode=0o700)
    os.mkfifo(_file(directory, diff_id), 0o600)
    assert _get_within(cache, diff_id) is None
    assert not _file(directory, diff_id).exists()


@pytest.mark.parametrize("target", ["/dev/zero", "valid listing elsewhere"])
def test_a_planted_symlink_is_not_followed(cache: LayerCache, directory: Path, tmp_path: Path, target: str) -> None:
    diff_id = _diff_id("symlink")
    if target != "/dev/zero":
        LayerCache(tmp_path / "elsewhere").put(diff_id, _listing("elsewhere"))
        target = str(_file(tmp_path / "elsewhere", diff_id))
    directory.mkdir(mode=0o700)
    _file(directory, diff_id).symlink_to(target)
    assert _get_within(cache, diff_id) is None
    assert not _file(directory, diff_id).is_symlink()
    assert os.path.exists(target)


def test_a_file_of_another_user_is_a_miss(cache: LayerCache, directory: Path) -> None:
    diff_id = _diff_id("foreign")
    cache.put(diff_id, _listing("foreign"))
    os.chown(_file(directory, diff_id), 1000, 1000)
    assert cache.get(diff_id) is None


def test_a_file_larger_than_the_bound_is_a_miss(tmp_path: Path, directory: Path) -> None:
    size = _file_size(tmp_path)
    diff_id = _diff_id("large")
    LayerCache(directory).put(diff_id, _listing("large"))
    assert LayerCache(directory, max_bytes=size // 2).get(diff_id) is None
    assert not _file(directory, diff_id).exists()


def _bomb(diff_id: str, padding: int) -> bytes:
    """A valid document with `padding` bytes of JSON whitespace in it: a few hundred KB that
    inflate to hundreds of MB."""
    compressor = zlib.compressobj(9)
    document = json.dumps(_valid_document(diff_id)).encode()
    parts = [compressor.compress(document[:1])]
    spaces = b" " * (1 << 20)
    parts.extend(compressor.compress(spaces) for _ in range(padding >> 20))
    parts.append(compressor.compress(document[1:]))
    parts.append(compressor.flush())
    return HEADER + b"".join(parts)


def test_a_zlib_bomb_is_a_miss_without_inflating_it(cache: LayerCache, directory: Path) -> None:
    diff_id = _diff_id("bomb")
    directory.mkdir(mode=0o700)
    data = _bomb(diff_id, 256 << 20)
    assert len(data) < 1 << 20
    _file(directory, diff_id).write_bytes(data)
    tracemalloc.start()
    try:
        assert cache.get(diff_id) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Inflating stops at a multiple of the file's size (about 64 MiB here), far short of 256 MiB.
    assert peak < 96 << 20
    assert not _file(directory, diff_id).exists()


def test_a_little_padding_is_not_a_bomb(cache: LayerCache, directory: Path) -> None:
    diff_id = _diff_id("padded")
    directory.mkdir(mode=0o700)
    _file(directory, diff_id).write_bytes(
        HEADER + zlib.compress(json.dumps(_valid_document(diff_id), indent=40).encode())
    )
    assert cache.get(diff_id) is not None


WRONG_COLUMNS: dict[str, dict[str, object]] = {
    "negative size": {"size": [1, -2]},
    "size as a string": {"size": ["1", 2]},
    "size as a float": {"size": [1.0, 2]},
    "size as a bool": {"size": [True, 2]},
    "size too large": {"size": [2**63, 2]},
    "size null": {"size": [None, 2]},
    "path as a number": {"path": ["a", 7]},
    "path null": {"path": [None, "b"]},
    "paths not a list": {"path": "ab", "size": [1, 2]},
    "link as a number": {"link": [[0], [2]]},
    "mode as a string": {"mode": [["644"], [2]]},
    "mode too large": {"mode": [[0o10000], [2]]},
    "negative mode": {"mode": [[-1], [2]]},
    "mode as a bool": {"mode": [[True], [2]]},
    "negative uid": {"uid": [[-1], [2]]},
    "uid too large": {"uid": [[2**32], [2]]},
    "gid as a float": {"gid": [[0.5], [2]]},
    "type as a number": {"type": [[1], [2]]},
    "type null": {"type": [[None], [2]]},
    "count as a bool": {"mode": [[420, 493], [True, 1]]},
    "count as a float": {"mode": [[420], [2.0]]},
    "zero count": {"mode": [[420, 493, 0], [2, 0, 0]]},
    "runs as a dict": {"mode": {"420": 2}},
    "runs of three": {"mode": [[420], [2], []]},
    "deleted path as a number": {"deleted": [1]},
    "deleted as a string": {"deleted": "a"},
    "opaque null": {"opaque": [None]},
    "opaque as a dict": {"opaque": {"a": 1}},
}


@pytest.mark.parametrize("changes", WRONG_COLUMNS.values(), ids=WRONG_COLUMNS.keys())
def test_a_column_of_the_wrong_type_or_range_is_a_miss(
    cache: LayerCache, directory: Path, changes: dict[str, object]
) -> None:
    """Such a listing would crash the analysis (a str size) or pass silently (a negative one)."""
    diff_id = _diff_id("wrong column")
    directory.mkdir(mode=0o700)
    _file(directory, diff_id).write_bytes(_with(diff_id, **changes))
    assert cache.get(diff_id) is None
    assert not _file(directory, diff_id).exists()


def test_the_largest_valid_values_load(cache: LayerCache) -> None:
    entry = LayerEntry("x", EntryType.FILE, 2**63 - 1, 0o7777, 2**32 - 1, 2**32 - 1)
    cache.put(_diff_id("largest"), LayerListing((entry,)))
    assert cache.get(_diff_id("largest")) == LayerListing((entry,))


# --- the directory itself ------------------------------------------------------------------------


def _planted_file(directory: Path, diff_id: str) -> None:
    """A valid cache file written by someone else into `directory`."""
    LayerCache(directory.parent / "source").put(diff_id, _listing("planted"))
    directory.mkdir(exist_ok=True)
    _file(directory, diff_id).write_bytes(_file(directory.parent / "source", diff_id).read_bytes())


@pytest.mark.parametrize(("mode", "uid"), [(0o755, 0), (0o750, 0), (0o701, 0), (0o770, 0), (0o700, 1000)])
def test_a_directory_open_to_others_or_not_the_users_is_not_used(directory: Path, mode: int, uid: int) -> None:
    diff_id = _diff_id("planted")
    _planted_file(directory, diff_id)
    directory.chmod(mode)
    os.chown(directory, uid, 0)
    cache = LayerCache(directory)
    assert cache.problem is None
    assert cache.get(diff_id) is None
    assert cache.problem is not None and str(directory) in cache.problem
    first = cache.problem
    cache.put(_diff_id("new"), _listing("new"))
    assert not _file(directory, _diff_id("new")).exists()
    assert _file(directory, diff_id).exists()  # not ours to clean up
    assert cache.problem == first


def test_a_directory_that_is_a_symlink_is_not_used(tmp_path: Path, directory: Path) -> None:
    diff_id = _diff_id("planted")
    real = tmp_path / "real"
    _planted_file(real, diff_id)
    real.chmod(0o700)
    directory.symlink_to(real)
    cache = LayerCache(directory)
    cache.put(_diff_id("new"), _listing("new"))
    assert cache.get(diff_id) is None
    assert not _file(real, _diff_id("new")).exists()
    assert cache.problem is not None and "symlink" in cache.problem


def test_a_daemon_store_that_is_a_symlink_is_not_used(cache: LayerCache, directory: Path, tmp_path: Path) -> None:
    diff_id = _diff_id("planted")
    _planted_file(tmp_path / "elsewhere", diff_id)
    (tmp_path / "elsewhere").chmod(0o700)
    directory.mkdir(mode=0o700)
    (directory / "daemons").mkdir(mode=0o700)
    (directory / "daemons" / layer_cache.scope_dir_name("daemon")).symlink_to(tmp_path / "elsewhere")
    assert cache.get(diff_id, scope="daemon") is None
    assert cache.problem is not None


def test_a_healthy_directory_has_no_problem(cache: LayerCache) -> None:
    cache.put(_diff_id("one"), _listing("one"), scope="daemon")
    cache.put(_diff_id("two"), _listing("two"))
    assert cache.get(_diff_id("one"), scope="daemon") == _listing("one")
    assert cache.problem is None
