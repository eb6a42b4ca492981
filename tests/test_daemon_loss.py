"""The daemon goes away in the middle of a session and comes back, against a second private dockerd
this test starts and stops: the layer read in progress ends with a message, the last data stays on
screen marked stale, and the app goes live again by itself with the same image highlighted."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from textual.widgets import Static

from apphelpers import SIZE, highlight_image, image_list, layer_table, status_text, tree_title, wait_until
from conftest import import_tiny_image
from dockerscope.service import Connection, DockerService
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_files import LayerListing
from dockerscope.ui import create_app
from dockerscope.ui.layer_contents_screen import LayerContentsScreen

DOCKERD_WAIT_SECONDS = 60
LOSS_IMAGE = "dockerscope-test/loss:1"


class PrivateDaemon:
    """A dockerd of this test's own, with the flags of scripts/dockerd-private.sh (loopback only),
    which can be stopped and started again on the same data root."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid_file = directory / "pid"
        self.host = f"unix://{directory / 'docker.sock'}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start dockerd and wait until it answers; fail (never skip) if it does not in time."""
        log = (self.directory / "dockerd.log").open("ab")
        self._process = subprocess.Popen(
            [
                "dockerd",
                *("--data-root", str(self.directory / "data"), "--exec-root", str(self.directory / "exec")),
                *("--pidfile", str(self.pid_file), "--host", self.host),
                *("--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + DOCKERD_WAIT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"dockerd exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                docker.APIClient(base_url=self.host, version="auto", timeout=5).close()
                return
            except docker.errors.DockerException:
                time.sleep(0.25)
        pytest.fail(f"dockerd did not answer at {self.host} within {DOCKERD_WAIT_SECONDS}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the daemon named by its pid file and wait until it exited."""
        process, self._process = self._process, None
        if process is None:
            return
        pid = int(self.pid_file.read_text()) if self.pid_file.exists() else process.pid
        os.kill(pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self) -> str:
        return "\n".join((self.directory / "dockerd.log").read_text(errors="replace").splitlines()[-40:])


@pytest.fixture
def second_daemon() -> Iterator[PrivateDaemon]:
    directory = Path(tempfile.mkdtemp(prefix="ds-", dir="/tmp"))  # short: a socket path fits 108 bytes
    daemon = PrivateDaemon(directory)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["umount", "-R", str(directory / "data"), str(directory / "exec")], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


class HeldCache(LayerCache):
    """A layer cache whose first lookup holds the reading thread until the test opens the gate: the
    read is surely in progress when the daemon goes away, and goes on after it has gone."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.reached = threading.Event()
        self.gate = threading.Event()

    def get(self, diff_id: str, scope: str | None = None) -> LayerListing | None:
        self.reached.set()
        self.gate.wait(60)
        return super().get(diff_id, scope)


async def test_the_daemon_going_away_keeps_the_data_stale_and_it_comes_back_by_itself(
    second_daemon: PrivateDaemon,
) -> None:
    api = docker.APIClient(base_url=second_daemon.host, version="auto", timeout=60)
    image_id = import_tiny_image(api, LOSS_IMAGE)
    api.close()
    cache = HeldCache(second_daemon.directory / "cache")
    connection = Connection(host=second_daemon.host, source="test", client_kwargs={"base_url": second_daemon.host})
    service = DockerService(connection, cache=cache)
    app = create_app(service, interval=60)
    before = set(threading.enumerate())
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await highlight_image(pilot, app, LOSS_IMAGE)
            await wait_until(pilot, lambda: "● live" in status_text(app))
            # Once the sharing is worked out the layer table is final: Enter lands on the layer.
            await wait_until(pilot, lambda: "unique" in app.explorer.query_one("#layer-summary", Static).render().plain)
            await pilot.press("3", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen) and cache.reached.is_set())

            await asyncio.to_thread(second_daemon.stop)
            cache.gate.set()
            await wait_until(
                pilot,
                lambda: any(n.title == "Could not read the layers" for n in app._notifications),
            )
            await wait_until(pilot, lambda: app.screen is app.explorer)
            await wait_until(pilot, lambda: app.explorer.has_class("stale"))
            status = status_text(app)
            assert "● disconnected" in status
            assert "showing data from" in status and "(stale)" in status
            assert image_list(app).highlighted_item is not None
            assert image_list(app).highlighted_item.id == image_id
            assert tree_title(app) == LOSS_IMAGE
            assert layer_table(app).row_count > 0

            await asyncio.to_thread(second_daemon.start)
            await wait_until(pilot, lambda: not app.explorer.has_class("stale"), 30)
            await wait_until(pilot, lambda: "● live" in status_text(app), 30)
            assert app.screen is app.explorer
            assert image_list(app).highlighted_item is not None
            assert image_list(app).highlighted_item.id == image_id
            assert tree_title(app) == LOSS_IMAGE
            started = [t for t in set(threading.enumerate()) - before if t.name.startswith("dockerscope")]
            assert "dockerscope-events" in {thread.name for thread in started}
            await pilot.press("q")
    finally:
        cache.gate.set()
    for thread in started:
        thread.join(timeout=2)
    assert not [thread.name for thread in started if thread.is_alive()]
