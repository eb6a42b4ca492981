"""No daemon, a daemon that appears later, a daemon that goes away: the app explains and recovers.
The connection screen shows only until data first arrived; after that the data stays, marked stale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import Static

from apphelpers import SIZE, image_list, status_text, wait_until, wait_until_live
from dockerscope.service import Connection, DockerService, resolve_connection
from dockerscope.ui import create_app
from dockerscope.ui.connection_screen import ConnectionScreen
from socket_proxy import SocketProxy


@pytest.fixture
async def proxy(docker_host: str, short_tmp: Path) -> AsyncIterator[SocketProxy]:
    assert docker_host.startswith("unix://"), "the private test daemon listens on a unix socket"
    socket_proxy = SocketProxy(short_tmp / "later.sock", docker_host.removeprefix("unix://"))
    yield socket_proxy


def _problem_text(screen: object) -> str:
    """The connection screen's message, or "" while another screen shows or it is not composed."""
    if not isinstance(screen, ConnectionScreen):
        return ""
    return "".join(problem.render().plain for problem in screen.query("#connection-problem").results(Static))


async def test_a_missing_daemon_gets_a_clear_screen_then_the_explorer_which_stays_when_it_goes(
    proxy: SocketProxy,
) -> None:
    host = f"unix://{proxy.path}"
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    app = create_app(service, interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Cannot reach" in _problem_text(app.screen))
        text = _problem_text(app.screen)
        assert "Cannot reach the daemon" in text
        assert host in text
        assert "the socket does not exist" in text
        assert "Is dockerd running?" in text
        await wait_until(pilot, lambda: "attempt 3" in _problem_text(app.screen))

        await proxy.start()
        await wait_until(pilot, lambda: app.screen is app.explorer and image_list(app).row_count > 0)
        await wait_until_live(pilot, app)

        rows = image_list(app).row_count
        await proxy.stop()
        await wait_until(pilot, lambda: "● disconnected" in status_text(app))
        assert app.screen is app.explorer
        assert app.explorer.has_class("stale")
        assert app.explorer.query_one("#images-pane").styles.opacity < 1  # dimmed
        status = status_text(app)
        assert "the socket does not exist" in status
        assert "showing data from" in status and "(stale)" in status
        assert image_list(app).row_count == rows
        await proxy.start()
        await wait_until(pilot, lambda: not app.explorer.has_class("stale"))
        await wait_until_live(pilot, app)
        assert app.screen is app.explorer
        assert app.explorer.query_one("#images-pane").styles.opacity == 1
        await proxy.stop()


async def test_q_quits_from_the_connection_screen() -> None:
    host = "tcp://127.0.0.1:1"
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    app = create_app(service, interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Cannot reach" in _problem_text(app.screen))
        assert "connection refused" in _problem_text(app.screen)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_with_no_socket_anywhere_the_screen_lists_the_places_looked_at_and_how_to_start_one(
    short_tmp: Path,
) -> None:
    connection = resolve_connection(None, {"XDG_RUNTIME_DIR": "/run/user/1000"}, root=str(short_tmp))
    service = DockerService(connection)
    app = create_app(service, interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Cannot reach" in _problem_text(app.screen))
        text = _problem_text(app.screen)
        assert "Cannot reach the daemon" in text
        assert f"Host:    unix://{short_tmp}/var/run/docker.sock" in text
        assert "From:    default (no socket found)" in text
        assert "no socket exists in any of these places" in text
        for place in (
            f"Docker socket {short_tmp}/var/run/docker.sock",
            f"rootless Docker socket {short_tmp}/run/user/1000/docker.sock",
            f"rootless Podman socket {short_tmp}/run/user/1000/podman/podman.sock",
            f"rootful Podman socket {short_tmp}/run/podman/podman.sock",
        ):
            assert place in text
        assert "systemctl --user start podman.socket" in text
        assert "systemctl start docker" in text
    service.close()


async def test_the_screen_says_where_the_address_came_from(short_tmp: Path) -> None:
    host = f"unix://{short_tmp}/elsewhere.sock"
    service = DockerService(resolve_connection(None, {"DOCKER_HOST": host}))
    app = create_app(service, interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Cannot reach" in _problem_text(app.screen))
        text = _problem_text(app.screen)
        assert "From:    DOCKER_HOST" in text
        assert "no socket exists in any of these places" not in text
    service.close()


async def test_a_podman_socket_that_is_down_gets_podmans_hint(short_tmp: Path) -> None:
    host = f"unix://{short_tmp}/podman/podman.sock"
    service = DockerService(
        Connection(host=host, source="found: rootless Podman socket", client_kwargs={"base_url": host})
    )
    app = create_app(service, interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Cannot reach" in _problem_text(app.screen))
        text = _problem_text(app.screen)
        assert "From:    found: rootless Podman socket" in text
        assert "Is the Podman service running?" in text
        assert "dockerd" not in text
    service.close()
