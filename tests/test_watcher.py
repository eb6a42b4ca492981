"""The watcher against the real daemon: changes arrive through the event stream, touch only what
changed, come in coalesced bursts, and survive a dropped stream."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socketserver
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import docker
import pytest

from conftest import FIXTURE_IMAGES, TOOL_IMAGE, import_tiny_image
from dockerscope.service import Connection, DockerService, EventBatch, Snapshot, Watcher, WatchUpdate
from dockerscope.service import watcher as watcher_module
from recorded_daemon import load_recording
from socket_proxy import SocketProxy

BURST_LABEL = "dockerscope-test.burst"


class Follower:
    """Runs a watcher in the background and keeps every update it produced."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.updates: list[WatchUpdate] = []
        self._task = asyncio.ensure_future(self._follow())

    async def _follow(self) -> None:
        async for update in self.watcher.updates():
            self.updates.append(update)

    async def until(self, condition: Callable[[Snapshot], bool], timeout: float = 5.0) -> Snapshot:
        """The first snapshot from now on (or the latest one) that meets the condition."""
        deadline = time.monotonic() + timeout
        seen = max(len(self.updates) - 1, 0)
        while time.monotonic() < deadline:
            for update in self.updates[seen:]:
                if update.snapshot is not None and condition(update.snapshot):
                    return update.snapshot
            seen = max(len(self.updates) - 1, 0)
            await asyncio.sleep(0.01)
        raise AssertionError(f"no snapshot met the condition within {timeout}s")

    async def until_live(self, timeout: float = 5.0) -> None:
        """Until the stream is up and the poll that catches up after it opened is over (no new
        update for a while)."""
        deadline = time.monotonic() + timeout
        while not (self.watcher.live and self.updates and self.updates[-1].live):
            assert time.monotonic() < deadline, "the event stream did not come up"
            await asyncio.sleep(0.01)
        count = -1
        while count != len(self.updates):
            count = len(self.updates)
            await asyncio.sleep(0.3)

    async def close(self) -> None:
        self.watcher.stop()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def following(service: DockerService) -> AsyncIterator[Follower]:
    """A live watcher with no safety-net poll: whatever shows up came through the event stream.
    (Not a fixture: the watcher must run on the test's own event loop.)"""
    follower = Follower(Watcher(service, interval=3600))
    try:
        await follower.until_live()
        yield follower
    finally:
        await follower.close()


@pytest.fixture
def extra_tag(api: docker.APIClient) -> Iterator[str]:
    tag = "dockerscope-test/watched:now"
    yield tag
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_image(tag)


def _tags(snapshot: Snapshot) -> set[str]:
    return {tag for image in snapshot.images for tag in image.tags}


async def test_an_outside_tag_arrives_through_the_event_stream_with_one_request(
    service: DockerService, api: docker.APIClient, extra_tag: str
) -> None:
    async with following(service) as follower:
        polls = len(follower.updates)
        requests_before = service.request_count
        api.tag(TOOL_IMAGE, *extra_tag.split(":"))
        snapshot = await follower.until(lambda snapshot: extra_tag in _tags(snapshot))
        tool = next(image for image in snapshot.images if extra_tag in image.tags)
        assert TOOL_IMAGE in tool.tags
        assert len(follower.updates) == polls + 1
        assert service.request_count - requests_before == 1  # one inspect of the tagged image, no list

        api.remove_image(extra_tag)
        snapshot = await follower.until(lambda snapshot: extra_tag not in _tags(snapshot))
        assert TOOL_IMAGE in _tags(snapshot)


async def test_a_new_container_and_its_removal_arrive_and_update_the_image_count(
    service: DockerService, api: docker.APIClient
) -> None:
    async with following(service) as follower:
        tool_id = api.inspect_image(TOOL_IMAGE)["Id"]

        def tool_users(snapshot: Snapshot) -> int:
            return next(image.containers for image in snapshot.images if image.id == tool_id)

        before = tool_users(follower.updates[-1].snapshot)  # type: ignore[arg-type]
        container = api.create_container(
            TOOL_IMAGE,
            ["true"],
            name="dockerscope-test-watched",
            host_config=api.create_host_config(network_mode="none"),
        )
        try:
            snapshot = await follower.until(lambda s: any(c.name == "dockerscope-test-watched" for c in s.containers))
            assert next(c for c in snapshot.containers if c.id == container["Id"]).state == "created"
            assert tool_users(snapshot) == before + 1
        finally:
            api.remove_container(container["Id"], force=True)
        snapshot = await follower.until(lambda s: all(c.id != container["Id"] for c in s.containers))
        assert tool_users(snapshot) == before


async def test_a_burst_of_events_is_coalesced_into_a_few_refreshes(
    service: DockerService, api: docker.APIClient
) -> None:
    created: list[str] = []
    try:
        async with following(service) as follower:
            created.extend(
                import_tiny_image(api, f"dockerscope-test/burst:{number}", (f"LABEL {BURST_LABEL}=1",))
                for number in range(8)
            )
            await follower.until(lambda snapshot: set(created) <= {image.id for image in snapshot.images})
            refreshes_before = len(follower.updates)
            # One request deletes all eight: sixteen events (untag, delete) within milliseconds.
            api.prune_images(filters={"dangling": False, "label": BURST_LABEL})
            await follower.until(lambda snapshot: not set(created) & {image.id for image in snapshot.images})
            refreshes = len(follower.updates) - refreshes_before
            assert 1 <= refreshes <= 4, f"{refreshes} refreshes for one burst"
    finally:
        for image_id in created:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_image(image_id, force=True)


