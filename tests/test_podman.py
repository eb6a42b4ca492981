"""dockerscope against Podman's Docker-compatible API: the private Podman service scripts/test.sh
starts (scripts/podman-private.sh) with the fixture images copied from the private dockerd and
containers of its own (scripts/build-podman-fixtures.sh). Driven by keys like the Docker tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from textual.widgets import DataTable, Static

from apphelpers import (
    SIZE,
    container_list,
    highlight_container,
    highlight_image,
    image_list,
    inspect_tree,
    layer_table,
    shown_containers,
    shown_names,
    status_text,
    tree_title,
    wait_until,
    wait_until_live,
)
from conftest import APP_IMAGE, FIXTURE_IMAGES, TOOL_IMAGE, WASTE_IMAGE, checked_client
from dockerscope import analyze
from dockerscope.service import Connection, DockerService, SourceChoice
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_contents import Daemon, read_image_layers
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.layer_contents_screen import LayerContentsScreen
from method_proxy import MethodProxy
from test_layer_contents_app import row_of, title, tree_rows

# Podman keeps the registry part of a name: an image loaded as dockerscope-test/app:1 is listed as
# localhost/dockerscope-test/app:1, and that is what dockerscope shows.
LOCAL = "localhost/"
BUILT_IMAGE = "dockerscope-test/podman-built:1"  # built by Podman itself (buildah's history)
RUNNING = "dockerscope-podman-running"
PAUSED = "dockerscope-podman-paused"
EXITED = "dockerscope-podman-exited"  # exited with code 3
CREATED = "dockerscope-podman-created"
CHANGES = "dockerscope-podman-changes"  # from the app image: added, changed and deleted files
CONTAINERS = (RUNNING, PAUSED, EXITED, CREATED, CHANGES)


@pytest.fixture(scope="module")
def podman(podman_host: str) -> Iterator[docker.APIClient]:
    """A docker-py client on the Podman service, once its fixtures are checked."""
    images = [LOCAL + image for image in (*FIXTURE_IMAGES, BUILT_IMAGE)]
    client = checked_client(podman_host, images, CONTAINERS, "scripts/build-podman-fixtures.sh")
    yield client
    client.close()


@pytest.fixture
def podman_service(podman_host: str, podman: docker.APIClient) -> Iterator[DockerService]:
    service = DockerService(Connection(host=podman_host, source="test", client_kwargs={"base_url": podman_host}))
    yield service
    service.close()


@pytest.fixture
async def app(podman_service: DockerService) -> AsyncIterator[DockerscopeApp]:
    # No safety-net poll while a test runs: live changes come through Podman's event stream.
    yield create_app(podman_service, interval=3600)


def _rows(table: DataTable[Any]) -> list[list[str]]:
    return [[cell.plain for cell in table.get_row_at(index)] for index in range(table.row_count)]


def _summary(app: DockerscopeApp) -> str:
    return app.explorer.query_one("#layer-summary", Static).render().plain


async def test_the_status_line_says_podman_and_the_list_shows_podman_s_names(
    app: DockerscopeApp, podman: docker.APIClient
) -> None:
    version = podman.version(api_version=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        await wait_until_live(pilot, app)
        # "Podman 4.3.1 (API 1.41)" with Debian 12's Podman.
        assert f"Podman {version['Version']} (API {version['ApiVersion']})" in status_text(app)
        assert {image.id for image in image_list(app).visible_items} == {image["Id"] for image in podman.images()}
        listed = {tag for item in image_list(app).visible_items for tag in item.tags}
        assert {LOCAL + image for image in FIXTURE_IMAGES} <= listed
        app_id = podman.inspect_image(LOCAL + APP_IMAGE)["Id"]
        tags = image_list(app).get_row(app_id)[0].plain.split(", ")
        assert sorted(tags) == [f"{LOCAL}dockerscope-test/app:1", f"{LOCAL}dockerscope-test/app:latest"]
        await pilot.press("slash", *"dockerscope-test/tool")
        assert shown_names(app) == [LOCAL + TOOL_IMAGE]


async def test_the_inspect_tree_shows_podman_s_document(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, LOCAL + TOOL_IMAGE)
        labels = [node.label.plain for node in inspect_tree(app).root.children]
        assert any(label.startswith("Config {") for label in labels)
        assert any(label.startswith("GraphDriver {") for label in labels)
        assert tree_title(app) == LOCAL + TOOL_IMAGE


async def test_the_layer_pane_maps_podman_s_history_onto_the_layers(
    app: DockerscopeApp, podman: docker.APIClient
) -> None:
    """Podman's history ids are `<missing>` or other images' ids and its sizes are tar sizes
    (never 0 for a layer), an exec-form RUN of Docker's legacy builder has no `/bin/sh -c`, and
    buildah writes `/bin/sh -c` before an exec-form RUN's array: every layer still gets its row."""
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, f"{LOCAL}dockerscope-test/app:latest")
        rows = _rows(layer_table(app))
        instructions = [row[-1] for row in rows]
        assert "RUN /bin/busybox --install -s /bin" in instructions
        assert any(instruction.startswith("WORKDIR /app") for instruction in instructions)
        assert "mapping exact: every layer has a size" in _summary(app)
        assert "7 layers" in _summary(app)
        # Podman's history sizes count tar headers: a few kB off the image size, no warning.
        assert "image size" not in _summary(app)
        await wait_until(pilot, lambda: "working it out" not in _summary(app))
        assert "base: " + LOCAL + "dockerscope-test/base:1" in _summary(app)

        await highlight_image(pilot, app, LOCAL + BUILT_IMAGE)
        instructions = [row[-1] for row in _rows(layer_table(app))]
        assert 'RUN ["/bin/busybox", "touch", "/app/touched"]' in instructions
        assert "RUN rm /app/scratch.txt" in instructions
        assert "mapping exact" in _summary(app)
        layers = len(podman.inspect_image(LOCAL + BUILT_IMAGE)["RootFS"]["Layers"])
        assert f"{layers} layers" in _summary(app)


