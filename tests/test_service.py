"""The service against the real private daemon."""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import os
import tarfile
from pathlib import Path
from typing import Any

import docker
import pytest

from conftest import APP_IMAGE, BASE_IMAGE, FIXTURE_IMAGES, HUGE_IMAGE, IMPORTED_IMAGE, REBUILT_IMAGE, TOOL_IMAGE
from dockerscope.service import (
    Connection,
    DaemonPermissionDenied,
    DaemonUnreachable,
    DockerService,
    LayerKind,
    MappingQuality,
    ObjectNotFound,
)
from dockerscope.service.sharing import chain_ids


def _summary(snapshot: Any, image_id: str) -> Any:
    return next(image for image in snapshot.images if image.id == image_id)


def _saved_config(api: docker.APIClient, image: str) -> dict[str, Any]:
    """The image config from `docker save`: the only place that says which history entries are
    empty layers."""
    buffer = io.BytesIO(b"".join(api.get_image(image)))
    with tarfile.open(fileobj=buffer) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        return json.load(archive.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]


async def test_snapshot_lists_every_image_with_all_tags(service: DockerService, api: docker.APIClient) -> None:
    snapshot = await service.snapshot()
    by_id = {image.id: image for image in snapshot.images}
    app = api.inspect_image(APP_IMAGE)
    assert set(by_id[app["Id"]].tags) >= {"dockerscope-test/app:1", "dockerscope-test/app:latest"}
    assert by_id[app["Id"]].size == app["Size"]
    for name in (BASE_IMAGE, TOOL_IMAGE, IMPORTED_IMAGE, REBUILT_IMAGE):
        assert api.inspect_image(name)["Id"] in by_id
    dangling = [image for image in snapshot.images if image.dangling]
    assert dangling, "the rebuilt fixture leaves a dangling image"
    assert all(image.name == "<none>" and image.tags == () for image in dangling)
    assert {image.id for image in dangling} == {i["Id"] for i in api.images(filters={"dangling": True})}
    assert snapshot.daemon.api_version == api.api_version
    assert snapshot.daemon.engine_version == api.version()["Version"]


async def test_container_counts_follow_the_containers_of_each_image(
    service: DockerService, api: docker.APIClient
) -> None:
    tool_id = api.inspect_image(TOOL_IMAGE)["Id"]
    before = await service.snapshot()
    created = [api.create_container(TOOL_IMAGE, network_disabled=True)["Id"] for _ in range(2)]
    try:
        after = await service.snapshot()
        assert _summary(after, tool_id).containers == _summary(before, tool_id).containers + 2
        assert after.container_count == before.container_count + 2
        assert after.container_count == len(api.containers(all=True))
    finally:
        for container in created:
            api.remove_container(container, force=True)


async def test_a_poll_costs_two_requests_whatever_the_number_of_images(
    service: DockerService, api: docker.APIClient
) -> None:
    await service.snapshot()  # the first poll also negotiates the API version
    start = service.request_count
    await service.snapshot()
    per_poll = service.request_count - start
    extra_tags = [f"many{n}" for n in range(6)]
    for tag in extra_tags:
        api.tag(BASE_IMAGE, "dockerscope-test/many", tag)
    try:
        start = service.request_count
        snapshot = await service.snapshot()
        assert service.request_count - start == per_poll == 2
        assert sum(1 for i in snapshot.images for t in i.tags if t.startswith("dockerscope-test/many:")) == 6
    finally:
        for tag in extra_tags:
            api.remove_image(f"dockerscope-test/many:{tag}")


async def test_the_first_poll_takes_the_answers_prefetched_while_the_ui_loads(
    service: DockerService, api: docker.APIClient, throwaway_image: str
) -> None:
    service.prefetch()
    await asyncio.sleep(0.5)  # the UI loading meanwhile
    sent = service.request_count
    assert sent == 4  # version negotiation, version, images, containers
    snapshot = await service.snapshot()
    assert service.request_count == sent
    assert throwaway_image in {image.id for image in snapshot.images}
    assert snapshot.daemon.engine_version == api.version()["Version"]
    await service.snapshot()
    assert service.request_count == sent + 2  # later polls ask the daemon again


async def test_concurrent_polls_share_one_request_set(service: DockerService) -> None:
    await service.snapshot()
    start = service.request_count
    first, second = await asyncio.gather(service.snapshot(), service.snapshot())
    assert first is second
    assert service.request_count - start == 2


