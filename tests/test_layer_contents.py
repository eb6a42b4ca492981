"""Reading layers against the private daemon: both sources agree, the cache, cancelling, containers,
and `dockerscope analyze`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from conftest import APP_IMAGE, BASE_IMAGE, CHANGES_CONTAINER, FIXTURE_IMAGES, TOOL_IMAGE, WASTE_IMAGE
from dockerscope.service import DockerService, ObjectNotFound
from dockerscope.service.file_analysis import FileStatus
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_contents import (
    WRITABLE_LAYER,
    ContentsUnavailable,
    Daemon,
    SourceChoice,
    analyze_container,
    listing_from_diff,
    read_image_layers,
)
from dockerscope.service.layer_files import EntryType, ReadCancelled

HOSTILE_DIFF = [
    {"Path": "/app", "Kind": 0},
    {"Path": "/app/new.txt", "Kind": 1},
    {"Path": "/app/gone", "Kind": 2},
]


@pytest.mark.parametrize("image", [*FIXTURE_IMAGES])
def test_overlay2_directories_and_the_export_stream_give_the_same_listings(
    api: docker.APIClient, docker_host: str, image: str
) -> None:
    inspect = api.inspect_image(image)
    overlay, overlay_sources = read_image_layers(
        Daemon(api, docker_host), inspect, choice=SourceChoice.OVERLAY, cache=None, cancel=None, on_progress=None
    )
    exported, export_sources = read_image_layers(
        Daemon(api, docker_host), inspect, choice=SourceChoice.EXPORT, cache=None, cancel=None, on_progress=None
    )
    assert (overlay_sources, export_sources) == (("overlay2",), ("export",))
    assert [diff_id for diff_id, _ in overlay] == inspect["RootFS"]["Layers"]
    for (diff_id, from_disk), (_, from_stream) in zip(overlay, exported, strict=True):
        assert sorted(from_disk.entries) == sorted(from_stream.entries), diff_id
        assert from_disk.deleted == from_stream.deleted
        assert from_disk.opaque == from_stream.opaque


async def test_the_waste_image_analysis_matches_its_dockerfile(service: DockerService) -> None:
    contents = await service.image_contents(WASTE_IMAGE, use_cache=False)
    files = contents.files
    assert len(files.layers) == 5
    deleting = files.layers[3]
    statuses = {change.path: change.status for change in deleting.changes}
    assert statuses["data/keep/config"] is FileStatus.MODIFIED
    assert statuses["data/big.bin"] is FileStatus.REMOVED
    assert statuses["data/gone"] is FileStatus.REMOVED
    assert statuses["data"] is FileStatus.UNCHANGED
    assert files.layers[4].opaque == frozenset({"opq"})
    big = next(item for item in files.wasted_paths if item.path == "data/big.bin")
    assert (big.wasted, big.kept, big.layers) == (1048576, False, (2,))
    assert files.wasted_bytes == files.total_bytes - files.kept_bytes
    assert files.layers[2].wasted == 1048576 + 3 + 4 + 2  # big.bin, config's first copy, opq/old/file, gone/deep/x


async def test_a_cached_layer_is_read_once_and_shared_between_images(
    connection, api: docker.APIClient, tmp_path: Path
) -> None:
    cache = LayerCache(tmp_path)
    service = DockerService(connection, cache=cache)
    later = DockerService(connection, cache=cache)  # another dockerscope run: nothing in memory
    try:
        first = await service.image_contents(APP_IMAGE)
        assert first.sources == ("overlay2",)
        again = await service.image_contents(APP_IMAGE)
        assert again.sources == ("memory",)
        assert again.files is first.files
        from_disk = await later.image_contents(APP_IMAGE)
        assert from_disk.sources == ("cache",)
        assert from_disk.files == first.files
        stored = {path.name for path in tmp_path.rglob("*")}
        tool = await service.image_contents(TOOL_IMAGE)  # shares the base's two layers with the app
        assert tool.sources == ("cache", "overlay2")
        new_files = {path.name for path in tmp_path.rglob("*")} - stored
        assert len(new_files) == 1
        # Read from this daemon's own directories: cached for this daemon only, not verified.
        base_layers = api.inspect_image(BASE_IMAGE)["RootFS"]["Layers"]
        assert all(cache.get(diff_id) is None for diff_id in base_layers)
        scoped = {path.name for path in (tmp_path / "daemons").glob("*/*")}
        assert {diff_id.removeprefix("sha256:") + ".v2" for diff_id in base_layers} <= scoped
    finally:
        service.close()
        later.close()


async def test_a_set_cancel_event_stops_the_reading(service: DockerService) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ReadCancelled):
        await service.image_contents(APP_IMAGE, use_cache=False, cancel=cancel)
    with pytest.raises(ReadCancelled):
        await service.image_contents(APP_IMAGE, use_cache=False, cancel=cancel, choice=SourceChoice.EXPORT)


async def test_a_container_gets_its_writable_layer_on_top(service: DockerService, api: docker.APIClient) -> None:
    contents = await service.container_contents(CHANGES_CONTAINER)
    image_layers = api.inspect_image(APP_IMAGE)["RootFS"]["Layers"]
    assert len(contents.files.layers) == len(image_layers) + 1
    writable = contents.files.layers[-1]
    assert writable.diff_id == WRITABLE_LAYER
    assert contents.sources[-1] == "overlay2 upper dir"
    statuses = {change.path: change.status for change in writable.changes}
    expected = {0: FileStatus.MODIFIED, 1: FileStatus.ADDED, 2: FileStatus.REMOVED}
    for change in api.diff(CHANGES_CONTAINER):
        path = change["Path"].lstrip("/")
        if change["Kind"] == 0 and statuses[path] is FileStatus.UNCHANGED:
            continue  # docker diff calls a directory changed when only its contents changed
        assert statuses[path] is expected[change["Kind"]], path


def test_docker_diff_becomes_a_listing_when_the_upper_directory_is_out_of_reach() -> None:
    listing = listing_from_diff(HOSTILE_DIFF)
    types = {entry.path: entry.type for entry in listing.entries}
    assert types == {"app": EntryType.DIR, "app/new.txt": EntryType.FILE}
    assert listing.deleted == frozenset({"app/gone"})


def analyze_env(docker_host: str, **extra: str) -> dict[str, str]:
    """The environment of an `analyze` subprocess: it finds the test daemon through DOCKER_HOST."""
    return {**os.environ, **extra, "DOCKER_HOST": docker_host}


def run_analyze(docker_host: str, *arguments: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=analyze_env(docker_host, **extra_env),
    )


def test_analyze_json_reports_every_layer_and_the_waste(docker_host: str, api: docker.APIClient) -> None:
    result = run_analyze(docker_host, WASTE_IMAGE, "--json", "--no-cache")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [layer["diff_id"] for layer in report["layers"]] == api.inspect_image(WASTE_IMAGE)["RootFS"]["Layers"]
    assert report["layers"][3]["removed"] == 2
    assert report["layers"][3]["modified"] == 1
    assert "version-two" in report["layers"][3]["instruction"]
    assert report["image"]["top_wasted"][0] == {
        "path": "/data/big.bin",
        "copies": 1,
        "wasted_bytes": 1048576,
        "layers": [2],
        "removed": True,
    }
    image = report["image"]
    assert image["wasted_bytes"] == image["size_bytes"] - image["kept_bytes"]
    assert image["efficiency"] == pytest.approx(image["kept_bytes"] / image["size_bytes"])
    assert image["source"] == "overlay2"


def test_analyze_ci_fails_on_a_wasteful_image_and_passes_with_looser_rules(docker_host: str) -> None:
    failing = run_analyze(docker_host, WASTE_IMAGE, "--ci")
    assert failing.returncode == 1
    assert "FAIL: lowestEfficiency" in failing.stdout
    assert "SKIP: highestWastedBytes: rule disabled" in failing.stdout
    assert "Result:FAIL [Total:3] [Passed:0] [Failed:2] [Warn:0] [Skipped:1]" in failing.stdout
    passing = run_analyze(
        docker_host,
        WASTE_IMAGE,
        "--ci",
        "--lowest-efficiency=0.5",
        "--highest-wasted-bytes=2MB",
        "--highest-user-wasted-percent=disabled",
    )
    assert passing.returncode == 0, passing.stdout
    assert "Result:PASS [Total:3] [Passed:2] [Failed:0] [Warn:0] [Skipped:1]" in passing.stdout
    clean = run_analyze(docker_host, BASE_IMAGE, "--ci")
    assert clean.returncode == 0, clean.stdout
    assert "efficiency: 100.00 %" in clean.stdout


def test_analyze_says_clearly_what_went_wrong(docker_host: str) -> None:
    missing = run_analyze(docker_host, "dockerscope-test/no-such-image:1")
    assert missing.returncode == 2
    assert "no-such-image" in missing.stderr and "No such image" in missing.stderr
    bad = run_analyze(docker_host, WASTE_IMAGE, "--ci", "--highest-wasted-bytes=lots")
    assert bad.returncode == 2
    assert "not a size" in bad.stderr


async def test_an_image_that_is_gone_is_reported_as_not_found(service: DockerService) -> None:
    with pytest.raises(ObjectNotFound):
        await service.image_contents("sha256:" + "0" * 64)


def test_analyze_piped_into_a_reader_that_stops_early_ends_quietly(docker_host: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "dockerscope", "analyze", WASTE_IMAGE, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=analyze_env(docker_host),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` having read enough
    assert process.wait(timeout=120) == 141
    assert process.stderr.read() == b""


# --- hostile daemons and the shared cache --------------------------------------------------------


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    def close(self) -> None:
        pass


class HostileDaemon:
    """A daemon that claims an honest image's diff ids for layers of its own choosing: directories
    it made, or an export of another image. Counts its `/info` answers."""

    def __init__(self, info: Any, inspect: dict[str, Any], export: bytes = b"") -> None:
        self._info = info
        self.inspect = inspect
        self.export = export
        self.container: dict[str, Any] = {}
        self.info_calls = 0
        self.hooks: dict[str, list[Any]] = {"response": []}  # as an APIClient has

    def info(self) -> Any:
        self.info_calls += 1
        return self._info

    def get_image(self, image_id: str, chunk_size: int) -> _Stream:
        return _Stream(self.export)

    def inspect_image(self, image_id: str) -> dict[str, Any]:
        return self.inspect

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        return self.container

    def diff(self, container_id: str) -> list[dict[str, Any]]:
        return [{"Path": "/app/new.txt", "Kind": 1}]


def _hostile_layers(root: Path, count: int) -> dict[str, str]:
    """`count` layer directories under `root/overlay2` as a daemon lays them out, each holding one
    small file: a clean, efficient image."""
    (root / "overlay2").mkdir(parents=True, mode=0o710)
    dirs = []
    for number in range(count):
        diff = root / "overlay2" / f"hostile{number}" / "diff"
        diff.mkdir(parents=True)
        (diff / f"clean-{number}.txt").write_text("clean")
        dirs.append(str(diff))
    return {"UpperDir": dirs[-1], "LowerDir": ":".join(reversed(dirs[:-1]))}


def _plant(api: docker.APIClient, image: str, tmp_path: Path, cache: LayerCache, daemon_id: str) -> HostileDaemon:
    """A local daemon on another socket, claiming `daemon_id`, reads `image`'s diff ids from its own
    directories into `cache`."""
    layers = api.inspect_image(image)["RootFS"]["Layers"]
    root = tmp_path / "hostile-root"
    inspect = {
        "Id": "sha256:" + "e" * 64,
        "RootFS": {"Type": "layers", "Layers": layers},
        "GraphDriver": {"Name": "overlay2", "Data": _hostile_layers(root, len(layers))},
    }
    hostile = HostileDaemon({"ID": daemon_id, "DockerRootDir": str(root), "SecurityOptions": []}, inspect)
    planted, sources = read_image_layers(
        Daemon(hostile, "unix:///tmp/hostile.sock"),
        inspect,
        choice=SourceChoice.AUTO,
        cache=cache,
        cancel=None,
        on_progress=None,
    )
    assert sources == ("overlay2",)
    assert {entry.path for _, listing in planted for entry in listing.entries} == {
        f"clean-{number}.txt" for number in range(len(layers))
    }
    return hostile


async def test_a_listing_a_hostile_daemon_read_is_never_shown_for_another_daemons_image(
    connection, api: docker.APIClient, tmp_path: Path
) -> None:
    """The hostile daemon even claims the honest daemon's ID: its listings stay its own."""
    cache = LayerCache(tmp_path / "cache")
    hostile = _plant(api, WASTE_IMAGE, tmp_path, cache, str(api.info()["ID"]))
    assert hostile.info_calls == 1
    service = DockerService(connection, cache=cache)
    try:
        honest = await service.image_contents(WASTE_IMAGE)
        truth = await service.image_contents(WASTE_IMAGE, use_cache=False)
    finally:
        service.close()
    assert "cache" not in honest.sources
    assert honest.files == truth.files
    assert "data/big.bin" in {change.path for change in honest.files.layers[2].changes}


