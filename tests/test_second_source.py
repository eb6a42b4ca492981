"""The UI on a second `ImageSource` (tests/recorded_source.py): recorded answers from memory, no
daemon. It lists, inspects and relates images as on a daemon, and leaves out what that source
cannot do: containers, the update stream, layer contents."""

from __future__ import annotations

import asyncio
import io
import itertools
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from textual.widgets import Static

from apphelpers import SIZE, highlight_image, image_list, layer_table, shown_names, status_text, wait_until
from dockerscope import analyze, clock
from dockerscope.service import Connection, ContentsUnavailable, DockerService, ImageSource, Watcher
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.layer_contents_screen import LayerContentsScreen
from dockerscope.ui.layer_info_screen import LayerInfoScreen
from recorded_daemon import RecordedDaemon, load_recording
from recorded_source import RecordedSource

RECORDING = load_recording("recorded-fixtures.json")
FROZEN_NOW = datetime(2026, 11, 29, 3, 0, 0, tzinfo=timezone.utc)


def _notified(app: DockerscopeApp, text: str) -> bool:
    return any(text in notification.message for notification in app._notifications)


def _layer_summary(app: DockerscopeApp) -> str:
    return app.explorer.query_one("#layer-summary", Static).render().plain


async def _what_the_app_shows(source: ImageSource) -> tuple[list[str], list[list[str]], str]:
    """The image list, and the layer rows and summary of one image, once its sharing is known."""
    app = create_app(source, interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, "dockerscope-test/chain-b:1")
        await wait_until(pilot, lambda: "unique" in _layer_summary(app))
        table = layer_table(app)
        rows = [[cell.plain for cell in table.get_row_at(row)] for row in range(table.row_count)]
        return shown_names(app), rows, _layer_summary(app)


async def test_a_second_source_shows_what_a_daemon_with_the_same_answers_shows(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "utc_now", lambda: FROZEN_NOW)
    with RecordedDaemon(short_tmp / "recorded.sock", RECORDING) as daemon:
        service = DockerService(
            Connection(host="unix:///recorded", source="test", client_kwargs={"base_url": daemon.url})
        )
        on_daemon = await _what_the_app_shows(service)
    on_recording = await _what_the_app_shows(RecordedSource(RECORDING))
    assert on_recording == on_daemon
    names, rows, summary = on_recording
    assert sorted(names) == sorted(
        image["RepoTags"][0].replace("<none>:<none>", "<none>") for image in RECORDING["/images/json"]
    )
    assert any("base image above this line: dockerscope-test/chain-a:1" in row[-1] for row in rows)
    assert "unique 0B · shared 1.99MB · base: dockerscope-test/chain-a:1" in summary


async def test_the_app_leaves_out_what_a_source_cannot_do() -> None:
    source = RecordedSource(RECORDING)
    app = create_app(source, interval=3600)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await highlight_image(pilot, app, "dockerscope-test/chain-b:1")
        status = status_text(app)
        assert "● polling" in status and "event stream" not in status
        assert "Recording 20.10.24+dfsg1 (API 1.41) · 8 images · 0 containers" in status
        assert not app.explorer.query_one("#containers-pane").display

        await pilot.press("4")
        await wait_until(pilot, lambda: _notified(app, "recording.json has no containers."))
        assert app.focused is image_list(app)
        await pilot.press("c")
        await wait_until(pilot, lambda: len(app._notifications) == 2)
        assert app.focused is image_list(app)

        await pilot.press("3")
        assert app.focused is layer_table(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: _notified(app, "cannot list what is inside a layer"))
        assert not isinstance(app.screen, LayerContentsScreen)
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, LayerInfoScreen))
    assert source.closed


async def test_a_source_without_an_update_stream_is_polled_every_interval_and_never_asked_for_one() -> None:
    source = RecordedSource(RECORDING)
    watcher = Watcher(source, interval=0.05)
    polled_at: list[float] = []
    async for update in watcher.updates():
        polled_at.append(time.monotonic())
        assert update.snapshot is not None and not update.live
        if len(polled_at) == 4:
            break
    assert source.polls == 4
    assert source.stream_requests == 0
    assert min(later - earlier for earlier, later in itertools.pairwise(polled_at)) >= 0.045


def test_analyze_says_a_source_without_layer_contents_cannot_be_analysed() -> None:
    source = RecordedSource(RECORDING)
    args = analyze.build_parser().parse_args(["dockerscope-test/chain-b:1"])
    with pytest.raises(ContentsUnavailable, match=r"recording\.json cannot list what is inside layers"):
        asyncio.run(analyze._analyze(source, args, io.StringIO()))


def test_analyze_refuses_the_overlay_source_of_a_daemon_elsewhere_before_asking_it_anything() -> None:
    # Nothing listens there: the answer comes from the source's capabilities alone.
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", "app:1", "--source", "overlay", "--host", "tcp://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "dockerscope: app:1: --source overlay reads a daemon's own directories; tcp://127.0.0.1:9 is not local\n"
    )
