"""Live updates on screen, driven by keys, against the real daemon: outside changes appear without
a poll, and the cursor, scroll position, filter, sort and open tree nodes survive them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import docker
import pytest

from apphelpers import (
    SIZE,
    container_list,
    highlight_image,
    image_list,
    inspect_tree,
    shown_containers,
    shown_names,
    tree_title,
    wait_until,
    wait_until_live,
)
from conftest import TOOL_IMAGE, import_tiny_image
from dockerscope.service import DockerService
from dockerscope.ui import DockerscopeApp, create_app

CROWD = [f"dockerscope-test/crowd:{number:02}" for number in range(40)]
EARLY_NAME = "dockerscope-test/aaa:new"  # sorts before every other image


@pytest.fixture(scope="module")
def crowd(api: docker.APIClient) -> Iterator[list[str]]:
    """Forty more images, so the image list scrolls."""
    ids = [import_tiny_image(api, name) for name in CROWD]
    yield ids
    for image_id in ids:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_image(image_id, force=True)


@pytest.fixture
def app(service: DockerService) -> DockerscopeApp:
    # No safety-net poll while a test runs: what changes on screen came through the event stream.
    return create_app(service, interval=3600)


@pytest.fixture
def early_image(api: docker.APIClient) -> Iterator[list[str]]:
    """Ids of images a test imports as EARLY_NAME; removed afterwards."""
    ids: list[str] = []
    yield ids
    for image_id in ids:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_image(image_id, force=True)


def _tags_cell(app: DockerscopeApp, image_id: str) -> str:
    return image_list(app).get_row(image_id)[0].plain


async def test_an_outside_tag_shows_at_once_without_a_poll(app: DockerscopeApp, api: docker.APIClient) -> None:
    tool_id = api.inspect_image(TOOL_IMAGE)["Id"]
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        await wait_until_live(pilot, app)
        api.tag(TOOL_IMAGE, "dockerscope-test/live", "tagged")
        try:
            await wait_until(pilot, lambda: "dockerscope-test/live:tagged" in _tags_cell(app, tool_id), 3)
        finally:
            api.remove_image("dockerscope-test/live:tagged")
        await wait_until(pilot, lambda: "dockerscope-test/live:tagged" not in _tags_cell(app, tool_id), 3)


async def test_cursor_and_scroll_stay_on_their_image_when_one_appears_above(
    app: DockerscopeApp, api: docker.APIClient, crowd: list[str], early_image: list[str]
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, CROWD[30])
        table = image_list(app)
        assert table.scroll_y > 0, "the list must have scrolled for this test to mean anything"
        row, scroll = table.cursor_row, table.scroll_y

        early_image.append(import_tiny_image(api, EARLY_NAME))
        await wait_until(pilot, lambda: EARLY_NAME in shown_names(app), 3)
        await pilot.pause(0.1)
        assert shown_names(app)[0] == EARLY_NAME
        assert table.highlighted_item is not None and table.highlighted_item.name == CROWD[30]
        assert (table.cursor_row, table.scroll_y) == (row + 1, scroll + 1)  # same place on screen
        assert tree_title(app) == CROWD[30]


async def test_when_the_highlighted_image_goes_its_neighbour_takes_the_cursor_and_the_panes(
    app: DockerscopeApp, api: docker.APIClient, crowd: list[str]
) -> None:
    doomed = import_tiny_image(api, "dockerscope-test/crowd:20-doomed")
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, "dockerscope-test/crowd:20-doomed")
        table = image_list(app)
        row, scroll = table.cursor_row, table.scroll_y
        api.remove_image(doomed, force=True)
        await wait_until(pilot, lambda: "dockerscope-test/crowd:20-doomed" not in shown_names(app), 3)
        await wait_until(pilot, lambda: tree_title(app) == CROWD[21], 3)
        assert table.highlighted_item is not None and table.highlighted_item.name == CROWD[21]
        assert (table.cursor_row, table.scroll_y) == (row, scroll)


async def test_open_inspect_nodes_stay_open_when_the_image_gets_a_new_tag(
    app: DockerscopeApp, api: docker.APIClient, crowd: list[str]
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, CROWD[5])
        tree = inspect_tree(app)
        await pilot.press("2")
        config_line = next(node.line for node in tree.root.children if _is_config(node.label.plain))
        while tree.cursor_line < config_line:
            await pilot.press("down")
        await pilot.press("enter")
        config = tree.cursor_node
        assert config is not None and _is_config(config.label.plain) and config.is_expanded

        api.tag(crowd[5], "dockerscope-test/crowd", "05-again")
        await wait_until(pilot, lambda: "dockerscope-test/crowd:05-again" in _repo_tags(app), 3)
        await pilot.pause(0.1)
        node = tree.cursor_node
        assert node is not None and _is_config(node.label.plain)
        assert node.is_expanded
        assert tree_title(app) == CROWD[5]
        assert app.focused is tree


def _is_config(label: str) -> bool:
    return label.startswith("Config {")


def _repo_tags(app: DockerscopeApp) -> list[str]:
    """The RepoTags of the document the inspect pane shows."""
    document = inspect_tree(app).root.data
    return list(document.value.get("RepoTags") or ()) if document and document.value else []


async def test_filter_and_sort_survive_updates(
    app: DockerscopeApp, api: docker.APIClient, crowd: list[str], early_image: list[str]
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: CROWD[0] in shown_names(app))
        await pilot.press("1", "slash", *"crowd", "enter", "s")
        table = image_list(app)
        assert table.sort_by == "size"
        assert all("crowd" in name for name in shown_names(app))

        early_image.append(import_tiny_image(api, "dockerscope-test/crowd:zz-late"))
        early_image.append(import_tiny_image(api, EARLY_NAME))
        await wait_until(pilot, lambda: "dockerscope-test/crowd:zz-late" in shown_names(app), 3)
        await pilot.pause(0.1)
        assert EARLY_NAME not in shown_names(app)
        assert table.filter_text == "crowd" and table.sort_by == "size"
        sizes = [image.size for image in table.visible_items]
        assert sizes == sorted(sizes, reverse=True)


async def test_containers_come_change_state_and_go_on_screen(app: DockerscopeApp, api: docker.APIClient) -> None:
    name = "dockerscope-test-live"
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: container_list(app).row_count > 0)
        container = api.create_container(
            TOOL_IMAGE, ["sleep", "60"], name=name, host_config=api.create_host_config(network_mode="none")
        )
        try:
            await wait_until(pilot, lambda: name in shown_containers(app), 3)
            table = container_list(app)
            assert table.get_row(container["Id"])[1].plain == "created"
            api.start(container["Id"])
            await wait_until(pilot, lambda: table.get_row(container["Id"])[1].plain == "running", 3)
        finally:
            api.remove_container(container["Id"], force=True)
        await wait_until(pilot, lambda: name not in shown_containers(app), 3)


async def test_quitting_leaves_no_thread_behind(app: DockerscopeApp) -> None:
    before = set(threading.enumerate())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0 and app.watcher.live)
        started = [thread for thread in set(threading.enumerate()) - before if thread.name.startswith("dockerscope")]
        await pilot.press("q")
    assert "dockerscope-events" in {thread.name for thread in started}, (
        "the app runs its requests and its event stream in threads of its own"
    )
    for thread in started:
        thread.join(timeout=2)
    assert not [thread.name for thread in started if thread.is_alive()]
