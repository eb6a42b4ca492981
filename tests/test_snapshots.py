"""Reviewed SVG snapshots of the app, on answers recorded from the private daemon's fixture images
and a frozen clock, so they do not change from run to run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from apphelpers import highlight_image, inspect_tree, layer_table, wait_until, wait_until_live
from dockerscope import clock
from dockerscope.service import Connection, DockerService, SourceCapabilities, file_reading
from dockerscope.service.demo import demo_source
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.compare_screen import CompareScreen
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.file_view_screen import ContentView, TextLines
from recorded_daemon import RecordedDaemon, load_recording

TERMINAL = (140, 40)
FROZEN_NOW = datetime(2026, 11, 29, 3, 0, 0, tzinfo=timezone.utc)
SHOWN_HOST = "unix:///var/run/docker.sock"

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utc_now", lambda: FROZEN_NOW)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def recorded_app(short_tmp: Path) -> Iterator[DockerscopeApp]:
    with RecordedDaemon(short_tmp / "recorded.sock", load_recording("recorded-fixtures.json")) as daemon:
        service = DockerService(Connection(host=SHOWN_HOST, source="test", client_kwargs={"base_url": daemon.url}))
        yield create_app(service, interval=3600)


async def _loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, DockerscopeApp)
    summary = app.explorer.query_one("#layer-summary", Static)
    # Sharing and the base image arrive after the layers: wait for them, or the picture depends on timing.
    await wait_until(pilot, lambda: layer_table(app).row_count > 0 and "unique" in summary.render().plain)
    await wait_until_live(pilot, app)
    await pilot.pause()


def _then(*steps: Callable[[Pilot[Any]], Awaitable[None]]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        for step in steps:
            await step(pilot)

    return run


def test_explorer_shows_images_inspect_and_layers(snap_compare: SnapCompare, recorded_app: DockerscopeApp) -> None:
    assert snap_compare(recorded_app, terminal_size=TERMINAL, run_before=_loaded)


def test_inspect_tree_with_config_expanded(snap_compare: SnapCompare, recorded_app: DockerscopeApp) -> None:
    async def open_config(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DockerscopeApp)
        tree = inspect_tree(app)
        await pilot.press("2")
        config = next(node for node in tree.root.children if node.label.plain.startswith("Config "))
        while tree.cursor_node is not config:
            await pilot.press("j")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(config.children) > 0)
        await pilot.pause()

    assert snap_compare(recorded_app, terminal_size=TERMINAL, run_before=_then(_loaded, open_config))


def test_help_screen(snap_compare: SnapCompare, recorded_app: DockerscopeApp) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(recorded_app, terminal_size=TERMINAL, run_before=_then(_loaded, open_help))


def test_connection_problem_screen(snap_compare: SnapCompare) -> None:
    host = "unix:///nonexistent/docker.sock"
    app = create_app(DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host})), 3600)

    async def failed(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConnectionScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=TERMINAL, run_before=failed)


def test_comparison_of_two_images_on_one_base(snap_compare: SnapCompare, recorded_app: DockerscopeApp) -> None:
    async def compare(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DockerscopeApp)
        await highlight_image(pilot, app, "dockerscope-test/app:1")
        await pilot.press("space")
        await highlight_image(pilot, app, "dockerscope-test/tool:1")
        await pilot.press("equals_sign")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        summary = app.screen.query_one("#layers-summary", Static)
        await wait_until(pilot, lambda: "shared base: dockerscope-test/base:1" in summary.render().plain)
        await pilot.pause()

    assert snap_compare(recorded_app, terminal_size=TERMINAL, run_before=_then(_loaded, compare))


class DemoWithBytes:
    """The packaged demo with the bytes of one file its build script wrote (scripts/build-demo.sh):
    a source with file contents and nothing that changes from run to run."""

    WORK_SH = b'#!/bin/sh\nwhile read -r job; do echo "done: $job"; done\n'

    def __init__(self) -> None:
        self._demo = demo_source()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._demo, name)

    @property
    def capabilities(self) -> SourceCapabilities:
        return replace(self._demo.capabilities, file_contents=True)

    async def read_layer_files(self, image_id: str, wanted: Any, open_sink: Any, **kwargs: Any) -> str:
        for layer, paths in wanted.items():
            for path in paths:
                if path == "usr/local/bin/work.sh":
                    sink = open_sink(layer, path, len(self.WORK_SH))
                    sink.write(self.WORK_SH)
                    sink.close()
        return "demo"


def test_file_view(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_reading, "time", SimpleNamespace(perf_counter=lambda: 0.0))
    app = create_app(DemoWithBytes(), interval=3600)  # type: ignore[arg-type]

    async def open_script(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, DockerscopeApp)
        await highlight_image(pilot, pilot.app, "demo/worker:1")
        await pilot.press("3")
        table = layer_table(pilot.app)
        while "work.sh" not in table.get_row_at(table.cursor_row)[-1].plain:
            await pilot.press("j")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query(FileTree)))
        tree = pilot.app.screen.query_one(FileTree)
        await wait_until(pilot, lambda: bool(tree.root.children))
        while tree.cursor_node is None or tree.cursor_node.data is None or tree.cursor_node.data.is_dir:
            await pilot.press("j")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query(ContentView)))
        view = pilot.app.screen.query_one(ContentView)
        await wait_until(pilot, lambda: isinstance(view.lines, TextLines) and len(view.lines.highlighted) == 2)
        await pilot.pause()

    assert snap_compare(app, terminal_size=TERMINAL, run_before=open_script)
