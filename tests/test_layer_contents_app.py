"""Enter on a layer: its files, the filesystem as of it, wasted space, and cancelling, driven by keys
against the private daemon's fixture images."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest
from textual.widgets import DataTable, Static

from apphelpers import SIZE, highlight_container, highlight_image, layer_table, wait_until
from conftest import CHANGES_CONTAINER, WASTE_IMAGE
from dockerscope.service import Connection, DockerService
from dockerscope.service.layer_files import ProgressCallback, ReadProgress
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.layer_contents_screen import LayerContentsScreen

HOSTILE_IMAGE = "dockerscope-test/hostile-paths:tmp"


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=60)


def screen(app: DockerscopeApp) -> LayerContentsScreen:
    assert isinstance(app.screen, LayerContentsScreen)
    return app.screen


def tree_rows(app: DockerscopeApp) -> list[str]:
    """The file tree as the user sees it, one line per row."""
    tree = screen(app).query_one(FileTree)
    return [tree.render_line(y).text.rstrip() for y in range(min(tree.last_line + 1, tree.size.height))]


def row_of(app: DockerscopeApp, name: str) -> str:
    """The row of the path called `name`, without the tree's guide lines."""
    return next(row for row in tree_rows(app) if f" {name}" in row).lstrip(" │├└─")


def title(app: DockerscopeApp) -> str:
    return screen(app).query_one("#contents-title", Static).render().plain


async def open_layer(pilot, app: DockerscopeApp, image: str, instruction_part: str) -> None:
    """Highlight the image, move the layer cursor onto the entry whose instruction contains
    `instruction_part`, press Enter and wait for the tree."""
    await highlight_image(pilot, app, image)
    await pilot.press("3")
    table = layer_table(app)
    while instruction_part not in table.get_row_at(table.cursor_row)[-1].plain:
        await pilot.press("j")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen) and bool(tree_rows(app)))


