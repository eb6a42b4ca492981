"""A hostile daemon: error answers full of escape sequences and markup, garbage, wrong shapes,
absurd values, nesting past Python's recursion limit, an event stream that breaks off. Replayed
over a unix socket to the real service, app and `dockerscope analyze`: nothing crashes, `q` still
quits, the problem is shown with its headline, and no control character reaches the screen."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from apphelpers import SIZE, inspect_tree, layer_table, wait_until
from dockerscope import analyze
from dockerscope.sanitize import sanitize
from dockerscope.service import (
    Connection,
    DaemonAnswerInvalid,
    DaemonError,
    DockerService,
)
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.inspect_tree import EXPAND_ALL_NODES, MAX_DEPTH
from recorded_daemon import Answer, RecordedDaemon, error_answer, nested_json

IMAGE_ID = "sha256:" + "c0" * 32
CONTAINER_ID = "e0" * 32
TAG = "hostile:1"
DIFF_ID = "sha256:" + "d1" * 32
# Retitle the terminal, reset it, write the clipboard (OSC 52), a C1 CSI, bidi override,
# zero-width space, Rich markup and a closing tag with nothing to close.
HOSTILE = "\x1b]0;pwned\x07\x1bc\x1b]52;c;cHduZWQ=\x07\x9b31m\u202eevil\u200b[bold]x[/]"
HOSTILE_MESSAGE = f"boom {HOSTILE} [/] end"
# What may not reach a widget or the terminal: C0, DEL, C1, zero-width and bidi controls, line
# separators, BOM, lone surrogates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")

INVALID = DaemonAnswerInvalid("", "").headline
FAILED = DaemonError("", "").headline


def _inspect(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "Id": IMAGE_ID,
        "RepoTags": [TAG],
        "RepoDigests": [],
        "Created": "2025-11-20T10:00:00Z",
        "Config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"ok": "yes"}},
        "Architecture": "amd64",
        "Os": "linux",
        "Size": 1000,
        "RootFS": {"Type": "layers", "Layers": [DIFF_ID]},
    }
    document.update(changes)
    return document


def _summary(**changes: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "Containers": 1,
        "Created": 1763600000,
        "Id": IMAGE_ID,
        "Labels": None,
        "ParentId": "",
        "RepoDigests": [],
        "RepoTags": [TAG],
        "SharedSize": -1,
        "Size": 1000,
    }
    summary.update(changes)
    return summary


HISTORY = [{"Created": 1763600000, "CreatedBy": "ADD rootfs.tar /", "Id": IMAGE_ID, "Size": 1000, "Tags": [TAG]}]


def base_recording() -> dict[str, Any]:
    """A sane daemon with one image (with one layer) and one container of it."""
    return {
        "/version": {"Version": "27.0.0", "ApiVersion": "1.45", "MinAPIVersion": "1.24", "Os": "linux"},
        "/info": {"Driver": "overlay2", "DockerRootDir": "/nonexistent/docker"},
        "/images/json": [_summary()],
        "/containers/json": [
            {
                "Id": CONTAINER_ID,
                "Names": ["/calm"],
                "Image": TAG,
                "ImageID": IMAGE_ID,
                "Command": "sh",
                "Created": 1763600100,
                "State": "exited",
                "Status": "Exited (0) 1 minute ago",
                "Labels": {},
            }
        ],
        f"/images/{IMAGE_ID}/json": _inspect(),
        f"/images/{TAG}/json": _inspect(),
        f"/images/{IMAGE_ID}/history": HISTORY,
        f"/images/{TAG}/history": HISTORY,
    }


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@dataclass(frozen=True)
class Case:
    """`expect`: `connection` (the first poll fails: the connection screen says `headline`),
    `detail` (the image's details fail: a notification says `headline`), `contents` (reading its
    layers fails), or `shown` (the daemon's oddities are absorbed and the image is shown)."""

    name: str
    answers: dict[str, Any]
    expect: str
    headline: str = ""


HOSTILE_CASES = [
    Case(
        "list 500 with escapes and markup", {"/images/json": error_answer(500, HOSTILE_MESSAGE)}, "connection", FAILED
    ),
    Case(
        "list is not JSON",
        {"/images/json": Answer(200, f"<html>{HOSTILE}", "text/html")},
        "connection",
        INVALID,
    ),
    Case("list is an object", {"/images/json": {"Id": IMAGE_ID}}, "connection", INVALID),
    Case(
        "inspect 500 with escapes and markup",
        {
            f"/images/{IMAGE_ID}/json": error_answer(500, HOSTILE_MESSAGE),
            f"/images/{TAG}/json": error_answer(500, HOSTILE_MESSAGE),
        },
        "detail",
        FAILED,
    ),
    Case(
        "inspect is a list",
        {f"/images/{IMAGE_ID}/json": [1, 2, 3], f"/images/{TAG}/json": [1, 2, 3]},
        "detail",
        INVALID,
    ),
    Case(
        "inspect nested 100,000 deep",
        {f"/images/{IMAGE_ID}/json": nested_json(100_000), f"/images/{TAG}/json": nested_json(100_000)},
        "detail",
        INVALID,
    ),
    Case(
        "history 500",
        {
            path: error_answer(500, HOSTILE_MESSAGE)
            for path in [f"/images/{IMAGE_ID}/history", f"/images/{TAG}/history"]
        },
        "detail",
        FAILED,
    ),
    Case(
        "export 500 with escapes and markup",
        {f"/images/{IMAGE_ID}/get": error_answer(500, HOSTILE_MESSAGE)},
        "contents",
        FAILED,
    ),
    Case(
        "export is garbage",
        {f"/images/{IMAGE_ID}/get": Answer(200, HOSTILE * 50, "application/x-tar")},
        "contents",
        "the image export could not be read",
    ),
    Case(
        "RootFS is a string",
        {f"/images/{IMAGE_ID}/json": _inspect(RootFS="layers"), f"/images/{TAG}/json": _inspect(RootFS="layers")},
        "shown",
    ),
    Case(
        "sizes are strings",
        {"/images/json": [_summary(Size="big")], f"/images/{IMAGE_ID}/json": _inspect(Size="12 MB")},
        "shown",
    ),
    Case(
        "created far in the future",
        {
            "/images/json": [_summary(Created=1e20)],
            f"/images/{IMAGE_ID}/json": _inspect(Created="+275760-09-13T00:00:00Z"),
        },
        "shown",
    ),
    Case("created before the epoch", {"/images/json": [_summary(Created=-1e20)]}, "shown"),
    Case(
        "names and labels that attack the terminal",
        {
            "/images/json": [_summary(RepoTags=[f"evil{HOSTILE}:1"], Labels={HOSTILE: HOSTILE})],
            f"/images/{IMAGE_ID}/json": _inspect(
                RepoTags=[f"evil{HOSTILE}:1"], Config={"Labels": {HOSTILE: HOSTILE, f"[bold]{HOSTILE}": "[/]"}}
            ),
        },
        "shown",
    ),
    Case(
        "ids, states and diff ids that attack the terminal",
        {
            "/images/json": [_summary(), _summary(Id=f"sha256:{HOSTILE}", RepoTags=["other:1"])],
            "/containers/json": [
                {"Id": HOSTILE, "Names": ["/x"], "ImageID": IMAGE_ID, "State": HOSTILE, "Status": HOSTILE}
            ],
            f"/images/{IMAGE_ID}/json": _inspect(RootFS={"Type": "layers", "Layers": [f"sha256:{HOSTILE}"]}),
        },
        "shown",
    ),
    Case(
        "inspect nested just short of the recursion limit",
        {f"/images/{IMAGE_ID}/json": _inspect(Deep=_nested(900))},
        "shown",
    ),
    Case(
        "a huge inspect document",
        {
            f"/images/{IMAGE_ID}/json": _inspect(
                Config={
                    "Env": [f"VAR_{index}=value" for index in range(10_000)],
                    "Labels": {"huge": "x" * 1_000_000, f"key{HOSTILE}": "v"},
                }
            )
        },
        "shown",
    ),
    Case(
        "event stream sends garbage and closes",
        {"/events": Answer(200, f"garbage{HOSTILE}\n{{not json", stream=True)},
        "shown",
    ),
]


@pytest.fixture
def hostile_daemon(short_tmp: Path) -> Iterator[Callable[[Case], RecordedDaemon]]:
    started: list[RecordedDaemon] = []

    def start(case: Case) -> RecordedDaemon:
        daemon = RecordedDaemon(short_tmp / f"h{len(started)}.sock", {**base_recording(), **case.answers})
        started.append(daemon.__enter__())
        return daemon

    yield start
    for daemon in started:
        daemon.__exit__()


def _service(daemon: RecordedDaemon) -> DockerService:
    return DockerService(Connection(host=daemon.url, source="test", client_kwargs={"base_url": daemon.url}))


def _texts(app: DockerscopeApp) -> list[str]:
    """Every text the user can see: statics, tables, tree labels, notifications, titles."""
    texts = [notification.message for notification in app._notifications]
    texts += [notification.title for notification in app._notifications]
    screen = app.screen
    for static in screen.query(Static):
        rendered = static.render()
        texts.append(getattr(rendered, "plain", str(rendered)))
    for table in screen.query(DataTable):
        for row in range(table.row_count):
            texts += [cell.plain if isinstance(cell, Text) else str(cell) for cell in table.get_row_at(row)]
    for widget in screen.query("*"):
        for title in (widget.border_title, widget.border_subtitle):
            if title:
                texts.append(str(title))
    if screen is app.explorer:
        pending = [inspect_tree(app).root]
        while pending:
            node = pending.pop()
            texts.append(node.label.plain)
            pending.extend(node.children)
    return texts


def _notified(app: DockerscopeApp, text: str) -> bool:
    return any(text in notification.message for notification in app._notifications)


def _titled(app: DockerscopeApp, title: str) -> bool:
    return any(notification.title == title for notification in app._notifications)


def _connection_text(app: DockerscopeApp) -> str:
    screen = app.screen
    if not isinstance(screen, ConnectionScreen):
        return ""
    return "".join(problem.render().plain for problem in screen.query("#connection-problem").results(Static))


def _tree_depth(app: DockerscopeApp) -> int:
    deepest = 0
    pending = [(inspect_tree(app).root, 0)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in node.children)
    return deepest


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[case.name for case in HOSTILE_CASES])
async def test_the_app_survives_a_hostile_daemon(case: Case, hostile_daemon: Callable[[Case], RecordedDaemon]) -> None:
    service = _service(hostile_daemon(case))
    app = create_app(service, interval=3600)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        if case.expect == "connection":
            await wait_until(pilot, lambda: case.headline in _connection_text(app))
            assert "Cannot reach" not in _connection_text(app)
        elif case.expect == "detail":
            await wait_until(pilot, lambda: _notified(app, case.headline))
        else:
            await wait_until(pilot, lambda: layer_table(app).row_count > 0 and len(inspect_tree(app).root.children) > 0)
        if case.expect == "contents":
            await pilot.press("3", "enter")
            await wait_until(pilot, lambda: _titled(app, "Could not read the layers"))
            assert _notified(app, case.headline), [n.message for n in app._notifications]
            await wait_until(pilot, lambda: app.screen is app.explorer)
        if app.screen is app.explorer:
            # Every key that walks the document: open everything (three presses), close it again.
            await pilot.press("2", "plus", "plus", "plus")
            await pilot.pause()
            assert _tree_depth(app) <= MAX_DEPTH
            await pilot.press("minus", "1", "down", "up", "r")
            await pilot.pause()
        for text in _texts(app):
            assert not UNSAFE.search(text.replace("\n", "")), ascii(text)  # line breaks are the app's own
        assert app.is_running
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