async def test_refreshing_every_image_by_inspect_gives_what_the_image_list_gives(
    service: DockerService, api: docker.APIClient
) -> None:
    polled = await service.snapshot()
    ids = frozenset(api.inspect_image(image)["Id"] for image in FIXTURE_IMAGES)
    refreshed = await service.refresh(EventBatch(image_ids=ids))
    assert {image.id: image for image in refreshed.images if image.id in ids} == {
        image.id: image for image in polled.images if image.id in ids
    }
    assert refreshed.containers == polled.containers


async def test_a_dropped_event_stream_reconnects_and_catches_up(
    docker_host: str, short_tmp: Path, api: docker.APIClient, extra_tag: str
) -> None:
    proxy = SocketProxy(short_tmp / "events.sock", docker_host.removeprefix("unix://"))
    await proxy.start()
    host = f"unix://{proxy.path}"
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    follower = Follower(Watcher(service, interval=3600))
    try:
        await follower.until_live()
        proxy.drop_connections()
        # Changed while the stream is down: the full poll after reconnecting must bring it.
        api.tag(TOOL_IMAGE, *extra_tag.split(":"))
        await follower.until(lambda snapshot: extra_tag in _tags(snapshot))
        await follower.until_live()
        api.remove_image(extra_tag)
        await follower.until(lambda snapshot: extra_tag not in _tags(snapshot))
    finally:
        await follower.close()
        service.close()
        await proxy.stop()


async def test_the_stream_reconnects_as_soon_as_a_poll_finds_the_daemon_back(
    docker_host: str, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After one quick retry the next reconnect would wait a minute: only the poll can bring it sooner.
    monkeypatch.setattr(watcher_module, "RECONNECT_DELAYS", (0.1, 60.0))
    proxy = SocketProxy(short_tmp / "back.sock", docker_host.removeprefix("unix://"))
    await proxy.start()
    host = f"unix://{proxy.path}"
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    follower = Follower(Watcher(service, interval=1))
    try:
        await follower.until_live()
        await proxy.stop()
        while not (follower.updates[-1].error is not None and not follower.watcher.live):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the quick retry has failed too
        await proxy.start()
        deadline = time.monotonic() + 5
        while not follower.watcher.live:
            assert time.monotonic() < deadline, "the stream did not come back with the daemon"
            await asyncio.sleep(0.05)
    finally:
        await follower.close()
        service.close()
        await proxy.stop()


async def test_stopping_ends_the_event_thread_at_once(service: DockerService) -> None:
    before = set(threading.enumerate())
    follower = Follower(Watcher(service, interval=3600))
    await follower.until_live()
    readers = [thread for thread in set(threading.enumerate()) - before if thread.name == "dockerscope-events"]
    assert len(readers) == 1
    await follower.close()
    readers[0].join(timeout=2)  # benchmarks/ measures how fast; here: it ends, it does not hang
    assert not readers[0].is_alive()


class _BrokenEventsServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    events_answer: str
    responses: dict[str, Any]
    requests_seen: list[tuple[float, str]]


class _BrokenEventsHandler(BaseHTTPRequestHandler):
    """Answers the listing requests from a recording; `/events` ends at once or fails."""

    server: _BrokenEventsServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        path = "/" + path.split("/", 2)[2] if path.startswith("/v1.") else path
        self.server.requests_seen.append((time.monotonic(), path))
        if path == "/events" and self.server.events_answer == "closes":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
        elif path == "/events":
            self._send(500, {"message": "events are broken"})
        elif path in self.server.responses:
            self._send(200, self.server.responses[path])
        else:
            self._send(404, {"message": f"no such path {path}"})

    def _send(self, status: int, document: Any) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def broken_events_daemon(socket_path: Path, events_answer: str) -> Iterator[_BrokenEventsServer]:
    """A daemon on a unix socket that lists the recorded fixtures but whose event stream
    `closes` as soon as it opened, or answers `500` every time."""
    server = _BrokenEventsServer(str(socket_path), _BrokenEventsHandler)
    server.events_answer = events_answer
    server.responses = load_recording("recorded-fixtures.json")
    server.requests_seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# Long enough for the reconnect delays to reach 8 s and the average to settle. (The storm this
# guards against made 870 requests in 5 s.)
MISBEHAVING_SECONDS = 20.0


# Both cases mostly sleep. Under pytest-xdist (scripts/test.sh) they form one group, and groups
# are handed out largest first: they run beside the many short tests, not last on one worker.
@pytest.mark.xdist_group("misbehaving-event-stream")
@pytest.mark.parametrize("events_answer", ["closes", "500"])
async def test_an_event_stream_that_keeps_failing_costs_about_one_request_a_second(
    short_tmp: Path, events_answer: str
) -> None:
    with broken_events_daemon(short_tmp / "broken.sock", events_answer) as daemon:
        host = f"unix://{short_tmp / 'broken.sock'}"
        service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
        follower = Follower(Watcher(service, interval=3600))
        try:
            await follower.until(lambda snapshot: len(snapshot.images) > 0)
            start, updates_before = time.monotonic(), len(follower.updates)
            await asyncio.sleep(MISBEHAVING_SECONDS)
            seen = [path for at, path in daemon.requests_seen if at >= start]
            events = [at for at, path in daemon.requests_seen if path == "/events"]
        finally:
            await follower.close()
            service.close()
    rate = len(seen) / MISBEHAVING_SECONDS
    assert rate <= 1.2, f"{len(seen)} requests in {MISBEHAVING_SECONDS:g} s: {Counter(seen)}"
    gaps = [later - earlier for earlier, later in itertools.pairwise(events)]
    assert len(events) >= 5 and gaps[-1] >= 4.0, f"reconnects do not back off: {gaps}"
    polls = [update for update in follower.updates[updates_before:] if update.snapshot is not None]
    assert len(polls) >= MISBEHAVING_SECONDS // 3 - 1, "the watcher stopped polling"
