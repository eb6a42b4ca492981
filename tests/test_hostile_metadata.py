"""Hostile and huge metadata from the daemon is shown literally, cut to size, and never stalls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import docker
import pytest
from rich.text import Text
from textual.widgets.tree import TreeNode

from apphelpers import SIZE, highlight_image, image_list, inspect_tree, layer_table, shown_names, tree_title, wait_until
from conftest import APP_IMAGE, HUGE_IMAGE, THROWAWAY_IMAGE
from dockerscope.service import DockerService
from dockerscope.ui import DockerscopeApp, create_app

CONTROL = {chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)]}


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=0.5)


def _all_nodes(node: TreeNode[object]) -> Iterator[TreeNode[object]]:
    yield node
    for child in node.children:
        yield from _all_nodes(child)


def _child(node: TreeNode[object], key: str) -> TreeNode[object]:
    return next(child for child in node.children if child.label.plain.split(" ")[0].rstrip(":") == key)


async def _expand(pilot: object, tree: object, node: TreeNode[object]) -> None:
    node.expand()
    await wait_until(pilot, lambda: len(node.children) > 0)  # type: ignore[arg-type]


async def test_markup_and_escape_sequences_in_labels_are_shown_literally(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        tree = inspect_tree(app)
        await pilot.press("2", "plus")
        await pilot.pause()
        labels = _child(_child(tree.root, "Config"), "Labels")
        markup = _child(labels, "hostile.markup").label
        escape = _child(labels, "hostile.escape").label
        assert markup.plain == ("hostile.markup: [bold red]alarm[/bold red] [link=https://example.invalid]click[/link]")
        assert {str(span.style) for span in markup.spans} <= {"bold", "green"}
        assert escape.plain == "hostile.escape: before\\x1b[2J\\x1b]0;pwned\\x07after"
        for node in _all_nodes(tree.root):
            assert not CONTROL & set(node.label.plain), node.label.plain

        table = layer_table(app)
        cells: list[Text] = [cell for index in range(table.row_count) for cell in table.get_row_at(index)]
        assert not any(CONTROL & set(cell.plain) for cell in cells)
        assert any(cell.plain == "LABEL hostile.escape=before\\x1b[2J\\x1b]0;pwned\\x07after" for cell in cells)
        assert not any(span.style == "bold red" for cell in cells for span in cell.spans)


async def test_a_megabyte_label_and_ten_thousand_env_entries_stay_usable(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, HUGE_IMAGE)
        tree = inspect_tree(app)
        config = _child(tree.root, "Config")
        await _expand(pilot, tree, config)
        env = _child(config, "Env")
        assert env.label.plain == "Env [10001]"
        assert len(env.children) == 0
        labels = _child(config, "Labels")
        await _expand(pilot, tree, labels)
        label = _child(labels, "huge.label")
        assert len(label.label.plain) < 600
        assert label.label.plain.endswith("(+999,600 chars)")
        await _expand(pilot, tree, env)
        assert len(env.children) == 10001
        assert env.children[-1].label.plain == "[10000]: VAR_10000=value-10000"
        await pilot.press("2", "down", "up")  # still answering keys
        assert app.focused is tree


async def test_an_image_deleted_while_shown_moves_the_cursor_to_its_neighbour(
    app: DockerscopeApp, api: docker.APIClient, throwaway_image: str
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, THROWAWAY_IMAGE)
        row = image_list(app).cursor_row
        api.remove_image(throwaway_image, force=True)
        await pilot.press("r")
        await wait_until(pilot, lambda: THROWAWAY_IMAGE not in shown_names(app))
        neighbour = image_list(app).highlighted_item
        assert neighbour is not None
        assert image_list(app).cursor_row == min(row, image_list(app).row_count - 1)
        await wait_until(pilot, lambda: tree_title(app) == neighbour.name)
