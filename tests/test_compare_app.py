"""Comparing two images in the app, driven by keys against the private daemon's fixture images:
Space marks, `=` compares, the layers, config and files panes, Enter's diff of a modified file."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TabbedContent

from apphelpers import SIZE, highlight_image, highlight_image_id, image_list, shown_names, wait_until
from conftest import APP_IMAGE, BASE_IMAGE, IMPORTED_IMAGE, REBUILT_IMAGE, WASTE_IMAGE
from dockerscope.service import Connection, DockerService, ProgressCallback, ReadProgress, open_archive
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.compare_screen import CompareScreen
from dockerscope.ui.diff_lines import DiffLines
from dockerscope.ui.file_diff_screen import FileDiffScreen
from dockerscope.ui.file_tree import FileTree
from images import first_build_of_rebuilt


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=60)


@pytest.fixture
def first_build(api: docker.APIClient) -> str:
    return first_build_of_rebuilt(api)


def screen(app: DockerscopeApp) -> CompareScreen:
    assert isinstance(app.screen, CompareScreen)
    return app.screen


def text_of(app: DockerscopeApp, selector: str) -> str:
    return screen(app).query_one(selector, Static).render().plain


def table_rows(app: DockerscopeApp, selector: str) -> list[list[str]]:
    table = screen(app).query_one(selector, DataTable)
    return [[cell.plain for cell in table.get_row_at(row)] for row in range(table.row_count)]


def tree_rows(app: DockerscopeApp) -> list[str]:
    """The file tree as the user sees it, one line per row, without the guide lines."""
    tree = screen(app).query_one(FileTree)
    lines = [tree.render_line(y).text.rstrip() for y in range(min(tree.last_line + 1, tree.size.height))]
    return [line.lstrip(" │├└─") for line in lines]


def row_of(app: DockerscopeApp, name: str) -> str:
    return next(row for row in tree_rows(app) if f" {name} " in row + " ")


def subtitle(app: DockerscopeApp) -> str:
    return str(app.explorer.query_one("#images-pane").border_subtitle)


def row_marked(app: DockerscopeApp, name: str) -> bool:
    images = image_list(app)
    row = images.visible_items.index(next(image for image in images.visible_items if image.name == name))
    return images.get_row_at(row)[0].plain.startswith("● ")


async def compare(pilot: Pilot[None], app: DockerscopeApp, marked: str, highlighted: str) -> None:
    await highlight_image(pilot, app, marked)
    await pilot.press("space")
    await highlight_image(pilot, app, highlighted)
    await pilot.press("equals_sign")
    await wait_until(
        pilot, lambda: isinstance(app.screen, CompareScreen) and screen(app).query_one(DataTable).row_count > 0
    )


async def files_shown(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await pilot.press("3")
    await wait_until(pilot, lambda: bool(screen(app).query_one(FileTree).display and tree_rows(app)), timeout=30)


async def test_space_marks_an_image_until_pressed_again_and_through_refreshes(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        await pilot.press("space")
        await wait_until(pilot, lambda: f"marked: {APP_IMAGE}" in subtitle(app))
        assert row_marked(app, APP_IMAGE)
        await pilot.press("space")
        await wait_until(pilot, lambda: "marked" not in subtitle(app))
        assert not row_marked(app, APP_IMAGE)
        await pilot.press("space", "j", "r")
        await pilot.pause(0.5)
        assert f"marked: {APP_IMAGE}" in subtitle(app) and row_marked(app, APP_IMAGE)


async def test_equals_without_a_mark_says_how_to_mark(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        await pilot.press("equals_sign")
        await wait_until(pilot, lambda: any("Mark an image with Space" in note.message for note in app._notifications))
        assert app.screen is app.explorer
        assert all(command.title != "Compare with marked image" for command in app.get_system_commands(app.screen))


async def test_comparing_an_image_with_one_on_the_same_base(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await compare(pilot, app, APP_IMAGE, REBUILT_IMAGE)
        title = text_of(app, "#compare-title")
        assert f"A {APP_IMAGE}" in title and f"B {REBUILT_IMAGE}" in title
        await wait_until(pilot, lambda: "working it out" not in text_of(app, "#layers-summary"))
        summary = text_of(app, "#layers-summary")
        assert "2 layers shared, then they diverge at layer 3" in summary
        assert "shared base: dockerscope-test/base:1" in summary
        assert "A adds 5 layers (300kB) · B adds 1 layer (7B) · size delta B - A: -300kB" in summary
        rows = table_rows(app, "#compare-layers")
        assert rows[1][2] == rows[1][4] == "RUN /bin/busybox --install -s /bin"
        assert rows[2][2] == rows[2][4] == "▼ they diverge at layer 3"
        assert rows[3] == ["3", "0B", "WORKDIR /app", "7B", "RUN echo second > /round.txt"]
        assert rows[-1][:3] == ["7", "0B", "RUN rm -f /tmp/scratch"] and rows[-1][3:] == ["", ""]

        await pilot.press("2")
        assert screen(app).query_one(TabbedContent).active == "config-tab"
        config = {(row[1], row[2]): row for row in table_rows(app, "#compare-config")}
        assert config["Cmd", ""] == ["~", "Cmd", "", '["cat /app/hello.txt"]', '["/bin/sh"]']
        assert config["User", ""][3:] == ["1000", ""] and config["Env", "APP_HOME"][0] == "-"
        # The app image's hostile label is shown escaped, never as a terminal control code.
        assert config["Labels", "hostile.escape"][3] == "before\\x1b[2J\\x1b]0;pwned\\x07after"

        await files_shown(pilot, app)
        assert row_of(app, "round.txt").split()[:3] == ["+", "round.txt", "+7B"]
        assert row_of(app, "app/").split()[:3] == ["▼", "-", "app/"]
        assert row_of(app, "data.bin").split()[:3] == ["-", "data.bin", "-300kB"]
        assert "+1 added ~0 modified -6 removed" in text_of(app, "#files-summary")
        await pilot.press("s")
        assert "sort: size of the change" in text_of(app, "#files-summary")
        assert tree_rows(app)[0].split()[2] == "app/"
        await pilot.press("slash", *"round", "enter")
        assert [row.split()[1] for row in tree_rows(app)] == ["round.txt"]
        assert "1 paths match" in text_of(app, "#files-summary")
        # Enter keeps the filter and goes back to the tree; it opens nothing.
        assert app.focused is screen(app).query_one(FileTree)
        assert isinstance(app.screen, CompareScreen)
        assert not any("diff" in note.message for note in app._notifications)
        await pilot.press("escape")
        assert app.screen is app.explorer


async def test_enter_on_a_modified_file_shows_the_diff_of_its_versions(app: DockerscopeApp, first_build: str) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await highlight_image_id(pilot, app, first_build)
        await pilot.press("space")
        await highlight_image(pilot, app, REBUILT_IMAGE)
        await pilot.press("equals_sign")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await wait_until(pilot, lambda: "the same 2 layers" not in text_of(app, "#layers-summary"))
        await files_shown(pilot, app)
        assert tree_rows(app) == [row_of(app, "round.txt")]
        assert row_of(app, "round.txt").split()[:4] == ["~", "round.txt", "+1B", "6B→7B"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FileDiffScreen))
        lines = app.screen.query_one(DiffLines)
        await wait_until(pilot, lambda: bool(lines.lines))
        assert [line.plain for line in lines.lines] == [
            "--- a/round.txt",
            "+++ b/round.txt",
            "@@ -1 +1 @@",
            "-first",
            "+second",
        ]
        assert "A 6B · B 7B · 5 diff lines" in app.screen.query_one("#diff-status", Static).render().plain
        await pilot.press("escape")
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("escape")
        assert app.screen is app.explorer


async def test_unrelated_images_and_the_palette_entry(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await highlight_image(pilot, app, IMPORTED_IMAGE)
        await pilot.press("space")
        await highlight_image(pilot, app, APP_IMAGE)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for key in "compare with marked":
            await pilot.press("space" if key == " " else key)

        def offered() -> bool:
            """The palette lists the entry first."""
            commands = app.screen.query(CommandList)
            return (
                bool(commands)
                and commands.first().option_count > 0
                and "Compare with marked image" in str(commands.first().get_option_at_index(0).prompt)
            )

        await wait_until(pilot, offered)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, CompareScreen) and screen(app).query_one(DataTable).row_count > 0
        )
        assert "No layer in common: the images are unrelated" in text_of(app, "#layers-summary")
        assert table_rows(app, "#compare-layers")[0][2] == "▼ no layer in common"
        await files_shown(pilot, app)
        assert row_of(app, "app/").split()[:3] == ["▼", "+", "app/"]
        assert row_of(app, "busybox").split()[:3] == ["+", "busybox", "+1.98MB"]
        await pilot.press("slash", *"imported", "enter")
        assert [row.split()[:3] for row in tree_rows(app)] == [["▼", "etc/", "-9B"], ["-", "imported.txt", "-9B"]]
        await pilot.press("j", "enter")  # on a removed file: nothing to diff
        await wait_until(pilot, lambda: any("diff of a modified file" in note.message for note in app._notifications))
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("escape")
        assert app.screen is app.explorer
        assert shown_names(app)


class GatedService(DockerService):
    """The real service, with the reading thread held at its first progress report until the test
    opens the gate: the files are surely still being read when Escape is pressed."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.gate = threading.Event()
        self.reported = threading.Event()
        self.cancel: threading.Event | None = None

    async def image_layers(self, image_id: str, *, on_progress: ProgressCallback | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        def held(progress: ReadProgress) -> None:
            self.reported.set()
            self.gate.wait(10)
            if on_progress is not None:
                on_progress(progress)

        self.cancel = kwargs.get("cancel")
        return await super().image_layers(image_id, on_progress=held, **kwargs)


async def test_escape_while_the_files_are_read_cancels_the_reading(service: DockerService) -> None:
    gated = GatedService(service.connection)
    app = create_app(gated, interval=60)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await compare(pilot, app, APP_IMAGE, REBUILT_IMAGE)
        await pilot.press("3")
        await wait_until(pilot, gated.reported.is_set)
        await wait_until(pilot, lambda: screen(app).query_one("#compare-progress").display)
        await pilot.press("escape")
        assert app.screen is app.explorer
        assert any("cancelled" in note.message for note in app._notifications)
        assert gated.cancel is not None and gated.cancel.is_set()
        gated.gate.set()
        await wait_until(pilot, lambda: not any(t.name == "dockerscope-layers" for t in threading.enumerate()))
    gated.close()


async def test_two_images_of_a_docker_save_compare_as_on_the_daemon(docker_host: str, tmp_path: Path) -> None:
    saved = tmp_path / "saved.tar"
    subprocess.run(
        ["docker", "save", "-o", str(saved), BASE_IMAGE, WASTE_IMAGE],
        check=True,
        env={**os.environ, "DOCKER_HOST": docker_host},
    )
    app = create_app(open_archive(str(saved)), interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await compare(pilot, app, BASE_IMAGE, WASTE_IMAGE)
        await wait_until(pilot, lambda: "working it out" not in text_of(app, "#layers-summary"))
        assert "2 layers shared, then they diverge at layer 3" in text_of(app, "#layers-summary")
        rows = table_rows(app, "#compare-layers")
        assert rows[1][2] == rows[1][4] == "RUN /bin/busybox --install -s /bin"
        assert rows[4][2:] == [
            "",
            "4.1kB",
            "RUN echo version-two > /data/keep/config && rm /data/big.bin && rm -rf /data/gone",
        ]
        await pilot.press("2")
        assert any("History" in " ".join(row) for row in table_rows(app, "#compare-config"))
        await files_shown(pilot, app)
        assert row_of(app, "data/").split()[:3] == ["▼", "+", "data/"]
        await pilot.press("escape")
        assert app.screen is app.explorer
