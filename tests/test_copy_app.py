"""`y` and `Y`: what is under the cursor to the clipboard (Textual's OSC 52), driven by keys against
the private daemon's fixture images: a full id, an inspect value, a branch as JSON, a JSON path, a
layer's diff id, a path in the layer contents."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import docker
import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from apphelpers import SIZE, highlight_container, highlight_image, layer_table
from conftest import APP_IMAGE, CHANGES_CONTAINER, WASTE_IMAGE
from dockerscope.service import DockerService
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.clipboard import COPY_LIMIT
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.inspect_tree import InspectTree, json_path
from test_layer_contents_app import open_layer


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=60)


async def cursor_to(pilot: Pilot[None], tree: InspectTree, key: str) -> None:
    """Move the inspect tree's cursor down onto the first node under `key`."""
    for _ in range(200):
        node = tree.cursor_node
        if node is not None and node.data is not None and node.data.key == key:
            return
        await pilot.press("j")
    raise AssertionError(f"no node {key!r}")


async def test_y_copies_full_ids_inspect_values_paths_and_diff_ids(app: DockerscopeApp, api: docker.APIClient) -> None:
    inspect = api.inspect_image(APP_IMAGE)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        await pilot.press("y")
        assert app.clipboard == inspect["Id"]
        assert any(note.title == "Copied" and "full id: sha256:" in note.message for note in app._notifications)

        await pilot.press("2")
        tree = app.focused
        assert isinstance(tree, InspectTree)
        await cursor_to(pilot, tree, "Id")
        await pilot.press("y")
        assert app.clipboard == inspect["Id"]
        await pilot.press("Y")
        assert app.clipboard == ".Id"
        await cursor_to(pilot, tree, "Config")
        await pilot.press("y")
        assert json.loads(app.clipboard) == inspect["Config"]
        await pilot.press("space")
        await cursor_to(pilot, tree, "Env")
        await pilot.press("space", "j")
        await pilot.press("y")
        assert app.clipboard == inspect["Config"]["Env"][0]
        await pilot.press("Y")
        assert app.clipboard == ".Config.Env[0]"

        await pilot.press("3")
        table = layer_table(app)
        await pilot.press("home")
        await pilot.press("y")
        assert app.clipboard == inspect["RootFS"]["Layers"][0]

        await highlight_container(pilot, app, CHANGES_CONTAINER)
        await pilot.press("y")
        assert app.clipboard == api.inspect_container(CHANGES_CONTAINER)["Id"]
        assert table.row_count


async def test_y_copies_a_path_of_the_layer_contents(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        tree = app.screen.query_one(FileTree)
        while tree.cursor_node is None or tree.cursor_node.data is None or tree.cursor_node.data.path != "data/keep":
            await pilot.press("j")
        await pilot.press("y")
        assert app.clipboard == "/data/keep"


class OneDocument(App[None]):
    """An inspect tree alone, showing one document."""

    def __init__(self, document: dict[str, object]) -> None:
        super().__init__()
        self.document = document

    def compose(self) -> ComposeResult:
        yield InspectTree()

    def on_mount(self) -> None:
        self.query_one(InspectTree).show_document("hostile", self.document)


async def test_a_value_too_long_for_a_clipboard_is_not_sent_and_the_text_shown_is_sanitised() -> None:
    hostile = "\x1b]52;c;cHduZWQ=\x07[bold red]alarm[/bold red]"
    app = OneDocument({"Huge": "x" * (COPY_LIMIT + 1), "Hostile": hostile})
    async with app.run_test(notifications=True) as pilot:
        await pilot.press("j", "y")
        assert app.clipboard == ""
        assert [note.title for note in app._notifications] == ["Not copied"]
        await pilot.press("j", "y")
        assert app.clipboard == hostile
        shown = list(app._notifications)[-1].message
        assert "\x1b" not in shown and "\x07" not in shown and "[bold red]" in shown


def test_json_paths_quote_keys_that_are_not_plain_names() -> None:
    assert json_path(()) == "."
    assert json_path(("Config", "Labels", "com.example.label")) == '.Config.Labels["com.example.label"]'
    assert json_path(("RootFS", "Layers", "[3]")) == ".RootFS.Layers[3]"
    assert json_path(("Config", "Env", "[0]")) == ".Config.Env[0]"
    assert json_path(("Labels", 'a"b')) == '.Labels["a\\"b"]'
