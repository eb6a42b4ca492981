"""The service against a daemon that answers nonsense: every failure leaves as a typed error that
says what kind of trouble it is, and odd field values are read without an error."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from apphelpers import SIZE, image_list, layer_table, shown_names, wait_until
from dockerscope.service import (
    Connection,
    DaemonAnswerInvalid,
    DaemonError,
    DaemonUnreachable,
    DockerService,
    DockerServiceError,
    ImageSummary,
    LayerKind,
    answers,
    layers,
)
from dockerscope.ui import create_app
from dockerscope.ui.help_screen import HelpScreen
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.layer_table import MAX_HISTORY_ROWS
from dockerscope.ui.object_list import MAX_ROWS, ORDER_IN_THREAD_FROM
from recorded_daemon import Answer, RecordedDaemon, error_answer, nested_json

IMAGE_ID = "sha256:" + "a" * 64
LAYER = "sha256:" + "b" * 64
VERSION = {"Version": "29.0.0", "ApiVersion": "1.52", "MinAPIVersion": "1.24", "Os": "linux"}
IMAGE = {"Id": IMAGE_ID, "RepoTags": ["hostile:1"], "Created": 1_700_000_000, "Size": 10, "Containers": 0}
INSPECT = {"Id": IMAGE_ID, "RepoTags": ["hostile:1"], "Size": 10, "RootFS": {"Type": "layers", "Layers": [LAYER]}}
HISTORY = [{"Id": IMAGE_ID, "Created": 1_700_000_000, "CreatedBy": "/bin/sh -c #(nop) ADD file:x in /", "Size": 10}]


def _daemon_answers(**overrides: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "/version": VERSION,
        "/images/json": [IMAGE],
        "/containers/json": [],
        f"/images/{IMAGE_ID}/json": INSPECT,
        f"/images/{IMAGE_ID}/history": HISTORY,
    }
    answers.update({key.replace("IMAGE", IMAGE_ID): value for key, value in overrides.items()})
    return answers


@pytest.fixture
def serve(short_tmp: Path) -> Iterator[Any]:
    """Start a daemon with the given answers; yields a function that returns a service for it."""
    daemons: list[RecordedDaemon] = []
    services: list[DockerService] = []

    def start(answers: Mapping[str, Any]) -> DockerService:
        daemon = RecordedDaemon(short_tmp / f"d{len(daemons)}.sock", answers).__enter__()
        daemons.append(daemon)
        service = DockerService(Connection(daemon.url, "test", {"base_url": daemon.url}), timeout=5)
        services.append(service)
        return service

    yield start
    for service in services:
        service.close()
    for daemon in daemons:
        daemon.__exit__(None, None, None)


def _summary() -> ImageSummary:
    return ImageSummary(id=IMAGE_ID, tags=("hostile:1",), created=None, size=10, containers=0)


async def test_a_daemon_that_answers_500_is_reported_as_an_error_not_as_unreachable(serve: Any) -> None:
    service = serve(_daemon_answers(**{"/images/json": error_answer(500, "boom \x1b]0;pwned\x07 [/]")}))
    with pytest.raises(DaemonError) as caught:
        await service.snapshot()
    assert caught.value.headline == "The daemon answered with an error"
    assert caught.value.reason == "HTTP 500: boom \x1b]0;pwned\x07 [/]"  # shown through the sanitiser by the UI


async def test_a_version_handshake_that_fails_with_500_is_a_daemon_error(serve: Any) -> None:
    service = serve(_daemon_answers(**{"/version": error_answer(500, "down for maintenance")}))
    with pytest.raises(DaemonError) as caught:
        await service.snapshot()
    assert "HTTP 500" in caught.value.reason
    assert not isinstance(caught.value, DaemonUnreachable)


@pytest.mark.parametrize(
    ("path", "answer", "reason"),
    [
        ("/version", Answer(200, "<html>not docker</html>"), "unexpected answer"),
        ("/images/json", Answer(200, "garbage{"), "unexpected answer"),
        ("/images/json", {"not": "a list"}, "the image list is not a list of objects"),
        ("/images/json", [1, 2], "the image list is not a list of objects"),
        ("/containers/json", "text", "the container list is not a list of objects"),
        ("/images/json", nested_json(100_000), "recursion"),
    ],
)
async def test_an_answer_of_the_wrong_shape_is_an_invalid_answer(
    serve: Any, path: str, answer: object, reason: str
) -> None:
    service = serve(_daemon_answers(**{path: answer}))
    started = time.perf_counter()
    with pytest.raises(DaemonAnswerInvalid) as caught:
        await service.snapshot()
    assert reason in caught.value.reason
    assert caught.value.headline == "The daemon's answer could not be read"
    assert time.perf_counter() - started < 5


async def test_fields_of_the_wrong_type_or_range_are_read_as_unknown(serve: Any) -> None:
    image = {"Id": IMAGE_ID, "RepoTags": [{"x": 1}, "ok:1", None], "Created": 1e20, "Size": "huge"}
    container = {
        "Id": "c" * 64,
        "Names": "not-a-list",
        "State": "exited",
        "Status": "Exited (" + "9" * 5000 + ")",
        "Created": -5,
        "ImageID": ["x"],
    }
    service = serve(_daemon_answers(**{"/images/json": [image], "/containers/json": [container]}))
    snapshot = await service.snapshot()
    (listed,) = snapshot.images
    assert (listed.tags, listed.created, listed.size) == (("<object>", "ok:1"), None, 0)
    (ctr,) = snapshot.containers
    assert (ctr.name, ctr.exit_code, ctr.created, ctr.image_id) == ("", None, None, "<array>")


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/images/IMAGE/json", [INSPECT]),
        ("/images/IMAGE/json", {**INSPECT, "RootFS": "layers"}),
        ("/images/IMAGE/json", {**INSPECT, "RootFS": {"Layers": "sha256:x"}}),
        ("/images/IMAGE/history", {"not": "a list"}),
        ("/images/IMAGE/history", [*HISTORY, "not an object"]),
        ("/images/IMAGE/history", Answer(200, "[{")),
    ],
)
async def test_a_malformed_inspect_or_history_is_an_invalid_answer_or_read_as_far_as_it_goes(
    serve: Any, path: str, answer: object
) -> None:
    service = serve(_daemon_answers(**{path: answer}))
    try:
        detail = await service.image_detail(_summary())
    except DaemonAnswerInvalid as error:
        assert error.reason
    else:
        assert detail.layers.layer_count == 0  # a RootFS that is no list of layers has none


async def test_history_fields_of_any_type_give_rows_not_errors(serve: Any) -> None:
    history = [
        {"Created": 1e300, "CreatedBy": {"deep": [1, 2]}, "Size": "9", "Comment": ["c"]},
        {"Created": "yesterday", "CreatedBy": "|99999999999999999999 A=1 /bin/sh -c x", "Size": -4},
        HISTORY[0],
    ]
    service = serve(_daemon_answers(**{"/images/IMAGE/history": history}))
    detail = await service.image_detail(_summary())
    rows = detail.layers.rows
    assert len(rows) == 3
    assert [row.size for row in rows] == [10, 0, 0]
    assert all(row.created is None for row in rows[1:])
    assert rows[0].kind is LayerKind.LAYER  # the sized entry makes the one layer


async def test_an_image_with_a_huge_history_is_mapped_off_the_event_loop(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = [{"Created": 1, "CreatedBy": f"/bin/sh -c #(nop)  ENV A={index}", "Size": 0} for index in range(60_000)]
    service = serve(_daemon_answers(**{"/images/IMAGE/history": history}))
    mapped_in: list[threading.Thread] = []

    def map_history(*args: Any, **kwargs: Any) -> Any:
        mapped_in.append(threading.current_thread())
        return layers.map_history(*args, **kwargs)

    monkeypatch.setattr(answers, "map_history", map_history)
    detail = await service.image_detail(_summary())
    assert len(detail.layers.rows) == 60_000
    # Parsed and mapped in a worker: the event loop (this thread) kept turning meanwhile.
    assert mapped_in and threading.main_thread() not in mapped_in


async def test_nothing_but_service_errors_leave_the_service(serve: Any) -> None:
    """A sweep of hostile answers over every call the UI makes: only DockerServiceError escapes."""
    hostile = [Answer(200, "null"), Answer(200, "[[[["), Answer(200, json.dumps("text")), error_answer(418, "teapot")]
    for answer in hostile:
        for path in ("/images/json", "/containers/json", "/images/IMAGE/json", "/images/IMAGE/history"):
            service = serve(_daemon_answers(**{path: answer}))
            for call in (service.snapshot(), service.image_detail(_summary())):
                with contextlib.suppress(DockerServiceError):
                    await call


async def test_the_layer_table_shows_both_ends_of_a_huge_history_and_q_still_quits(serve: Any) -> None:
    history = [
        {"Created": 1_700_000_000, "CreatedBy": f"/bin/sh -c #(nop)  ENV STEP={index}", "Size": 0}
        for index in reversed(range(20_000))
    ]
    service = serve(_daemon_answers(**{"/images/IMAGE/history": history}))
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: layer_table(app).row_count > 0, timeout=20)
        table = layer_table(app)
        shown = [table.get_row_at(row)[-1].plain for row in range(table.row_count)]
        assert len(shown) == MAX_HISTORY_ROWS + 1
        assert shown[0] == "ENV STEP=0" and shown[-1] == "ENV STEP=19999"
        assert "19,000 more history entries not shown" in shown[MAX_HISTORY_ROWS // 2]
        started = time.perf_counter()
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running)
        # Generous for a loaded CI machine: a table of 20,000 rows on the UI thread took far longer.
        assert time.perf_counter() - started < 2.0


async def test_a_list_draws_at_most_its_row_cap_says_so_and_the_filter_finds_the_rest(serve: Any) -> None:
    images = [
        {"Id": f"sha256:{index:064x}", "RepoTags": [f"many/img{index:05d}:1"], "Created": 1_700_000_000, "Size": 1}
        for index in range(MAX_ROWS + 500)
    ]
    service = serve(_daemon_answers(**{"/images/json": images}))
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        listed = image_list(app)
        await wait_until(pilot, lambda: listed.row_count == MAX_ROWS, timeout=20)
        subtitle = app.explorer.query_one("#images-pane").border_subtitle
        assert f"{MAX_ROWS} shown" in str(subtitle) and "500 more not shown" in str(subtitle)
        last = f"many/img{MAX_ROWS + 499:05d}:1"
        assert last not in shown_names(app)
        await pilot.press("slash", *f"img{MAX_ROWS + 499:05d}", "enter")
        await wait_until(pilot, lambda: shown_names(app) == [last])
        assert "more not shown" not in str(app.explorer.query_one("#images-pane").border_subtitle)


async def test_a_long_list_is_sorted_off_the_event_loop_while_keys_are_answered(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sorting grows with the number of objects the daemon lists (200,000 images: about a second):
    the sort by size is held in its thread here until the app has answered other keys."""
    count = ORDER_IN_THREAD_FROM + 1000
    images = [
        {"Id": f"sha256:{index:064x}", "RepoTags": [f"many/img{index:05d}:1"], "Created": 1_700_000_000, "Size": index}
        for index in range(count)
    ]
    service = serve(_daemon_answers(**{"/images/json": images}))
    sorting, release = threading.Event(), threading.Event()
    sort_key = ImageList.sort_key

    def held_sort_key(self: ImageList, item: ImageSummary) -> tuple[object, ...]:
        if self.sort_by == "size" and threading.current_thread() is not threading.main_thread():
            sorting.set()
            release.wait(30)
        return sort_key(self, item)

    monkeypatch.setattr(ImageList, "sort_key", held_sort_key)
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: image_list(app).row_count == MAX_ROWS, timeout=20)
        assert shown_names(app)[0] == "many/img00000:1"
        await pilot.press("1", "s")
        try:
            await wait_until(pilot, sorting.is_set)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert shown_names(app)[0] == "many/img00000:1"  # the old order until the new one is done
        finally:
            release.set()
        await wait_until(pilot, lambda: shown_names(app)[0] == f"many/img{count - 1:05d}:1", timeout=20)
        pane = app.explorer.query_one("#images-pane")
        await wait_until(pilot, lambda: "sort: size" in str(pane.border_subtitle))
