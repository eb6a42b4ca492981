"""The app against the real private daemon, driven by keys through Textual's Pilot."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import docker
import pytest
from textual.widgets import DataTable, Static

from apphelpers import (
    SIZE,
    container_list,
    highlight_image,
    image_list,
    inspect_tree,
    layer_table,
    shown_names,
    status_text,
    tree_title,
    wait_until,
    wait_until_live,
)
from conftest import APP_IMAGE, TOOL_IMAGE
from dockerscope.service import DockerService
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.help_screen import HelpScreen


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=0.5)


async def test_image_list_shows_every_image_with_tags_size_and_status(
    app: DockerscopeApp, api: docker.APIClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        table = image_list(app)
        expected = {i["Id"] for i in api.images()}
        assert {image.id for image in table.visible_items} == expected
        app_id = api.inspect_image(APP_IMAGE)["Id"]
        row = [cell.plain for cell in table.get_row(app_id)]
        assert row[0] == "dockerscope-test/app:1, dockerscope-test/app:latest"
        assert row[1] == app_id.removeprefix("sha256:")[:12]
        assert row[2] == "2.29MB"
        assert "<none>" in shown_names(app)
        await wait_until_live(pilot, app)
        status = status_text(app)
        assert api.version()["Version"] in status
        assert f"{len(expected)} images" in status


async def test_s_cycles_the_sort_order(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        images = image_list(app).visible_items
        tagged = [i.name for i in images if not i.dangling]
        assert tagged == sorted(tagged)
        await pilot.press("s")
        sizes = [i.size for i in image_list(app).visible_items]
        assert sizes == sorted(sizes, reverse=True)
        await pilot.press("s")
        created = [i.created for i in image_list(app).visible_items]
        assert created == sorted(created, reverse=True)
        assert "sort: created" in str(app.explorer.query_one("#images-pane").border_subtitle)
        await pilot.press("s")
        assert [i.name for i in image_list(app).visible_items] == [i.name for i in images]


async def test_slash_filters_live_enter_keeps_escape_clears(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        everything = shown_names(app)
        await pilot.press("slash", "t", "o", "o")
        assert shown_names(app) == [TOOL_IMAGE]
        await pilot.press("enter")
        assert app.focused is image_list(app)
        assert shown_names(app) == [TOOL_IMAGE]
        await pilot.press("slash", "escape")
        assert shown_names(app) == everything
        assert app.focused is image_list(app)


async def test_filter_matches_the_image_id_too(app: DockerscopeApp, api: docker.APIClient) -> None:
    short = api.inspect_image(APP_IMAGE)["Id"].removeprefix("sha256:")[:8]
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        await pilot.press("slash", *short, "enter")
        assert shown_names(app) == [APP_IMAGE]


async def test_d_hides_and_shows_dangling_images(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        dangling = shown_names(app).count("<none>")
        assert dangling > 0
        await pilot.press("d")
        assert "<none>" not in shown_names(app)
        await pilot.press("d")
        assert shown_names(app).count("<none>") == dangling


async def test_highlighting_an_image_shows_its_inspect_tree_and_layers(
    app: DockerscopeApp, api: docker.APIClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        top_level = [node.label.plain.split(":")[0].split(" ")[0] for node in inspect_tree(app).root.children]
        assert top_level == list(api.inspect_image(APP_IMAGE))
        table = layer_table(app)
        history = api.history(APP_IMAGE)
        rows = [[cell.plain for cell in table.get_row_at(index)] for index in range(table.row_count)]
        rows = [row for row in rows if row[0] != "──"]  # the base image boundary
        assert len(rows) == len(history)
        assert rows[0][0] == "1"
        assert rows[0][5].startswith("COPY file:")
        workdir = next(row for row in rows if row[5] == "WORKDIR /app")
        env = next(row for row in rows if row[5].startswith("ENV APP_HOME"))
        assert re.fullmatch("[0-9a-f]{12}", workdir[3])
        assert env[3] == "—"
        assert table.get_row(env[0])[5].style == "dim"
        summary = app.explorer.query_one("#layer-summary", Static).render().plain
        assert summary.startswith("7 layers · 2.29MB")
        assert "inferred" in summary

        await pilot.press("down")
        await wait_until(pilot, lambda: tree_title(app) != APP_IMAGE)
        shown = [layer_table(app).get_row_at(i)[0].plain for i in range(layer_table(app).row_count)]
        assert len([n for n in shown if n != "──"]) == len(api.history(image_list(app).highlighted_item.id))


async def test_inspect_tree_keys_toggle_expand_and_collapse(app: DockerscopeApp, api: docker.APIClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        await pilot.press("2")
        tree = inspect_tree(app)
        assert app.focused is tree
        config_line = next(node.line for node in tree.root.children if node.label.plain.startswith("Config "))
        config = api.inspect_image(APP_IMAGE)["Config"]
        assert tree.root.children[config_line - 1].label.plain == f"Config {{{len(config)}}}"
        while tree.cursor_line != config_line:
            await pilot.press("j")
        assert not tree.cursor_node.is_expanded
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(tree.cursor_node.children) == len(config))
        assert tree.cursor_node.is_expanded
        env_node = next(n for n in tree.cursor_node.children if n.label.plain.startswith("Env "))
        assert env_node.label.plain == f"Env [{len(config['Env'])}]"
        assert len(env_node.children) == 0  # built only when first expanded
        await pilot.press("space")
        assert not tree.cursor_node.is_expanded
        lines_collapsed = tree.last_line
        await pilot.press("plus")
        await pilot.pause()
        assert tree.last_line > lines_collapsed + len(config)
        assert env_node.is_expanded and len(env_node.children) == len(config["Env"])
        await pilot.press("minus")
        await pilot.pause()
        assert tree.last_line == lines_collapsed
        assert tree.root.is_expanded


async def test_number_keys_and_tab_move_between_panes(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, TOOL_IMAGE)
        await pilot.press("3")
        assert app.focused is layer_table(app)
        await pilot.press("2")
        assert app.focused is inspect_tree(app)
        await pilot.press("1")
        assert app.focused is image_list(app)
        await pilot.press("4")
        assert app.focused is container_list(app)
        await pilot.press("1", "tab")
        assert app.focused is container_list(app)
        await pilot.press("tab")
        assert app.focused is inspect_tree(app)
        await pilot.press("tab")
        assert app.focused is layer_table(app)
        await pilot.press("shift+tab", "shift+tab", "shift+tab")
        assert app.focused is image_list(app)


class _SilentEventStream:
    """An event stream that stays open and never delivers an event."""

    def __init__(self) -> None:
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        self._closed.wait()
        yield from ()

    def close(self) -> None:
        self._closed.set()


class DeafService(DockerService):
    """The real service, but its event stream hears nothing: only a poll brings changes."""

    def open_event_stream(self) -> _SilentEventStream:  # type: ignore[override]
        return _SilentEventStream()


async def test_r_refreshes_at_once(service: DockerService, api: docker.APIClient) -> None:
    deaf = DeafService(service.connection)
    app = create_app(deaf, interval=3600)
    tag = "dockerscope-test/refresh:now"

    def tag_shown() -> bool:
        """the new tag is in the image list"""
        return any(tag in image.tags for image in image_list(app).visible_items)

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        await wait_until_live(pilot, app)
        await pilot.pause(0.5)  # the poll that catches up after the stream opened is over
        api.tag(TOOL_IMAGE, *tag.split(":"))
        try:
            await pilot.pause(1.5)
            assert not tag_shown(), "the change arrived without r: this test would not notice r doing nothing"
            await pilot.press("r")
            await wait_until(pilot, tag_shown, 3)
        finally:
            api.remove_image(tag)
    deaf.close()


async def test_question_mark_lists_every_binding(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        keys = {table.get_row_at(i)[1].plain for i in range(table.row_count)}
        assert {"q", "?", "r", "1", "2", "3", "s", "/", "d", "+", "-", "Esc", "Tab", "j", "k"} <= keys
        await pilot.press("escape")
        assert app.screen is app.explorer


async def test_q_quits(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count > 0)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0
        assert not app.is_running
