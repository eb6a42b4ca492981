"""Containers, the writable layer, layer sharing and base images, driven by keys against the
private daemon's fixture containers and images."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
    tree_title,
    wait_until,
)
from conftest import APP_IMAGE, BASE_IMAGE, TOOL_IMAGE
from dockerscope.service import DockerService
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.changes_screen import ChangesScreen
from dockerscope.ui.layer_info_screen import LayerInfoScreen

CHAIN_B = "dockerscope-test/chain-b:1"
CHAIN_C = "dockerscope-test/chain-c:1"


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=0.5)


def _row_texts(table: DataTable[object]) -> list[list[str]]:
    return [[cell.plain for cell in table.get_row_at(index)] for index in range(table.row_count)]  # type: ignore[attr-defined]


def _summary(app: DockerscopeApp) -> str:
    return app.explorer.query_one("#layer-summary", Static).render().plain


async def test_the_containers_pane_lists_every_container_in_every_state(
    app: DockerscopeApp, api: docker.APIClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: container_list(app).row_count > 0)
        assert len(container_list(app).visible_items) == len(api.containers(all=True))
        rows = {row[0]: row for row in _row_texts(container_list(app))}
        assert rows["dockerscope-test-running"][1] == "running"
        assert rows["dockerscope-test-paused"][1] == "paused"
        assert rows["dockerscope-test-exited"][1] == "exited (3)"
        assert rows["dockerscope-test-created"][1] == "created"
        assert rows["dockerscope-test-running"][2] == TOOL_IMAGE
        await pilot.press("4")
        assert app.focused is container_list(app)
        await pilot.press("s")
        states = [c.state for c in container_list(app).visible_items]
        assert states == sorted(states)


async def test_c_shows_the_containers_of_an_image_and_i_goes_back(app: DockerscopeApp, api: docker.APIClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, TOOL_IMAGE)
        count = image_list(app).highlighted_item.containers
        tool_id = api.inspect_image(TOOL_IMAGE)["Id"]
        assert count == len(api.containers(all=True, filters={"ancestor": tool_id})) > 0
        await pilot.press("c")
        assert app.focused is container_list(app)
        assert len(shown_containers(app)) == count
        assert all(c.image_id == tool_id for c in container_list(app).visible_items)
        assert f"image {TOOL_IMAGE}" in str(app.explorer.query_one("#containers-pane").border_subtitle)
        await pilot.press("a")
        assert len(shown_containers(app)) == len(api.containers(all=True))

        await highlight_container(pilot, app, "dockerscope-test-changes")
        await pilot.press("i")
        assert app.focused is image_list(app)
        assert image_list(app).highlighted_item.name == APP_IMAGE
        await wait_until(pilot, lambda: tree_title(app) == APP_IMAGE)


async def test_a_container_shows_its_inspect_and_writable_layer_on_its_image_layers(
    app: DockerscopeApp, api: docker.APIClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_container(pilot, app, "dockerscope-test-changes")
        keys = [node.label.plain.split(" ")[0].rstrip(":") for node in inspect_tree(app).root.children]
        assert keys == list(api.inspect_container("dockerscope-test-changes"))
        await wait_until(pilot, lambda: "writable layer" in _summary(app))
        rows = _row_texts(layer_table(app))
        assert len(rows) == len(api.history(APP_IMAGE)) + 1 + 1  # history, base boundary, writable layer
        writable = rows[-1]
        assert writable[0] == "RW"
        size_rw = api.containers(all=True, size=True, filters={"name": ["dockerscope-test-changes"]})[0]["SizeRw"]
        assert size_rw > 0
        changes = api.diff("dockerscope-test-changes")
        added = sum(1 for c in changes if c["Kind"] == 1)
        changed = sum(1 for c in changes if c["Kind"] == 0)
        deleted = sum(1 for c in changes if c["Kind"] == 2)
        assert writable[5] == f"container layer: {added} added, {changed} changed, {deleted} deleted"
        assert layer_table(app).cursor_row == len(rows) - 1

        await pilot.press("3", "i")
        assert isinstance(app.screen, ChangesScreen)
        table = app.screen.query_one(DataTable)
        listed = {(row[0], row[1]) for row in _row_texts(table)}
        marks = {0: "C", 1: "A", 2: "D"}
        assert listed == {(marks[c["Kind"]], c["Path"]) for c in changes}
        await pilot.press("escape")
        assert app.screen is app.explorer


async def test_layers_say_how_many_other_images_share_them(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, TOOL_IMAGE)
        await wait_until(pilot, lambda: "unique" in _summary(app))
        rows = _row_texts(layer_table(app))
        busybox = next(row for row in rows if row[5].startswith("COPY file:"))
        own = next(row for row in rows if row[5] == "RUN echo tool > /tool.txt")
        assert busybox[4].endswith("other") and int(busybox[4].split()[0]) >= 3
        assert own[4] == "only here"
        assert "base: " + BASE_IMAGE in _summary(app)

        await pilot.press("3")
        table = layer_table(app)
        while _row_texts(table)[table.cursor_row][5] != busybox[5]:
            await pilot.press("j")
        await pilot.press("i")
        assert isinstance(app.screen, LayerInfoScreen)
        text = app.screen.query_one(Static).render().plain
        assert f"Also in {busybox[4].split()[0]} other image(s)" in text
        assert APP_IMAGE in text and BASE_IMAGE in text
        await pilot.press("escape")


async def test_the_base_image_boundary_is_drawn(app: DockerscopeApp, api: docker.APIClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, CHAIN_C)
        await wait_until(pilot, lambda: "base: " in _summary(app))
        assert f"base: {CHAIN_B}" in _summary(app)
        rows = _row_texts(layer_table(app))
        boundary = next(index for index, row in enumerate(rows) if row[0] == "──")
        assert CHAIN_B in rows[boundary][5]
        assert boundary == len(api.history(CHAIN_B))
        await highlight_image(pilot, app, BASE_IMAGE)
        await wait_until(pilot, lambda: "unique" in _summary(app))
        assert "base image not present locally" in _summary(app)
        assert all(row[0] != "──" for row in _row_texts(layer_table(app)))


async def test_slash_filters_the_containers_pane_when_it_was_used_last(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: container_list(app).row_count > 0)
        images_before = len(image_list(app).visible_items)
        await pilot.press("4", "slash", *"paused")
        assert shown_containers(app) == ["dockerscope-test-paused"]
        assert len(image_list(app).visible_items) == images_before
        await pilot.press("enter")
        assert app.focused is container_list(app)
        assert "filtered" in str(app.explorer.query_one("#containers-pane").border_subtitle)
        await pilot.press("slash", "escape")
        assert len(shown_containers(app)) > 1