@pytest.mark.parametrize("image", [APP_IMAGE, BASE_IMAGE, TOOL_IMAGE, IMPORTED_IMAGE, REBUILT_IMAGE, HUGE_IMAGE])
async def test_layer_mapping_matches_the_saved_image_config(
    service: DockerService, api: docker.APIClient, image: str
) -> None:
    snapshot = await service.snapshot()
    summary = _summary(snapshot, api.inspect_image(image)["Id"])
    detail = await service.image_detail(summary)
    config = _saved_config(api, image)
    truth = [not entry.get("empty_layer", False) for entry in config["history"]]
    assert [row.kind is LayerKind.LAYER for row in detail.layers.rows] == truth
    assert [row.diff_id for row in detail.layers.rows if row.diff_id] == config["rootfs"]["diff_ids"]
    assert [row.chain_id for row in detail.layers.rows if row.chain_id] == list(chain_ids(config["rootfs"]["diff_ids"]))
    assert detail.layers.total_size == detail.inspect["Size"] == summary.size
    assert detail.layers.quality is not MappingQuality.AMBIGUOUS


@pytest.mark.skipif(os.geteuid() != 0, reason="the daemon's layer database is readable by root only")
async def test_chain_ids_are_the_keys_of_the_daemons_layer_database(
    service: DockerService, api: docker.APIClient
) -> None:
    """dockerd stores each layer under its chain id, with the layer's diff id and its parent's chain id."""
    info = api.info()
    layerdb = Path(info["DockerRootDir"]) / "image" / info["Driver"] / "layerdb" / "sha256"
    stored = {path.name for path in layerdb.iterdir()}
    snapshot = await service.snapshot()
    for name in FIXTURE_IMAGES:
        detail = await service.image_detail(_summary(snapshot, api.inspect_image(name)["Id"]))
        rows = [row for row in detail.layers.rows if row.chain_id]
        assert len(rows) == len(detail.inspect["RootFS"]["Layers"]), name
        for index, row in enumerate(rows):
            key = str(row.chain_id).removeprefix("sha256:")
            assert key in stored, name
            assert (layerdb / key / "diff").read_text() == row.diff_id
            parent = layerdb / key / "parent"
            assert parent.read_text() == rows[index - 1].chain_id if index else not parent.exists()


async def test_app_image_needs_the_instruction_rules(service: DockerService, api: docker.APIClient) -> None:
    summary = _summary(await service.snapshot(), api.inspect_image(APP_IMAGE)["Id"])
    stack = (await service.image_detail(summary)).layers
    assert stack.quality is MappingQuality.INFERRED
    zero_size_layers = [row.instruction for row in stack.rows if row.kind is LayerKind.LAYER and row.size == 0]
    assert zero_size_layers == ["WORKDIR /app", "RUN rm -f /tmp/scratch"]
    assert stack.layer_count == 7


async def test_details_are_cached_per_image_until_its_tags_change(
    service: DockerService, api: docker.APIClient
) -> None:
    summary = _summary(await service.snapshot(), api.inspect_image(TOOL_IMAGE)["Id"])
    first = await service.image_detail(summary)
    start = service.request_count
    assert await service.image_detail(summary) is first
    assert service.request_count == start
    api.tag(TOOL_IMAGE, "dockerscope-test/tool", "retagged")
    try:
        retagged = _summary(await service.snapshot(), summary.id)
        start = service.request_count
        detail = await service.image_detail(retagged)
        assert "dockerscope-test/tool:retagged" in detail.inspect["RepoTags"]
        assert service.request_count - start == 2
    finally:
        api.remove_image("dockerscope-test/tool:retagged")


async def test_an_image_removed_meanwhile_is_reported_as_not_found(
    service: DockerService, api: docker.APIClient, throwaway_image: str
) -> None:
    summary = _summary(await service.snapshot(), throwaway_image)
    api.remove_image(throwaway_image, force=True)
    with pytest.raises(ObjectNotFound):
        await service.image_detail(summary)
    assert all(image.id != throwaway_image for image in (await service.snapshot()).images)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("unix:///nonexistent/dockerscope/docker.sock", "the socket does not exist"),
        ("tcp://127.0.0.1:1", "connection refused"),
    ],
)
async def test_unreachable_daemons_raise_a_typed_error(host: str, reason: str) -> None:
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    try:
        with pytest.raises(DaemonUnreachable) as raised:
            await service.snapshot()
        assert raised.value.reason == reason
        assert raised.value.host == host
        assert "running" in raised.value.hint  # is dockerd (or the daemon at that address) running?
    finally:
        service.close()


def _snapshot_as_nobody(host: str, results: Any) -> None:
    os.setgid(65534)
    os.setuid(65534)
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    try:
        asyncio.run(service.snapshot())
        results.put("connected")
    except Exception as exc:
        results.put(f"{type(exc).__name__}|{getattr(exc, 'reason', exc)}")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_a_socket_the_user_may_not_open_is_a_permission_error(docker_host: str) -> None:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_snapshot_as_nobody, args=(docker_host, results))
    child.start()
    child.join(30)
    outcome = results.get(timeout=5)
    assert outcome.startswith(DaemonPermissionDenied.__name__), outcome
