"""Containers, writable layers, layer sharing and base images, against the real private daemon and
the fixture containers and images scripts/build-fixtures.sh makes."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import docker
import pytest

from conftest import (
    APP_IMAGE,
    BASE_IMAGE,
    CHAIN_A_IMAGE,
    CHAIN_B_IMAGE,
    CHAIN_C_IMAGE,
    CHANGES_CONTAINER,
    CREATED_CONTAINER,
    EXITED_CONTAINER,
    PAUSED_CONTAINER,
    RUNNING_CONTAINER,
    TOOL_IMAGE,
)
from dockerscope.service import DockerService, ObjectNotFound
from dockerscope.service.image_context import CONTEXT_CONCURRENCY
from dockerscope.service.models import Change, ChangeKind, ContainerSummary, ImageSummary, Snapshot
from dockerscope.service.sharing import chain_ids


def _container(snapshot: Snapshot, name: str) -> ContainerSummary:
    return next(container for container in snapshot.containers if container.name == name)


def _image(snapshot: Snapshot, api: docker.APIClient, name: str) -> ImageSummary:
    image_id = api.inspect_image(name)["Id"]
    return next(image for image in snapshot.images if image.id == image_id)


def _listed(api: docker.APIClient, name: str, **kwargs: Any) -> dict[str, Any]:
    return api.containers(all=True, filters={"name": [f"^/{name}$"]}, **kwargs)[0]


# --- the container list --------------------------------------------------------------------------


async def test_the_snapshot_lists_the_fixture_containers_in_every_state(
    service: DockerService, api: docker.APIClient
) -> None:
    snapshot = await service.snapshot()
    tool_id = api.inspect_image(TOOL_IMAGE)["Id"]
    expected = {
        RUNNING_CONTAINER: ("running", None, TOOL_IMAGE),
        PAUSED_CONTAINER: ("paused", None, TOOL_IMAGE),
        EXITED_CONTAINER: ("exited", 3, TOOL_IMAGE),
        CREATED_CONTAINER: ("created", None, TOOL_IMAGE),
        CHANGES_CONTAINER: ("exited", 0, APP_IMAGE),
    }
    for name, (state, exit_code, image) in expected.items():
        container = _container(snapshot, name)
        raw = _listed(api, name)
        assert (container.state, container.exit_code, container.image) == (state, exit_code, image), name
        assert container.id == raw["Id"] == api.inspect_container(name)["Id"]
        assert container.image_id == api.inspect_image(image)["Id"]
        assert container.short_id == raw["Id"][:12]
        assert container.created is not None and int(container.created.timestamp()) == raw["Created"]
    assert _container(snapshot, EXITED_CONTAINER).status.startswith("Exited (3)")
    assert _container(snapshot, PAUSED_CONTAINER).status.endswith("(Paused)")
    assert _container(snapshot, RUNNING_CONTAINER).image_id == tool_id
    assert snapshot.container_count == len(api.containers(all=True))
    assert snapshot.running_count == len(api.containers(filters={"status": "running"}))


async def test_a_container_whose_tag_is_gone_names_its_image_by_id(
    service: DockerService, api: docker.APIClient
) -> None:
    api.tag(BASE_IMAGE, "dockerscope-test/untagged-later", "tmp")
    container = api.create_container("dockerscope-test/untagged-later:tmp", network_disabled=True)["Id"]
    try:
        assert _container_by_id(await service.snapshot(), container).image == "dockerscope-test/untagged-later:tmp"
        api.remove_image("dockerscope-test/untagged-later:tmp")
        summary = _container_by_id(await service.snapshot(), container)
        assert summary.image == summary.image_id == api.inspect_image(BASE_IMAGE)["Id"]
        assert summary.name == api.inspect_container(container)["Name"].removeprefix("/")
    finally:
        api.remove_container(container, force=True)


def _container_by_id(snapshot: Snapshot, container_id: str) -> ContainerSummary:
    return next(container for container in snapshot.containers if container.id == container_id)


# --- container detail ----------------------------------------------------------------------------


async def test_the_detail_of_a_container_that_changed_files(service: DockerService, api: docker.APIClient) -> None:
    container = _container(await service.snapshot(), CHANGES_CONTAINER)
    detail = await service.container_detail(container)

    raw = _listed(api, CHANGES_CONTAINER, size=True)
    assert detail.writable.size == raw["SizeRw"] > 0
    assert detail.writable.root_fs_size == raw["SizeRootFs"]
    assert detail.writable.changes == (
        Change("/app", ChangeKind.CHANGED),
        Change("/app/data.bin", ChangeKind.DELETED),
        Change("/app/hello.txt", ChangeKind.CHANGED),
        Change("/app/new.txt", ChangeKind.ADDED),
        Change("/app/newdir", ChangeKind.ADDED),
    )
    assert set(detail.writable.changes) == {Change(c["Path"], ChangeKind(c["Kind"])) for c in api.diff(container.id)}
    counts = [detail.writable.count(kind) for kind in (ChangeKind.ADDED, ChangeKind.CHANGED, ChangeKind.DELETED)]
    assert counts == [2, 2, 1]
    assert detail.id == container.id
    assert detail.inspect["Name"] == f"/{CHANGES_CONTAINER}"
    assert detail.inspect["HostConfig"]["NetworkMode"] == "none"
    assert detail.image is not None
    assert detail.image.id == api.inspect_image(APP_IMAGE)["Id"]
    assert [row.diff_id for row in detail.image.layers.rows if row.diff_id] == detail.image.inspect["RootFS"]["Layers"]


@pytest.mark.parametrize("name", [RUNNING_CONTAINER, PAUSED_CONTAINER, CREATED_CONTAINER])
async def test_a_container_that_changed_nothing_has_an_empty_writable_layer(
    service: DockerService, api: docker.APIClient, name: str
) -> None:
    assert api.diff(name) is None  # the API sends null, not []
    detail = await service.container_detail(_container(await service.snapshot(), name))
    assert detail.writable.changes == ()
    assert detail.writable.size == 0  # the daemon leaves a zero SizeRw out
    assert detail.writable.root_fs_size == _listed(api, name, size=True)["SizeRootFs"] > 0
    assert detail.image is not None and detail.image.id == api.inspect_image(TOOL_IMAGE)["Id"]


async def test_container_details_are_fetched_afresh_and_ask_for_one_container(
    service: DockerService, api: docker.APIClient
) -> None:
    container = _container(await service.snapshot(), CHANGES_CONTAINER)
    first = await service.container_detail(container)
    start = service.request_count
    second = await service.container_detail(container)
    assert second is not first and second == first
    assert service.request_count - start == 3  # inspect, the sized list, diff; the image detail is cached


async def test_a_container_removed_meanwhile_is_reported_as_not_found(
    service: DockerService, api: docker.APIClient
) -> None:
    container_id = api.create_container(TOOL_IMAGE, network_disabled=True)["Id"]
    try:
        summary = _container_by_id(await service.snapshot(), container_id)
    finally:
        api.remove_container(container_id, force=True)
    with pytest.raises(ObjectNotFound):
        await service.container_detail(summary)


async def test_a_container_whose_image_is_gone_has_no_image_detail(
    service: DockerService, api: docker.APIClient, throwaway_image: str
) -> None:
    container_id = api.create_container(throwaway_image, command=["x"], network_disabled=True)["Id"]
    try:
        summary = _container_by_id(await service.snapshot(), container_id)
        api.remove_image(throwaway_image, force=True)  # force: a stopped container still uses it
        with pytest.raises(docker.errors.ImageNotFound):
            api.inspect_image(throwaway_image)
        detail = await service.container_detail(summary)
        assert detail.image is None
        assert detail.inspect["Image"] == throwaway_image
    finally:
        api.remove_container(container_id, force=True)


# --- image context -------------------------------------------------------------------------------


async def test_chain_c_is_built_on_chain_b_which_is_built_on_chain_a(
    service: DockerService, api: docker.APIClient
) -> None:
    snapshot = await service.snapshot()
    for image, base in ((CHAIN_C_IMAGE, CHAIN_B_IMAGE), (CHAIN_B_IMAGE, CHAIN_A_IMAGE)):
        context = await service.image_context(_image(snapshot, api, image), snapshot)
        assert context.base is not None
        assert context.base.image_ids == (api.inspect_image(base)["Id"],)
        assert context.base.names == (base,)
        assert context.base.layer_count == len(api.inspect_image(base)["RootFS"]["Layers"])
        assert context.base.history_count == len(api.history(base))
        assert context.complete


async def test_chain_a_is_built_on_the_base_image(service: DockerService, api: docker.APIClient) -> None:
    """The huge fixture is a commit of an unchanged base container: same layers, a later image.
    It ties with the base, but the base comes first, since chain-a's history starts with the base's."""
    snapshot = await service.snapshot()
    context = await service.image_context(_image(snapshot, api, CHAIN_A_IMAGE), snapshot)
    base_layers = api.inspect_image(BASE_IMAGE)["RootFS"]["Layers"]
    ties = {image.id for image in snapshot.images if api.inspect_image(image.id)["RootFS"]["Layers"] == base_layers}
    assert context.base is not None
    assert context.base.image_ids[0] == api.inspect_image(BASE_IMAGE)["Id"]
    assert context.base.names[0] == BASE_IMAGE
    assert set(context.base.image_ids) == ties
    assert (context.base.layer_count, context.base.history_count) == (2, len(api.history(BASE_IMAGE)))


async def test_the_base_image_has_no_base(service: DockerService, api: docker.APIClient) -> None:
    snapshot = await service.snapshot()
    context = await service.image_context(_image(snapshot, api, BASE_IMAGE), snapshot)
    assert context.base is None
    assert context.complete


async def test_the_base_layers_are_shared_and_the_top_layer_is_not(
    service: DockerService, api: docker.APIClient
) -> None:
    snapshot = await service.snapshot()
    context = await service.image_context(_image(snapshot, api, CHAIN_C_IMAGE), snapshot)
    chain = chain_ids(api.inspect_image(CHAIN_C_IMAGE)["RootFS"]["Layers"])
    assert list(context.sharers) == list(chain)
    users = {
        api.inspect_image(name)["Id"] for name in (BASE_IMAGE, TOOL_IMAGE, APP_IMAGE, CHAIN_A_IMAGE, CHAIN_B_IMAGE)
    }
    for chain_id in chain[:2]:
        assert users <= set(context.sharers[chain_id])
    assert api.inspect_image(CHAIN_C_IMAGE)["Id"] not in context.sharers[chain[0]]
    assert set(context.sharers[chain[2]]) >= {api.inspect_image(name)["Id"] for name in (CHAIN_A_IMAGE, CHAIN_B_IMAGE)}
    assert api.inspect_image(TOOL_IMAGE)["Id"] not in context.sharers[chain[2]]
    assert context.sharers[chain[-1]] == ()
    top_size = api.history(CHAIN_C_IMAGE)[0]["Size"]
    assert context.unique_size == top_size > 0
    assert context.shared_size + context.unique_size == api.inspect_image(CHAIN_C_IMAGE)["Size"]
    assert context.unknown_size == 0


async def test_shared_and_unique_sizes_agree_with_docker_system_df(
    service: DockerService, api: docker.APIClient
) -> None:
    """`GET /system/df` (docker system df -v) counts a layer as shared when another image holds its
    chain id: every image of the snapshot must split the same way."""
    snapshot = await service.snapshot()
    df = {image["Id"]: image for image in api.df()["Images"]}
    assert set(df) == {image.id for image in snapshot.images}
    for image in snapshot.images:
        context = await service.image_context(image, snapshot)
        name = image.name
        assert context.shared_size == df[image.id]["SharedSize"], name
        assert context.unique_size == df[image.id]["Size"] - df[image.id]["SharedSize"], name
        assert context.unknown_size == 0, name
    assert all(df[_image(snapshot, api, name).id]["SharedSize"] > 0 for name in (APP_IMAGE, TOOL_IMAGE, CHAIN_C_IMAGE))


async def test_contexts_inspect_each_image_once_and_never_in_the_poll(
    service: DockerService, api: docker.APIClient
) -> None:
    snapshot = await service.snapshot()
    start = service.request_count
    first = await service.image_context(_image(snapshot, api, TOOL_IMAGE), snapshot)
    assert service.request_count - start <= len(snapshot.images) + 4  # inspects, two details
    start = service.request_count
    assert await service.image_context(_image(snapshot, api, TOOL_IMAGE), snapshot) == first
    await service.image_context(_image(snapshot, api, APP_IMAGE), snapshot)
    assert service.request_count - start == 2  # the app's own detail; every chain is known
    start = service.request_count
    await service.snapshot()
    assert service.request_count - start == 2


async def test_contexts_asked_for_together_share_one_round_of_inspects(
    service: DockerService, api: docker.APIClient
) -> None:
    snapshot = await service.snapshot()
    start = service.request_count
    tool, app = await asyncio.gather(
        service.image_context(_image(snapshot, api, TOOL_IMAGE), snapshot),
        service.image_context(_image(snapshot, api, APP_IMAGE), snapshot),
    )
    # One inspect per image (two callers apart: 2 x len), plus two requests for each detail: both
    # images, and their common base, which both may ask for before either has it cached.
    assert service.request_count - start <= len(snapshot.images) + 8
    assert tool.base is not None and app.base is not None and tool.base == app.base
    assert tool.complete and app.complete


async def test_context_inspects_run_a_few_at_a_time(
    service: DockerService, api: docker.APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = await service.snapshot()
    summary = _image(snapshot, api, TOOL_IMAGE)
    await service.image_detail(summary)
    lock = threading.Lock()
    running = peak = 0
    inspect = docker.APIClient.inspect_image

    def slow_inspect(client: docker.APIClient, image: str) -> Any:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        try:
            return inspect(client, image)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(docker.APIClient, "inspect_image", slow_inspect)
    await service.image_context(summary, snapshot)
    assert len(snapshot.images) > CONTEXT_CONCURRENCY
    assert 1 < peak <= CONTEXT_CONCURRENCY


async def test_an_image_removed_meanwhile_leaves_the_context_incomplete(
    service: DockerService, api: docker.APIClient, throwaway_image: str
) -> None:
    snapshot = await service.snapshot()
    api.remove_image(throwaway_image, force=True)
    context = await service.image_context(_image(snapshot, api, TOOL_IMAGE), snapshot)
    assert not context.complete
    assert all(throwaway_image not in ids for ids in context.sharers.values())
    assert context.base is not None and context.base.names[0] == BASE_IMAGE


async def test_the_context_of_an_image_removed_meanwhile_is_not_found(
    service: DockerService, api: docker.APIClient, throwaway_image: str
) -> None:
    snapshot = await service.snapshot()
    summary = next(image for image in snapshot.images if image.id == throwaway_image)
    api.remove_image(throwaway_image, force=True)
    with pytest.raises(ObjectNotFound):
        await service.image_context(summary, snapshot)