def test_analyze_ci_judges_the_image_not_a_hostile_daemons_listing(
    docker_host: str, api: docker.APIClient, tmp_path: Path
) -> None:
    cache_home = tmp_path / "xdg"
    _plant(api, WASTE_IMAGE, tmp_path, LayerCache(cache_home / "dockerscope" / "layers"), "hostile")
    result = run_analyze(docker_host, WASTE_IMAGE, "--ci", XDG_CACHE_HOME=str(cache_home))
    assert result.returncode == 1, result.stdout
    assert "FAIL: lowestEfficiency" in result.stdout


def test_a_daemon_without_an_id_gets_nothing_cached(api: docker.APIClient, tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache")
    hostile = _plant(api, BASE_IMAGE, tmp_path, cache, "")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.v2"))
    layers = hostile.inspect["RootFS"]["Layers"]
    assert all(cache.get(diff_id, scope="") is None for diff_id in layers)


def test_an_export_whose_layers_are_not_the_claimed_ones_is_refused_and_not_cached(
    api: docker.APIClient, tmp_path: Path
) -> None:
    """A remote daemon sends another image's export under the app image's diff ids."""
    stream = api.get_image(WASTE_IMAGE)
    try:
        export = b"".join(stream)
    finally:
        stream.close()
    inspect = {
        "Id": "sha256:" + "e" * 64,
        "RootFS": {"Type": "layers", "Layers": api.inspect_image(APP_IMAGE)["RootFS"]["Layers"]},
    }
    hostile = HostileDaemon({"ID": "hostile"}, inspect, export)
    cache = LayerCache(tmp_path / "cache")
    with pytest.raises(ContentsUnavailable):
        read_image_layers(
            Daemon(hostile, "tcp://203.0.113.9:2375"),
            inspect,
            choice=SourceChoice.AUTO,
            cache=cache,
            cancel=None,
            on_progress=None,
        )
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.v2"))
    assert hostile.info_calls == 0  # a remote daemon's directories are never looked at


HONEST_DIR = "the honest daemon's layer directory"


@pytest.mark.parametrize(
    ("host", "upper"),
    [
        ("unix:///tmp/hostile.sock", "/etc"),
        ("unix:///tmp/hostile.sock", "/root"),
        ("tcp://203.0.113.9:2375", "/etc"),
        ("tcp://203.0.113.9:2375", HONEST_DIR),
        ("ssh://user@example", HONEST_DIR),
        ("fd://", HONEST_DIR),
    ],
)
def test_a_daemon_naming_directories_it_does_not_own_gets_no_fast_path(
    api: docker.APIClient, host: str, upper: str
) -> None:
    """Host files must not be listed as a layer: only a local daemon's own overlay2 tree is walked."""
    honest = api.inspect_image(BASE_IMAGE)
    if upper == HONEST_DIR:
        upper = honest["GraphDriver"]["Data"]["UpperDir"]
    inspect = {
        "Id": "sha256:" + "e" * 64,
        "RootFS": {"Layers": honest["RootFS"]["Layers"][-1:]},
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": upper}},
    }
    hostile = HostileDaemon({"ID": "hostile", "DockerRootDir": api.info()["DockerRootDir"]}, inspect)
    with pytest.raises(ContentsUnavailable, match="not readable here"):
        read_image_layers(
            Daemon(hostile, host), inspect, choice=SourceChoice.OVERLAY, cache=None, cancel=None, on_progress=None
        )


@pytest.mark.parametrize("upper", ["/etc", "/root", "{root}/overlay2/../../etc"])
def test_a_container_upper_dir_outside_the_daemons_tree_is_read_through_docker_diff(
    api: docker.APIClient, tmp_path: Path, upper: str
) -> None:
    root = tmp_path / "root"
    (root / "overlay2").mkdir(parents=True, mode=0o710)
    hostile = HostileDaemon({"ID": "hostile", "DockerRootDir": str(root)}, {"Id": "sha256:" + "e" * 64})
    hostile.container = {
        "Image": "sha256:" + "e" * 64,
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": upper.format(root=root)}},
    }
    contents = analyze_container(hostile, "c", host="unix:///tmp/hostile.sock", cache=None)
    assert contents.sources == ("docker diff",)
    assert not contents.sizes_known
    assert {change.path for change in contents.files.layers[-1].changes} == {"app", "app/new.txt"}
    assert hostile.info_calls == 1


@pytest.mark.parametrize(
    ("options", "fast"),
    [
        (None, True),
        ([], True),
        (["name=seccomp,profile=default"], True),
        (["name=userns"], False),
        (["name=seccomp", "name=rootless"], False),
        ("name=userns", False),
        ({"name": "userns"}, False),
    ],
)
def test_only_a_local_daemon_that_keeps_ids_gets_the_fast_path(options: object, fast: bool) -> None:
    info = {"ID": "x", "DockerRootDir": "/var/lib/docker", "SecurityOptions": options}
    assert (Daemon(HostileDaemon(info, {}), "unix:///run/docker.sock").overlay_root() is not None) is fast
    assert Daemon(HostileDaemon(info, {}), "tcp://127.0.0.1:2375").overlay_root() is None


def test_the_cache_scope_is_the_daemons_id_and_socket() -> None:
    def scope(info: object, host: str) -> str | None:
        return Daemon(HostileDaemon(info, {}), host).scope()

    assert scope({"ID": "ABCD"}, "unix:///a.sock") != scope({"ID": "ABCD"}, "unix:///b.sock")
    assert scope({"ID": "ABCD"}, "unix:///a.sock") != scope({"ID": "EFGH"}, "unix:///a.sock")
    for info in ({}, {"ID": ""}, {"ID": 7}, {"ID": ["ABCD"]}, ["ID"]):
        assert scope(info, "unix:///a.sock") is None
    assert scope({"ID": "ABCD"}, "tcp://127.0.0.1:2375") is None


def test_the_cache_scope_of_podman_is_its_storage_and_socket() -> None:
    """Podman's `/info` makes a new ID up for every answer: the scope comes from its graph root, so
    what one run read from Podman's directories is found by the next."""
    podman = {"BuildahVersion": "1.28.2", "Rootless": False, "DockerRootDir": "/var/lib/containers/storage"}

    def scope(info: object, host: str = "unix:///run/podman/podman.sock") -> str | None:
        return Daemon(HostileDaemon(info, {}), host).scope()

    assert scope(podman | {"ID": "1"}) == scope(podman | {"ID": "2"}) is not None
    assert scope(podman) != scope(podman, "unix:///tmp/other.sock")
    assert scope(podman) != scope(podman | {"DockerRootDir": "/srv/storage"})
    for root in (None, "", 7):
        assert scope(podman | {"DockerRootDir": root}) is None
    assert scope(podman, "tcp://127.0.0.1:8080") is None


@pytest.mark.parametrize(("rootless", "fast"), [(False, True), (True, False), (None, False), ("false", False)])
def test_rootless_podman_gets_no_fast_path(rootless: object, fast: bool) -> None:
    """Rootless Podman stores files under shifted ids, as rootless Docker does."""
    info = {"BuildahVersion": "1.28.2", "Rootless": rootless, "DockerRootDir": "/var/lib/containers/storage"}
    assert (Daemon(HostileDaemon(info, {}), "unix:///run/podman/podman.sock").overlay_root() is not None) is fast
