"""dockerscope in a real terminal (tmux): what reaches the terminal is what the user sees."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import APP_IMAGE
from recorded_daemon import RecordedDaemon, error_answer


class Terminal:
    def __init__(self, name: str) -> None:
        self.name = name
        self.server = f"dockerscope-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout

    def start(self, command: str, env: dict[str, str], log: Path | None = None) -> None:
        """Run `command` in a new 200x50 pane. With `log`, every byte the pane's program writes to
        the terminal is appended to that file (the command waits until the pipe is in place)."""
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        wait = "sleep 0.5; " if log is not None else ""
        script = f"{wait}env -u COLUMNS -u LINES {exports} {command}; echo DOCKERSCOPE-EXIT=$?; sleep 60"
        self.tmux("new-session", "-d", "-x", "200", "-y", "50", "-s", self.name, script)
        if log is not None:
            self.tmux("pipe-pane", "-O", "-t", self.name, f"cat >> {shlex.quote(str(log))}")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def title(self) -> str:
        return self.tmux("display-message", "-p", "-t", self.name, "#{pane_title}").strip()

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{what} not on screen after {timeout}s:\n{self.screen()}")

    def toggle_until(self, key: str, check: Callable[[str], bool], what: str) -> None:
        """Press `key` until `check` holds. Right after start-up a terminal may still be answering
        the app's capability queries, and keys sent then can be swallowed: this is the handshake
        that tells the app is reading keys."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.keys(key)
            try:
                self.wait_for(check, what, timeout=1)
                return
            except AssertionError:
                continue
        raise AssertionError(f"{what}: the app never reacted to {key!r}:\n{self.screen()}")

    def quit_once_reading_keys(self, wait: float) -> tuple[str, float]:
        """Open and close the help screen (the handshake that the app reads keys), press q, and
        return the screen with the exit marker and the seconds q took."""
        self.toggle_until("?", lambda s: "dockerscope keys" in s, "the help screen")
        self.toggle_until("Escape", lambda s: "dockerscope keys" not in s, "the help screen closed")
        started = time.monotonic()
        self.keys("q")
        screen = self.wait_for(lambda s: "DOCKERSCOPE-EXIT=" in s, "the exit marker", timeout=wait)
        return screen, time.monotonic() - started

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: scripts/test.sh installs it")
    session = Terminal("ds")
    yield session
    session.close()


def _command() -> str:
    return f"{shlex.quote(sys.executable)} -m dockerscope"


def test_escape_sequences_in_labels_never_reach_the_terminal(terminal: Terminal, docker_host: str) -> None:
    terminal.start(_command(), {"DOCKER_HOST": docker_host, "TERM": "xterm-256color"})
    terminal.wait_for(lambda s: "dockerscope-test/base:1" in s, "the image list")
    terminal.toggle_until("d", lambda s: "dangling hidden" in s, "dangling images hidden")
    terminal.toggle_until("d", lambda s: "dangling hidden" not in s, "dangling images shown")
    title_before = terminal.title()
    terminal.toggle_until("/", lambda s: "filter tags and ids" in s, "the filter field")
    terminal.keys("-l", APP_IMAGE)
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "1 shown · sort: name · filtered" in s, "the filtered list")
    terminal.keys("3", *["Down"] * 16)
    screen = terminal.wait_for(lambda s: "LABEL hostile.escape" in s, "the hostile label's layer row")
    assert r"before\x1b[2J\x1b]0;pwned\x07after" in screen
    assert "[bold red]alarm" in screen
    assert "dockerscope-test/app:1" in screen  # the screen was not cleared
    assert terminal.title() == title_before != "pwned"
    terminal.keys("q")
    screen = terminal.wait_for(lambda s: "DOCKERSCOPE-EXIT=" in s, "the exit marker", timeout=5)
    assert "DOCKERSCOPE-EXIT=0" in screen
    assert "Traceback" not in screen