def _analyze(daemon: RecordedDaemon, reference: str = TAG) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", reference, "--host", daemon.url, "--source", "export"],
        capture_output=True,
        timeout=60,
        env=environment,
    )


ANALYZE_CASES = [case for case in HOSTILE_CASES if case.expect in {"detail", "contents"}] + [
    Case("inspect by reference 500", {f"/images/{TAG}/json": error_answer(500, HOSTILE_MESSAGE)}, "detail", FAILED),
]


def _assert_one_clean_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8")
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert not UNSAFE.search(text[:-1]), ascii(text)
    assert "Traceback" not in text
    return text


@pytest.mark.parametrize("case", ANALYZE_CASES, ids=[case.name for case in ANALYZE_CASES])
def test_analyze_fails_with_one_clean_line(case: Case, hostile_daemon: Callable[[Case], RecordedDaemon]) -> None:
    result = _analyze(hostile_daemon(case))
    assert result.returncode == 2, result.stderr.decode(errors="replace")
    assert result.stdout == b""
    line = _assert_one_clean_line(result.stderr)
    assert line.startswith(f"dockerscope: {TAG}: ")
    assert case.headline in line


def test_analyze_names_a_daemon_error_by_its_headline_and_shows_its_text_literally(
    hostile_daemon: Callable[[Case], RecordedDaemon],
) -> None:
    case = Case("inspect 500", {f"/images/{TAG}/json": error_answer(500, HOSTILE_MESSAGE)}, "detail", FAILED)
    line = _assert_one_clean_line(_analyze(hostile_daemon(case)).stderr)
    assert FAILED in line
    assert sanitize(HOSTILE) in line  # shown, as visible escapes