async def test_the_containers_pane_lists_podman_s_containers_in_every_state(
    app: DockerscopeApp, podman: docker.APIClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: container_list(app).row_count > 0)
        assert len(container_list(app).visible_items) == len(podman.containers(all=True))
        rows = {row[0]: row for row in _rows(container_list(app))}
        assert rows[RUNNING][1] == "running"
        assert rows[PAUSED][1] == "paused"
        assert rows[EXITED][1] == "exited (3)"
        assert rows[CREATED][1] == "created"
        assert rows[RUNNING][2] == LOCAL + TOOL_IMAGE

        await highlight_container(pilot, app, CHANGES)
        table = layer_table(app)
        await wait_until(pilot, lambda: table.get_row_at(table.row_count - 1)[0].plain == "RW")
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen) and bool(tree_rows(app)))
        assert "container writable layer" in title(app)
        assert "overlay upper dir" in title(app)
        assert row_of(app, "new.txt").split()[:2] == ["+", "new.txt"]
        assert row_of(app, "hello.txt").split()[:2] == ["~", "hello.txt"]
        assert row_of(app, "data.bin").split()[:2] == ["-", "data.bin"]


async def test_enter_on_a_podman_layer_reads_it_from_podman_s_overlay_directories(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, LOCAL + WASTE_IMAGE)
        await pilot.press("3")
        table = layer_table(app)
        while "version-two" not in table.get_row_at(table.cursor_row)[-1].plain:
            await pilot.press("j")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen) and bool(tree_rows(app)))
        assert "layer 4 of 5" in title(app)
        assert "+0 added ~1 modified -2 removed" in title(app)
        assert "overlay" in title(app) or "cache" in title(app)
        assert row_of(app, "big.bin").split()[:3] == ["-", "big.bin", "1.05MB"]
        await pilot.press("right_square_bracket")
        assert "opq/ (opaque)" in row_of(app, "opq/")


@pytest.fixture
def cleanup(podman: docker.APIClient) -> Iterator[list[str]]:
    """Containers and image references a test makes on the Podman service, removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(docker.errors.NotFound):
            if name.startswith("container:"):
                podman.remove_container(name.removeprefix("container:"), force=True)
            else:
                podman.remove_image(name)


async def test_podman_s_events_add_and_remove_rows_while_the_app_runs(
    app: DockerscopeApp, podman: docker.APIClient, cleanup: list[str]
) -> None:
    name = "dockerscope-podman-live"
    reference = f"{LOCAL}dockerscope-test/podman-live:tagged"
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: container_list(app).row_count > 0)
        await wait_until_live(pilot, app)

        cleanup.append(f"container:{name}")
        podman.create_container(LOCAL + TOOL_IMAGE, name=name, network_disabled=True)
        await wait_until(pilot, lambda: name in shown_containers(app), 5)
        podman.remove_container(name, force=True)
        await wait_until(pilot, lambda: name not in shown_containers(app), 5)

        cleanup.append(reference)
        podman.tag(LOCAL + TOOL_IMAGE, f"{LOCAL}dockerscope-test/podman-live", "tagged")
        await wait_until(pilot, lambda: any(reference in image.tags for image in image_list(app).visible_items), 5)
        podman.remove_image(reference)
        await wait_until(pilot, lambda: not any(reference in i.tags for i in image_list(app).visible_items), 5)
        assert any(LOCAL + TOOL_IMAGE in image.tags for image in image_list(app).visible_items)


def _analyze(host: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = analyze.main(["--host", host, *args], out=out)
    return code, out.getvalue()


def test_analyze_finds_a_podman_image_by_its_short_name_and_shows_podman_s_name(podman_host: str) -> None:
    code, text = _analyze(podman_host, "--no-cache", APP_IMAGE)
    assert code == 0
    header = text.splitlines()[0]
    assert f"{LOCAL}dockerscope-test/app:1" in header
    assert "7 layers" in header
    assert "read from overlay in" in header
    assert "RUN /bin/busybox --install -s /bin" in text


def test_podman_s_overlay_report_equals_its_export_report(podman_host: str) -> None:
    """`analyze` on Podman's storage and on its export stream says the same, image by image."""
    for image in (WASTE_IMAGE, APP_IMAGE, BUILT_IMAGE):
        reports = {}
        for source in ("overlay", "export"):
            code, text = _analyze(podman_host, "--no-cache", "--json", "--source", source, image)
            assert code == 0, text
            reports[source] = json.loads(text)
            assert reports[source]["image"].pop("source") == source
            reports[source]["image"].pop("seconds")
        assert reports["overlay"] == reports["export"], image


