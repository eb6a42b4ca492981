"""Reading layers against the private daemon: both sources agree, the cache, cancelling, containers,
and `dockerscope analyze`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import docker
import pytest

from conftest import APP_IMAGE, BASE_IMAGE, CHANGES_CONTAINER, FIXTURE_IMAGES, TOOL_IMAGE, WASTE_IMAGE
from dockerscope.service import DockerService, ObjectNotFound
from dockerscope.service.file_analysis import FileStatus
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_contents import (
    WRITABLE_LAYER,
    SourceChoice,
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
def test_overlay2_directories_and_the_export_stream_give_the_same_listings(api: docker.APIClient, image: str) -> None:
    inspect = api.inspect_image(image)
    overlay, overlay_sources = read_image_layers(
        api, inspect, choice=SourceChoice.OVERLAY, cache=None, cancel=None, on_progress=None
    )
    exported, export_sources = read_image_layers(
        api, inspect, choice=SourceChoice.EXPORT, cache=None, cancel=None, on_progress=None
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
        stored = {path.name for path in tmp_path.iterdir()}
        tool = await service.image_contents(TOOL_IMAGE)  # shares the base's two layers with the app
        assert tool.sources == ("cache", "overlay2")
        new_files = {path.name for path in tmp_path.iterdir()} - stored
        assert len(new_files) == 1
        base_layers = api.inspect_image(BASE_IMAGE)["RootFS"]["Layers"]
        assert all(cache.get(diff_id) is not None for diff_id in base_layers)
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


def run_analyze(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", *arguments], capture_output=True, text=True, timeout=120
    )


def test_analyze_json_reports_every_layer_and_the_waste(api: docker.APIClient) -> None:
    result = run_analyze(WASTE_IMAGE, "--json", "--no-cache")
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


def test_analyze_ci_fails_on_a_wasteful_image_and_passes_with_looser_rules() -> None:
    failing = run_analyze(WASTE_IMAGE, "--ci")
    assert failing.returncode == 1
    assert "FAIL: lowestEfficiency" in failing.stdout
    assert "SKIP: highestWastedBytes: rule disabled" in failing.stdout
    assert "Result:FAIL [Total:3] [Passed:0] [Failed:2] [Warn:0] [Skipped:1]" in failing.stdout
    passing = run_analyze(
        WASTE_IMAGE,
        "--ci",
        "--lowest-efficiency=0.5",
        "--highest-wasted-bytes=2MB",
        "--highest-user-wasted-percent=disabled",
    )
    assert passing.returncode == 0, passing.stdout
    assert "Result:PASS [Total:3] [Passed:2] [Failed:0] [Warn:0] [Skipped:1]" in passing.stdout
    clean = run_analyze(BASE_IMAGE, "--ci")
    assert clean.returncode == 0, clean.stdout
    assert "efficiency: 100.00 %" in clean.stdout


def test_analyze_says_clearly_what_went_wrong() -> None:
    missing = run_analyze("dockerscope-test/no-such-image:1")
    assert missing.returncode == 2
    assert "no-such-image" in missing.stderr and "No such image" in missing.stderr
    bad = run_analyze(WASTE_IMAGE, "--ci", "--highest-wasted-bytes=lots")
    assert bad.returncode == 2
    assert "not a size" in bad.stderr


async def test_an_image_that_is_gone_is_reported_as_not_found(service: DockerService) -> None:
    with pytest.raises(ObjectNotFound):
        await service.image_contents("sha256:" + "0" * 64)


def test_analyze_piped_into_a_reader_that_stops_early_ends_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "dockerscope", "analyze", WASTE_IMAGE, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` having read enough
    assert process.wait(timeout=120) == 141
    assert process.stderr.read() == b""