def test_analyze_on_a_missing_socket_says_so_in_one_line(short_tmp: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", TAG, "--host", f"unix://{short_tmp}/none.sock"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    line = _assert_one_clean_line(result.stderr)
    assert "Cannot reach the daemon" in line


def _counts(app: DockerscopeApp) -> tuple[int, int]:
    """Nodes in the inspect tree, and how many of them are open."""
    nodes = opened = 0
    pending = [inspect_tree(app).root]
    while pending:
        node = pending.pop()
        nodes += 1
        opened += node.is_expanded
        pending.extend(node.children)
    return nodes, opened


async def test_expand_all_adds_a_bounded_number_of_nodes_per_press_and_stops_at_a_depth(
    hostile_daemon: Callable[[Case], RecordedDaemon],
) -> None:
    widest = 3_000  # the largest branch: one press may pass its budget by that much
    wide = {f"object-{index}": {"deeper": {"value": index}} for index in range(widest)}
    case = Case("wide and deep", {f"/images/{IMAGE_ID}/json": _inspect(Wide=wide, Deep=_nested(900))}, "shown")
    app = create_app(_service(hostile_daemon(case)), interval=3600)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, lambda: len(inspect_tree(app).root.children) > 0)
        await pilot.press("2")
        presses = 0
        while presses < 20:  # press on until a press opens nothing more
            nodes, opened = _counts(app)
            await pilot.press("plus")
            await pilot.pause()
            presses += 1
            assert _counts(app)[0] - nodes <= EXPAND_ALL_NODES + widest
            if _counts(app)[1] == opened:
                break
        assert presses >= 3  # the first presses each stopped at their budget…
        assert _notified(app, "+ opens more")
        nodes, opened = _counts(app)
        assert nodes > 3 * widest  # …and together opened every object of Wide and its `deeper`
        labels = [text for text in _texts(app) if text.endswith("nested too deep to show")]
        assert len(labels) == 1
        assert _tree_depth(app) == MAX_DEPTH
        await pilot.press("minus")
        await pilot.pause()
        assert _counts(app)[1] == 1  # the document itself
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running)