def test_no_daemon_is_explained_and_q_quits_cleanly(terminal: Terminal) -> None:
    terminal.start(f"{_command()} --host unix:///nonexistent/docker.sock", {"TERM": "xterm-256color"})
    screen = terminal.wait_for(lambda s: "Cannot reach the daemon" in s, "the connection screen")
    assert "unix:///nonexistent/docker.sock" in screen
    assert "the socket does not exist" in screen
    screen, seconds = terminal.quit_once_reading_keys(wait=5)
    assert seconds < 3
    assert "DOCKERSCOPE-EXIT=0" in screen
    assert "Traceback" not in screen


@pytest.fixture
def silent_daemon(short_tmp: Path) -> Iterator[str]:
    """A socket that accepts connections and never answers: a hung daemon."""
    path = short_tmp / "silent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"unix://{path}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_q_quits_at_once_while_a_request_hangs(terminal: Terminal, silent_daemon: str) -> None:
    terminal.start(f"{_command()} --host {silent_daemon}", {"TERM": "xterm-256color"})
    terminal.wait_for(lambda s: "connecting" in s, "the explorer waiting for the daemon")
    screen, seconds = terminal.quit_once_reading_keys(wait=8)
    # The hung request has a 10 s timeout; quitting must not wait for it.
    assert seconds < 3
    assert "DOCKERSCOPE-EXIT=0" in screen


HOSTILE_IMAGE_ID = "sha256:" + "c0" * 32
# Retitle the window (OSC 0), reset the terminal (ESC c, RIS), write the clipboard (OSC 52), a
# C1 CSI (8-bit ESC [) and a markup closing tag with nothing to close.
TERMINAL_ATTACK = "\x1b]0;pwned\x07\x1bc\x1b]52;c;cHduZWQ=\x07\x9b2J[/]"


def _hostile_recording() -> dict[str, object]:
    """One image, whose details the daemon refuses with an error message that attacks the terminal."""
    summary = {"Id": HOSTILE_IMAGE_ID, "RepoTags": ["marker-image:1"], "Created": 1763600000, "Size": 1000}
    return {
        "/version": {"Version": "27.0.0", "ApiVersion": "1.45", "MinAPIVersion": "1.24", "Os": "linux"},
        "/images/json": [summary],
        "/containers/json": [],
        f"/images/{HOSTILE_IMAGE_ID}/json": error_answer(500, f"boom {TERMINAL_ATTACK} end"),
        f"/images/{HOSTILE_IMAGE_ID}/history": error_answer(500, f"boom {TERMINAL_ATTACK} end"),
    }


def test_a_hostile_daemons_error_never_drives_the_terminal(terminal: Terminal, short_tmp: Path) -> None:
    log = short_tmp / "pane.log"
    with RecordedDaemon(short_tmp / "hostile.sock", _hostile_recording()) as daemon:
        terminal.start(f"{_command()} --host {daemon.url}", {"TERM": "xterm-256color"}, log=log)
        terminal.wait_for(lambda s: "marker-image:1" in s, "the image list")
        title_before = terminal.title()
        screen = terminal.wait_for(lambda s: r"\x1b]0;pwned\x07\x1bc" in s, "the daemon's error, escaped")
        assert "The daemon answered with an error" in screen
        assert r"\x1b]52;c;cHduZWQ=\x07\x9b2J[/]" in screen  # shown literally, markup not parsed
        assert "marker-image:1" in screen  # the screen was not reset
        assert terminal.title() == title_before != "pwned"
        terminal.keys("q")
        screen = terminal.wait_for(lambda s: "DOCKERSCOPE-EXIT=" in s, "the exit marker", timeout=5)
    assert "DOCKERSCOPE-EXIT=0" in screen
    assert "Traceback" not in screen
    written = log.read_bytes().decode("utf-8", errors="replace")
    assert "marker-image:1" in written  # the log did record the app's output
    assert "\x1b]0;pwned" not in written
    assert "\x1b]52" not in written
    assert "\x1bc" not in written
    assert not {chr(code) for code in range(0x80, 0xA0)} & set(written)