@pytest.mark.parametrize("image", [*FIXTURE_IMAGES, BUILT_IMAGE])
def test_podman_s_overlay_directories_and_its_export_give_the_same_listings(
    podman: docker.APIClient, podman_host: str, image: str
) -> None:
    inspect = podman.inspect_image(LOCAL + image)
    assert inspect["GraphDriver"]["Name"] == "overlay"
    listings = {}
    for choice in (SourceChoice.OVERLAY, SourceChoice.EXPORT):
        layers, sources = read_image_layers(
            Daemon(podman, podman_host), inspect, choice=choice, cache=None, cancel=None, on_progress=None
        )
        assert sources == ("overlay" if choice is SourceChoice.OVERLAY else "export",)
        listings[choice] = layers
    assert [diff_id for diff_id, _ in listings[SourceChoice.OVERLAY]] == inspect["RootFS"]["Layers"]
    pairs = zip(listings[SourceChoice.OVERLAY], listings[SourceChoice.EXPORT], strict=True)
    for (diff_id, from_disk), (_, from_stream) in pairs:
        assert sorted(from_disk.entries) == sorted(from_stream.entries), diff_id
        assert from_disk.deleted == from_stream.deleted
        assert from_disk.opaque == from_stream.opaque


async def test_what_one_run_read_from_podman_s_directories_the_next_finds_in_the_cache(
    podman_host: str, podman: docker.APIClient, tmp_path: Path
) -> None:
    """Podman's `/info` ID changes with every answer; the cache keys its listings on its storage."""
    connection = Connection(host=podman_host, source="test", client_kwargs={"base_url": podman_host})
    sources = []
    for _ in range(2):
        service = DockerService(connection, cache=LayerCache(tmp_path))  # a new run: nothing in memory
        try:
            detail = await service.image_detail_of(TOOL_IMAGE)
            sources.append((await service.image_contents(detail.id)).sources)
        finally:
            service.close()
    assert sources == [("overlay",), ("cache",)]


async def test_a_tour_of_podman_sends_only_gets(podman_host: str, podman: docker.APIClient, short_tmp: Path) -> None:
    """Through a proxy that refuses anything but GET and HEAD: lists, details, events, the layer
    contents, a container's writable layer and `analyze`."""
    with MethodProxy(short_tmp / "read-only.sock", podman_host) as proxy:
        connection = Connection(host=proxy.url, source="test", client_kwargs={"base_url": proxy.url})
        tour = create_app(DockerService(connection), interval=2)
        async with tour.run_test(size=SIZE) as pilot:
            await wait_until_live(pilot, tour)
            await highlight_image(pilot, tour, LOCAL + WASTE_IMAGE)
            await pilot.press("3", "enter")
            await wait_until(pilot, lambda: isinstance(tour.screen, LayerContentsScreen) and bool(tree_rows(tour)))
            await pilot.press("escape")
            await highlight_container(pilot, tour, CHANGES)
            await pilot.press("3", "enter")
            await wait_until(pilot, lambda: isinstance(tour.screen, LayerContentsScreen) and bool(tree_rows(tour)))
        code, _ = await asyncio.to_thread(_analyze, proxy.url, "--no-cache", "--source", "export", APP_IMAGE)
        assert code == 0
        assert proxy.refused == []
        assert {request.method for request in proxy.requests} <= {"GET", "HEAD"}
        paths = {request.path for request in proxy.requests}
        assert {"/events", "/images/json", "/containers/json", "/info"} <= paths
        assert any(path.endswith("/get") for path in paths)