def _layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, errors="surrogateescape") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _export(layers: list[bytes], diff_ids: list[str]) -> bytes:
    """A legacy `docker save` stream of an image with these layer tars."""
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    members = {f"{index}/layer.tar": layer for index, layer in enumerate(layers)}
    members["config.json"] = config
    members["manifest.json"] = json.dumps(
        [{"Config": "config.json", "RepoTags": [TAG], "Layers": [f"{index}/layer.tar" for index in range(len(layers))]}]
    ).encode()
    return _layer_tar(members)


def _hostile_image() -> dict[str, Any]:
    """An image whose tags, instructions and file paths attack the terminal, with a wasted copy
    of a file at a hostile path (and one whose name is not UTF-8): every one of them is in the report."""
    hostile_path = f"app/{HOSTILE}"
    layers = [
        _layer_tar({hostile_path: b"x" * 3000, "app/bad\udcffname": b"y" * 10}),
        _layer_tar({hostile_path: b"z" * 10, "app/bad\udcffname": b""}),
    ]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    tags = [f"evil{HOSTILE}:1"]
    inspect = _inspect(RepoTags=tags, RootFS={"Type": "layers", "Layers": diff_ids})
    history = [
        {"Created": 1763600001, "CreatedBy": f"RUN {HOSTILE}", "Id": IMAGE_ID, "Size": 10, "Tags": tags},
        {"Created": 1763600000, "CreatedBy": "ADD rootfs.tar /", "Id": "<missing>", "Size": 3010, "Tags": None},
    ]
    return {
        f"/images/{IMAGE_ID}/json": inspect,
        f"/images/{TAG}/json": inspect,
        f"/images/{IMAGE_ID}/history": history,
        f"/images/{TAG}/history": history,
        f"/images/{IMAGE_ID}/get": Answer(200, _export(layers, diff_ids), "application/x-tar"),
    }


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from _strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _strings(child)