async def test_enter_on_a_layer_shows_what_it_added_modified_and_removed(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        assert "layer 4 of 5" in title(app)
        assert "+0 added ~1 modified -2 removed" in title(app)
        assert row_of(app, "config").split()[:2] == ["~", "config"]
        assert "12B -rw-r--r--" in row_of(app, "config")
        assert row_of(app, "big.bin").split()[:3] == ["-", "big.bin", "1.05MB"]
        assert row_of(app, "gone").split()[:2] == ["-", "gone"]
        assert not any("busybox" in row for row in tree_rows(app))

        await pilot.press("right_square_bracket")
        assert "layer 5 of 5" in title(app)
        assert "opq/ (opaque)" in row_of(app, "opq/")
        assert row_of(app, "old").split()[:2] == ["-", "old"]
        assert "drwxr-x---" in row_of(app, "new/")
        assert "1000:1000" in row_of(app, "file")

        await pilot.press("escape")
        assert app.screen is app.explorer


async def test_a_toggles_the_whole_filesystem_s_sorts_by_size_slash_filters(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        await pilot.press("a")
        rows = tree_rows(app)
        assert any(" bin/" in row for row in rows)
        assert "filesystem as of this layer" in str(screen(app).query_one("#files-pane").border_subtitle)
        top_level = [row.split()[1] for row in rows if row.startswith(("▶", "▼"))]
        assert top_level == sorted(top_level)
        await pilot.press("s")
        top_level = [row.split()[1] for row in tree_rows(app) if row.startswith(("▶", "▼"))]
        assert top_level[0] == "bin/"  # busybox makes it the biggest directory

        await pilot.press("slash", *"keep/conf")
        rows = tree_rows(app)
        assert any(" config.link " in row for row in rows)
        assert any(" config " in row for row in rows)
        assert not any(" bin/" in row or "symlink" in row for row in rows)
        assert "2 paths match" in str(screen(app).query_one("#files-pane").border_subtitle)
        await pilot.press("escape")  # clears the filter first
        assert any(" bin/" in row for row in tree_rows(app))
        await pilot.press("escape")
        assert app.screen is app.explorer


async def test_the_wasted_pane_lists_the_deleted_file_first(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        summary = screen(app).query_one("#wasted-summary", Static).render().plain
        assert "Efficiency 65.4 %" in summary
        table = screen(app).query_one("#wasted-table", DataTable)
        first = [cell.plain for cell in table.get_row_at(0)]
        assert first == ["1.05MB", "1", "/data/big.bin"]
        await pilot.press("w")
        assert app.focused is table


async def test_enter_on_the_writable_layer_shows_the_containers_changes(
    app: DockerscopeApp, api: docker.APIClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_container(pilot, app, CHANGES_CONTAINER)
        await wait_until(pilot, lambda: layer_table(app).get_row_at(layer_table(app).row_count - 1)[0].plain == "RW")
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen) and bool(tree_rows(app)))
        assert "container writable layer" in title(app)
        assert row_of(app, "new.txt").split()[:2] == ["+", "new.txt"]
        assert row_of(app, "hello.txt").split()[:2] == ["~", "hello.txt"]
        assert row_of(app, "data.bin").split()[:2] == ["-", "data.bin"]
        assert row_of(app, "newdir/").split()[:2] == ["+", "newdir/"]
        kinds = {change["Path"].rsplit("/", 1)[-1]: change["Kind"] for change in api.diff(CHANGES_CONTAINER)}
        assert kinds["new.txt"] == 1 and kinds["hello.txt"] == 0 and kinds["data.bin"] == 2


class GatedService(DockerService):
    """The real service, with the reading thread held at its first progress report until the test
    opens the gate: the reading is surely still running when Escape is pressed."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.gate = threading.Event()
        self.reported = threading.Event()
        self.cancel: threading.Event | None = None

    async def image_contents(self, image_id: str, *, on_progress: ProgressCallback | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        def held(progress: ReadProgress) -> None:
            self.reported.set()
            self.gate.wait(10)
            if on_progress is not None:
                on_progress(progress)

        self.cancel = kwargs.get("cancel")
        return await super().image_contents(image_id, on_progress=held, use_cache=False, **kwargs)


async def test_escape_cancels_the_reading_and_keeps_the_ui_responsive(service: DockerService) -> None:
    gated = GatedService(service.connection)
    app = create_app(gated, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await open_layer_without_waiting(pilot, app)
        await wait_until(pilot, gated.reported.is_set)
        await wait_until(pilot, lambda: screen(app).query_one("#contents-progress").display)
        await pilot.press("escape")
        assert app.screen is app.explorer
        await pilot.press("1", "j")  # the explorer answers keys while the thread is still held
        assert gated.cancel is not None and gated.cancel.is_set()
        gated.gate.set()
        await wait_until(pilot, lambda: not any(t.name == "dockerscope-layers" for t in threading.enumerate()))
    gated.close()


async def open_layer_without_waiting(pilot, app: DockerscopeApp) -> None:
    await highlight_image(pilot, app, WASTE_IMAGE)
    await pilot.press("3")
    table = layer_table(app)
    while "version-two" not in table.get_row_at(table.cursor_row)[-1].plain:
        await pilot.press("j")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen))


@pytest.fixture
def hostile_image(api: docker.APIClient) -> Iterator[str]:
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in ("evil\x1b]0;pwned\x07.txt", "clear\x1b[2J.txt", "[bold red]markup[red].txt"):
            info = tarfile.TarInfo(name)
            archive.addfile(info, io.BytesIO(b""))
    repository, tag = HOSTILE_IMAGE.split(":")
    api.import_image_from_data(payload.getvalue(), repository=repository, tag=tag)
    yield HOSTILE_IMAGE
    api.remove_image(HOSTILE_IMAGE, force=True)


async def test_hostile_file_names_are_shown_escaped(app: DockerscopeApp, hostile_image: str) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, hostile_image, "")
        rows = "\n".join(tree_rows(app))
        assert "evil\\x1b]0;pwned\\x07.txt" in rows
        assert "clear\\x1b[2J.txt" in rows
        assert "[bold red]markup[red].txt" in rows
        assert "\x1b" not in rows and "\x07" not in rows
