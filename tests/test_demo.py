"""`dockerscope --demo`: the recorded daemon shipped in the package, opened from the command line or
from the no-daemon screen with `d`, shows every pane as a daemon would, marked DEMO."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets.tree import TreeNode

from apphelpers import (
    SIZE,
    container_list,
    highlight_container,
    highlight_image,
    inspect_tree,
    layer_table,
    shown_containers,
    shown_names,
    status_text,
    wait_until,
)
from dockerscope import cli
from dockerscope.service import Connection, DockerService, DockerServiceError, ImageSource
from dockerscope.service.demo import DEMO_FILE, demo_source, read_recording
from dockerscope.service.layer_contents import diff_ids
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.layer_contents_screen import LayerContentsScreen

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ROOT / "tui" / "dockerscope" / "service" / DEMO_FILE
CONTROL = {chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)]}
IMAGES = [
    "demo/base:1",
    "demo/bloated:1",
    "demo/hostile:1",
    "demo/web:1",
    "demo/worker:1",
    "<none>",
]
STATES = {
    "web": "running",
    "queue-worker": "paused",
    "batch-job": "exited",
    "sdk-cleanup": "exited",
    "web-staging": "created",
    "crashloop": "restarting",
    "stuck-job": "dead",
}


def _recording() -> dict[str, object]:
    document = json.loads(gzip.decompress(PACKAGED.read_bytes()))
    assert isinstance(document, dict)
    return document


def _demo_app_from_the_command_line(monkeypatch: pytest.MonkeyPatch) -> DockerscopeApp:
    """The app `dockerscope --demo` builds, not yet run (the test runs it under Pilot)."""
    built: list[DockerscopeApp] = []
    monkeypatch.setattr(DockerscopeApp, "run", lambda app, *args, **kwargs: built.append(app))
    assert cli.main(["--demo"]) == 0
    return built[0]


def _summary(app: DockerscopeApp) -> str:
    return app.explorer.query_one("#layer-summary", Static).render().plain


def _all_nodes(node: TreeNode[object]) -> Iterator[TreeNode[object]]:
    yield node
    for child in node.children:
        yield from _all_nodes(child)


def _child(node: TreeNode[object], key: str) -> TreeNode[object]:
    return next(child for child in node.children if child.label.plain.split(" ")[0].rstrip(":") == key)


async def _open_contents(pilot: Pilot[None], app: DockerscopeApp) -> LayerContentsScreen:
    await pilot.press("3", "enter")
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, LayerContentsScreen) and bool(app.screen.query_one(FileTree).root.children),
    )
    assert isinstance(app.screen, LayerContentsScreen)
    return app.screen


async def test_the_demo_lists_images_and_containers_marked_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _demo_app_from_the_command_line(monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(shown_containers(app)) == len(STATES))
        status = status_text(app)
        assert status.startswith(" DEMO  recorded snapshot of Docker 20.10.24+dfsg1 (API 1.41)")
        assert "6 images · 7 containers" in status and "nothing here is live" in status
        assert sorted(shown_names(app)) == sorted(IMAGES)
        states = {container.name: container.state for container in container_list(app).visible_items}
        assert states == STATES

        await highlight_image(pilot, app, "demo/web:1")
        await wait_until(pilot, lambda: "unique" in _summary(app))
        assert inspect_tree(app).root.label.plain == "demo/web:1"
        table = layer_table(app)
        rows = [[cell.plain for cell in table.get_row_at(row)] for row in range(table.row_count)]
        assert any("base image above this line: demo/base:1" in row[-1] for row in rows)
        assert rows[0][4] == "5 other" and any(row[4] == "only here" for row in rows)
        assert "base: demo/base:1" in _summary(app)


async def test_enter_on_a_layer_of_the_demo_lists_its_files_and_the_wasted_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _demo_app_from_the_command_line(monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, "demo/bloated:1")
        screen = await _open_contents(pilot, app)
        assert "read from recording" in screen.query_one("#contents-title", Static).render().plain
        wasted = screen.query_one("#wasted-summary", Static).render().plain
        assert "MB" in wasted, wasted
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.explorer)


async def test_a_demo_container_shows_its_writable_layer_and_its_files(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _demo_app_from_the_command_line(monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await highlight_container(pilot, app, "web")
        await wait_until(pilot, lambda: "writable layer" in _summary(app))
        assert "2 added, 7 changed, 0 deleted" in _summary(app)
        screen = await _open_contents(pilot, app)
        title = screen.query_one("#contents-title", Static).render().plain
        assert title.startswith("Layer contents of web ·") and "container writable layer" in title
        tree = screen.query_one(FileTree)
        paths = {str(node.data.path) for node in _all_nodes(tree.root) if node.data is not None}  # type: ignore[attr-defined]
        assert "var/log/web/access.log" in paths, paths


async def test_hostile_labels_and_env_of_the_demo_show_sanitised(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _demo_app_from_the_command_line(monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, "demo/hostile:1")
        tree = inspect_tree(app)
        await pilot.press("2", "plus")
        await pilot.pause()
        labels = _child(_child(tree.root, "Config"), "Labels")
        markup = _child(labels, "demo.markup").label
        assert markup.plain == "demo.markup: [bold red]alarm[/bold red] [link=https://example.invalid]click[/link]"
        assert {str(span.style) for span in markup.spans} <= {"bold", "green"}
        escape = _child(labels, "demo.escape").label.plain
        assert escape.startswith("demo.escape: before\\x1b[2J\\x1b]0;pwned\\x07")
        for node in _all_nodes(tree.root):
            assert not CONTROL & set(node.label.plain), node.label.plain
        long_value = _child(labels, "demo.long").label.plain
        assert len(long_value) < 1000, len(long_value)

        table = layer_table(app)
        await pilot.press("3")
        while "mkdir" not in table.get_row_at(table.cursor_row)[-1].plain:
            await pilot.press("j")
        screen = await _open_contents(pilot, app)
        data = next(node for node in screen.query_one(FileTree).root.children if "data" in node.label.plain)
        data.expand()
        await wait_until(pilot, lambda: bool(data.children))
        label = data.children[0].label
        assert isinstance(label, Text) and "[bold red]alarm[blink]" in label.plain
        assert not any("bold" in str(span.style) for span in label.spans)


async def test_d_on_the_no_daemon_screen_opens_the_demo() -> None:
    host = "tcp://127.0.0.1:1"
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    closed: list[bool] = []
    monkey_close = service.close

    def close() -> None:
        closed.append(True)
        monkey_close()

    service.close = close  # type: ignore[method-assign]
    app = create_app(service, interval=0.3, demo=demo_source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
        footer_keys = {binding.key for _, binding, enabled, _ in app.screen.active_bindings.values() if enabled}
        assert "d" in footer_keys
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen is app.explorer and len(shown_names(app)) == len(IMAGES))
        assert closed == [True]
        assert "DEMO" in status_text(app)
        await pilot.pause(1.0)  # several of the old source's retry intervals: none brings its screen back
        assert app.screen is app.explorer
        await highlight_image(pilot, app, "demo/worker:1")


async def test_without_a_demo_the_no_daemon_screen_offers_none() -> None:
    host = "tcp://127.0.0.1:1"
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    app = create_app(service, interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
        assert "d" not in {binding.key for _, binding, _, _ in app.screen.active_bindings.values()}
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConnectionScreen)


def test_the_packaged_recording_is_complete_and_consistent() -> None:
    source: ImageSource = demo_source()
    assert source.capabilities.containers and source.capabilities.layer_contents
    assert not source.capabilities.events and not source.capabilities.fast_path
    recording = read_recording(PACKAGED.read_bytes())
    answers = recording.answers
    image_ids = {image["Id"] for image in answers["/images/json"]}
    for image_id in image_ids:
        assert answers[f"/images/{image_id}/history"]
        layers = diff_ids(answers[f"/images/{image_id}/json"])
        assert layers and all(diff_id in recording.layers for diff_id in layers)
    for container in answers["/containers/json"]:
        assert container["ImageID"] in image_ids
        assert f"/containers/{container['Id']}/json" in answers
        assert f"/containers/{container['Id']}/changes" in answers
        assert container["Id"] in recording.writable
    assert any(listing.entries for listing in recording.writable.values())


def test_the_packaged_recording_is_small_and_names_nothing_of_the_machine_it_was_recorded_on() -> None:
    assert PACKAGED.stat().st_size < 300_000
    answers = read_recording(PACKAGED.read_bytes()).answers
    text = json.dumps(answers)
    assert "dockerscope-dockerd" not in text and "KernelVersion" not in text
    inspects = [answer for path, answer in answers.items() if path.endswith("/json") and isinstance(answer, dict)]
    directories = [
        directory
        for inspect in inspects
        for value in (inspect.get("GraphDriver") or {}).get("Data", {}).values()
        for directory in value.split(":")
    ]
    directories += [inspect[field] for inspect in inspects for field in ("LogPath", "HostsPath") if field in inspect]
    assert len(directories) > 50
    assert all(directory.startswith("/var/lib/docker/") for directory in directories if directory), directories


# mtime=0 and ids: a gzip header holds the time it was made, and pytest-xdist refuses to run when its
# workers, collecting a second apart, see different parameters.
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not gzip",
        gzip.compress(b"{", mtime=0),
        gzip.compress(b'{"format": "other"}', mtime=0),
        gzip.compress(b"[]", mtime=0)[:-4],
    ],
    ids=["empty", "not gzip", "not JSON", "another format", "truncated"],
)
def test_a_damaged_recording_is_one_clear_error(data: bytes) -> None:
    with pytest.raises(DockerServiceError, match="the demo recording cannot be read"):
        read_recording(data)


def test_a_damaged_layer_listing_is_refused() -> None:
    document = _recording()
    document["layers"][0]["size"][0] = -1  # type: ignore[index]
    with pytest.raises(DockerServiceError, match="is damaged"):
        read_recording(gzip.compress(json.dumps(document).encode()))


def test_a_missing_recording_ends_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("dockerscope.service.demo.DEMO_FILE", "no-such-recording.json.gz")
    assert cli.main(["--demo"]) == 2
    assert "the demo recording is missing from the package" in capsys.readouterr().err


def test_the_wheel_ships_the_recording(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("dockerscope-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(f"dockerscope/service/{DEMO_FILE}") == PACKAGED.read_bytes()