def test_analyze_reports_a_hostile_image_with_every_string_sanitised(
    hostile_daemon: Callable[[Case], RecordedDaemon],
) -> None:
    daemon = hostile_daemon(Case("hostile image", _hostile_image(), "shown"))
    as_json = subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", TAG, "--host", daemon.url, "--source", "export", "--json"],
        capture_output=True,
        timeout=60,
    )
    assert as_json.returncode == 0, as_json.stderr.decode(errors="replace")
    report = json.loads(as_json.stdout)
    strings = list(_strings(report))
    for text in strings:
        assert not UNSAFE.search(text), ascii(text)
    assert report["image"]["tags"] == [sanitize(f"evil{HOSTILE}:1")]
    assert report["image"]["top_wasted"][0]["path"] == sanitize(f"/app/{HOSTILE}")
    assert sanitize(f"RUN {HOSTILE}") in [layer["instruction"] for layer in report["layers"]]
    assert any("\\udcff" in text for text in strings)  # the name that is not UTF-8, escaped

    as_text = _analyze(daemon)
    assert as_text.returncode == 0, as_text.stderr.decode(errors="replace")
    output = as_text.stdout.decode("utf-8")
    assert not UNSAFE.search(output.replace("\n", "")), ascii(output)
    assert sanitize(f"/app/{HOSTILE}") in output
    assert as_text.stderr == b""


async def test_an_error_no_worker_expects_is_shown_and_the_app_stays_usable(
    hostile_daemon: Callable[[Case], RecordedDaemon],
) -> None:
    """The service promises only DockerServiceError; should a promise break (a bug, an answer
    nobody foresaw), every worker shows the error instead of ending the app."""
    service = _service(hostile_daemon(Case("sane", {}, "shown")))
    app = create_app(service, interval=3600)

    async def broken(*args: object, **kwargs: object) -> Any:
        raise KeyError(f"no {HOSTILE}")

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, lambda: layer_table(app).row_count > 0)
        service.image_context = broken  # type: ignore[method-assign]
        app.explorer._reload_context(IMAGE_ID)
        await wait_until(pilot, lambda: _titled(app, "Could not work out the layer sharing"))
        service.image_contents = broken  # type: ignore[method-assign]
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: _titled(app, "Could not read the layers"))
        await wait_until(pilot, lambda: app.screen is app.explorer)
        service.image_detail = broken  # type: ignore[method-assign]
        app.explorer._select(None)
        await pilot.press("1", "down", "up")
        await wait_until(pilot, lambda: _titled(app, "Could not load details"))
        unexpected = [n.message for n in app._notifications if "Unexpected error: KeyError" in n.message]
        assert len(unexpected) == 3, [n.message for n in app._notifications]
        for text in _texts(app):
            assert not UNSAFE.search(text.replace("\n", "")), ascii(text)
        assert sanitize(HOSTILE) in unexpected[0]
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


def test_analyze_turns_an_error_nobody_expected_into_one_line(
    hostile_daemon: Callable[[Case], RecordedDaemon],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def broken(*args: object, **kwargs: object) -> Any:
        raise KeyError(f"no {HOSTILE}\nsecond line")

    monkeypatch.setattr(DockerService, "image_detail_of", broken)
    daemon = hostile_daemon(Case("sane", {}, "shown"))
    assert analyze.main([TAG, "--host", daemon.url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _assert_one_clean_line(captured.err.encode())
    assert line.startswith(f"dockerscope: {TAG}: KeyError: ")
    assert sanitize(HOSTILE) in line
