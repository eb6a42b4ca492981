"""`x` in the layer contents: the destination asked for, replacing only when confirmed, the files
written as of the layer on show, and `Esc` during the writing removing everything; by keys,
against the private daemon's fixture images."""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from apphelpers import SIZE, highlight_container, highlight_image, layer_table, wait_until
from conftest import CHANGES_CONTAINER, WASTE_IMAGE
from dockerscope.service import ContentSink, DockerService, SinkOpener
from dockerscope.service.demo import demo_source
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.extract_screen import ExtractScreen
from dockerscope.ui.file_tree import FileTree
from test_layer_contents_app import open_layer, screen, tree_rows


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory, where the destination defaults to."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def highlight_path(pilot: Any, app: DockerscopeApp, path: str) -> None:
    tree = screen(app).query_one(FileTree)
    for _ in range(200):
        node = tree.cursor_node
        if node is not None and node.data is not None and node.data.path == path:
            return
        await pilot.press("j")
    raise AssertionError(f"{path} is not in the tree")


def modal(app: DockerscopeApp) -> ExtractScreen:
    assert isinstance(app.screen, ExtractScreen)
    return app.screen


def note(app: DockerscopeApp) -> str:
    return modal(app).query_one("#extract-note", Static).render().plain


async def press_x(pilot: Any, app: DockerscopeApp) -> None:
    await pilot.press("x")
    await wait_until(pilot, lambda: isinstance(app.screen, ExtractScreen))
    await wait_until(pilot, lambda: "file" in modal(app).query_one("#extract-what", Static).render().plain)


def notices(app: DockerscopeApp) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_x_on_a_directory_writes_it_as_of_the_layer_on_show(service: DockerService, here: Path) -> None:
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        await highlight_path(pilot, app, "data/keep")
        await press_x(pilot, app)
        assert modal(app).query_one(Input).value == "./keep"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ExtractScreen))
        await wait_until(pilot, lambda: any(message.startswith("Extracted /data/keep") for message in notices(app)))
        assert notices(app)[-1] == "Extracted /data/keep (2 files, 15B) to ./keep"
    assert (here / "keep" / "config").read_text() == "version-two\n"
    assert (here / "keep" / "config.link").read_text() == "v1\n"


async def test_x_on_a_removed_file_writes_the_version_before_and_asks_before_replacing(
    service: DockerService, here: Path
) -> None:
    (here / "big.bin").write_text("mine")
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        await highlight_path(pilot, app, "data/big.bin")
        await press_x(pilot, app)
        await pilot.press("enter")
        assert "exists: Enter again replaces it" in note(app)
        assert (here / "big.bin").read_text() == "mine"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ExtractScreen))
        assert "Extracted /data/big.bin (1 file, 1.05MB)" in notices(app)[-1]
    assert (here / "big.bin").read_bytes() == bytes(1 << 20)
    assert sorted(os.listdir(here)) == ["big.bin"]


async def test_x_on_a_containers_writable_layer_writes_what_the_container_holds(
    service: DockerService, here: Path
) -> None:
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await highlight_container(pilot, app, CHANGES_CONTAINER)
        table = layer_table(app)
        await wait_until(pilot, lambda: table.get_row_at(table.row_count - 1)[0].plain == "RW")
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: bool(tree_rows(app)))
        await highlight_path(pilot, app, "app")
        await press_x(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ExtractScreen))
    assert sorted(os.listdir(here / "app")) == ["cache", "hello.txt", "new.txt", "newdir"]
    assert (here / "app" / "new.txt").read_text() == "new\n"


class GatedService(DockerService):
    """Each file's bytes wait for `gate` (or the cancel) before they are written."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.cancel: threading.Event | None = None

    async def read_layer_files(
        self, image_id: str, wanted: Mapping[int, Collection[str]], open_sink: SinkOpener, **kwargs: Any
    ) -> str:
        self.cancel = kwargs.get("cancel")
        service = self

        class Held:
            def __init__(self, inner: ContentSink) -> None:
                self.inner = inner

            def write(self, data: bytes | memoryview) -> bool:
                service.writing.set()
                while not service.gate.wait(0.05):
                    if service.cancel is not None and service.cancel.is_set():
                        break
                return self.inner.write(data)

            def close(self) -> None:
                self.inner.close()

        def held(layer: int, path: str, size: int) -> ContentSink:
            return Held(open_sink(layer, path, size))

        return await super().read_layer_files(image_id, wanted, held, **kwargs)


async def test_escape_while_writing_cancels_and_leaves_nothing(service: DockerService, here: Path) -> None:
    gated = GatedService(service.connection)
    app = create_app(gated, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        await pilot.press("a")  # the whole filesystem: busybox and its applets too
        await highlight_path(pilot, app, "bin")
        await press_x(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, gated.writing.is_set)
        assert [name for name in os.listdir(here) if name.startswith("bin.dockerscope-partial-")]
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ExtractScreen))
        assert gated.cancel is not None and gated.cancel.is_set()
        assert "Extraction cancelled: nothing was written." in notices(app)
        gated.gate.set()
    gated.close()
    assert os.listdir(here) == []


async def test_x_where_the_source_has_no_file_contents_says_so(here: Path) -> None:
    app = create_app(demo_source(), interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, "demo/bloated:1")
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: bool(tree_rows(app)))
        await pilot.press("x")
        await wait_until(pilot, lambda: any("no file contents to extract" in message for message in notices(app)))
        assert not isinstance(app.screen, ExtractScreen)
    assert os.listdir(here) == []
