"""Live updates at scale: how fast dockerscope shows data, follows the daemon and answers keys.

Run with DOCKER_HOST naming a private daemon (benchmarks/run.sh starts one):

    python benchmarks/live.py [--scales 300x150,1000x500] [--idle-seconds 60] [--json OUT]
                              (--dockerd-pid PID | --dockerd-pidfile FILE)

For each scale (images x containers) it grows the scale set (scale_set.py), then measures:
first data on screen and quit time over 5 launches, idle CPU of the app and of the dockerd it
causes, RSS, event -> screen, requests per poll and key -> screen. The app runs in a
pseudo-terminal this process owns; its output feeds a pyte screen the moment it arrives, so
every "on screen" time is the arrival time of the frame that made the condition true.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import docker
import pyte
import scale_set

COLS, ROWS = 200, 50
LAUNCHES = 5
EVENT_REPS = 10
KEY_REPS = 10
SORT_REPS = 3
SETTLE_SECONDS = 5.0
SETTLE_LIMIT = 60.0
FIRST_DATA_TIMEOUT = 20.0
REACTION_TIMEOUT = 15.0
QUIT_TIMEOUT = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
DATA_TEXT = "scale/img-"
FIRST_IMAGE = scale_set.image_ref(0)
EVENT_REPO = "scale/t"

# Textual asks whether the terminal supports synchronized output (mode 2026). This harness answers
# yes, like most current terminals, so every frame arrives wrapped in SYNC_START ... SYNC_END and a
# frame end is the moment a real terminal would show it.
SYNC_QUERY = b"\x1b[?2026$p"
SYNC_REPLY = b"\x1b[?2026;2$y"
SYNC_START = b"\x1b[?2026h"
SYNC_END = b"\x1b[?2026l"
_MARKERS = (SYNC_QUERY, SYNC_START, SYNC_END)
_MARKER = re.compile(rb"\x1b\[\?2026(?:\$p|h|l)")
_IMAGE_NAME = re.compile(r"scale/img-(\d{4})")

# Targets, by scale label: metric -> (limit, unit). Latencies are judged by their median.
TARGETS: dict[str, dict[str, tuple[float, str]]] = {
    "300x150": {
        "first_data_s": (0.35, "s"),
        "idle_total_pct": (0.5, "%"),
        "rss_mib": (80.0, "MiB"),
        "event_to_screen_s": (0.15, "s"),
    },
    "1000x500": {"key_j_s": (0.1, "s"), "key_s_s": (0.1, "s")},
}


class BenchmarkError(RuntimeError):
    """A measurement could not be taken (the message says what was on screen)."""


# ---------------------------------------------------------------- the terminal


Predicate = Callable[[Any], bool]


class _Watch:
    """A condition on the screen, checked at every frame end after it was registered."""

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate
        self.at: float | None = None
        self.done = threading.Event()


@dataclass
class Region:
    """A rectangle of the screen: rows top..bottom and columns left..right, inclusive."""

    top: int
    bottom: int
    left: int
    right: int


class Terminal:
    """dockerscope in a pseudo-terminal owned by this process.

    One thread only reads the pty and timestamps each chunk; another feeds the chunks to a pyte
    screen, answers the synchronized-output query and checks the registered conditions at each
    frame end. The app never blocks on output while the terminal is open.
    """

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.screen = pyte.Screen(COLS, ROWS)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.RLock()
        self._output = threading.Condition(self._lock)
        self._chunks: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self._watches: list[_Watch] = []
        self._carry = b""
        self._in_frame = False
        self._closed = False
        self.process: subprocess.Popen[bytes] | None = None
        self.master = -1
        self.started_at = 0.0
        self.last_output = 0.0
        self.frames = 0
        self.bytes = 0
        self._threads: list[threading.Thread] = []

    # -- lifecycle

    def start(self) -> float:
        """Launch the app; returns the monotonic time taken just before the launch."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        self.master = master
        self._threads = [
            threading.Thread(target=self._read, name="pty-reader", daemon=True),
            threading.Thread(target=self._process, name="pty-screen", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.started_at = time.monotonic()
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
                preexec_fn=_take_controlling_tty,
            )
        finally:
            os.close(slave)
        return self.started_at

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def quit(self, key: bytes = b"q", timeout: float = QUIT_TIMEOUT) -> float:
        """Press `key` and wait for the app to exit; returns the seconds from the key to the exit."""
        assert self.process is not None
        started = time.monotonic()
        self.send(key)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"the app did not exit within {timeout}s of {key!r}\n{self.text()}") from None
        return time.monotonic() - started

    def close(self) -> None:
        """Kill the app if it still runs and release the pty."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        with self._lock:
            self._closed = True
        if self.master >= 0:
            with suppress(OSError):
                os.close(self.master)
            self.master = -1
        for thread in self._threads:
            thread.join(timeout=5)

    # -- the two threads

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO once the app and every copy of the slave are gone
                data = b""
            if not data:
                self._chunks.put(None)
                return
            self._chunks.put((time.monotonic(), data))

    def _process(self) -> None:
        while (item := self._chunks.get()) is not None:
            arrived, data = item
            with self._lock:
                self._feed(arrived, data)
                self.last_output = arrived
                self._output.notify_all()
        with self._lock:
            self._closed = True
            for watch in self._watches:
                watch.done.set()
            self._output.notify_all()

    def _feed(self, arrived: float, data: bytes) -> None:
        self.bytes += len(data)
        buffer = self._carry + data
        keep = _partial_marker_length(buffer)
        self._carry = buffer[len(buffer) - keep :] if keep else b""
        buffer = buffer[: len(buffer) - keep]
        position = 0
        for match in _MARKER.finditer(buffer):
            self._stream.feed(buffer[position : match.end()])
            position = match.end()
            marker = match.group()
            if marker == SYNC_QUERY:
                with suppress(OSError):
                    os.write(self.master, SYNC_REPLY)
            elif marker == SYNC_START:
                self._in_frame = True
            else:
                self._in_frame = False
                self.frames += 1
                self._check(arrived)
        if position < len(buffer):
            self._stream.feed(buffer[position:])
            if not self._in_frame:  # output outside a frame is shown as it comes
                self._check(arrived)

    def _check(self, arrived: float) -> None:
        for watch in self._watches:
            if watch.at is None and watch.predicate(self.screen):
                watch.at = arrived
                watch.done.set()
        self._watches = [watch for watch in self._watches if watch.at is None]

    # -- conditions

    def text(self) -> str:
        """What the screen shows now, as plain text."""
        with self._lock:
            return "\n".join(line.rstrip() for line in self.screen.display).strip("\n")

    def watch(self, predicate: Predicate) -> _Watch:
        """Check `predicate` at every frame end from now on (not on the screen as it is now)."""
        watch = _Watch(predicate)
        with self._lock:
            self._watches.append(watch)
        return watch

    def watch_change(self, region: Region) -> _Watch:
        """Wait for any character or attribute in `region` to change from what it is now."""
        with self._lock:
            before = _cells(self.screen, region)
            return self.watch(lambda screen: _cells(screen, region) != before)

    def wait(self, watch: _Watch, what: str, timeout: float = REACTION_TIMEOUT) -> float:
        """The arrival time of the frame that made the condition true."""
        watch.done.wait(timeout)
        if watch.at is None:
            with self._lock:
                self._watches = [other for other in self._watches if other is not watch]
            state = "the app exited" if self._closed else f"not within {timeout}s"
            raise BenchmarkError(f"{what}: {state}; the screen shows:\n{self.text()}")
        return watch.at

    def wait_quiet(self, quiet: float = 0.5, timeout: float = 5.0) -> None:
        """Wait until no output has arrived for `quiet` seconds (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._output:
            while not self._closed:
                now = time.monotonic()
                if now - self.last_output >= quiet or now >= deadline:
                    return
                self._output.wait(min(quiet - (now - self.last_output), deadline - now))

    def image_pane(self) -> Region:
        """The image list pane, border and subtitle included, found by its title."""
        with self._lock:
            lines = self.screen.display
            for row, line in enumerate(lines):
                title = line.find("1 Images")
                if title < 0:
                    continue
                right = line.find("╮", title)
                bottom = next((below for below in range(row + 1, ROWS) if lines[below][:1] == "╰"), ROWS - 1)
                return Region(row, bottom, 0, right if right >= 0 else COLS - 1)
        raise BenchmarkError(f"no image pane on screen:\n{self.text()}")


def _take_controlling_tty() -> None:
    """In the child: make the pty its controlling terminal, and die with this process."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _partial_marker_length(buffer: bytes) -> int:
    """How many bytes at the end of `buffer` may be the start of a marker cut by the read."""
    longest = max(len(marker) for marker in _MARKERS) - 1
    for length in range(min(longest, len(buffer)), 0, -1):
        tail = buffer[-length:]
        if any(len(tail) < len(marker) and marker.startswith(tail) for marker in _MARKERS):
            return length
    return 0


def _cells(screen: Any, region: Region) -> tuple[tuple[Any, ...], ...]:
    return tuple(
        tuple(screen.buffer[row][column] for column in range(region.left, region.right + 1))
        for row in range(region.top, region.bottom + 1)
    )


def _region_text(screen: Any, region: Region) -> list[str]:
    return [line[region.left : region.right + 1] for line in screen.display[region.top : region.bottom + 1]]


def _shows(text: str) -> Predicate:
    return lambda screen: any(text in line for line in screen.display)


def _sorted_as(order: str, region: Region) -> Predicate:
    """The image pane says `sort: order` and the images it shows are in that order."""

    def check(screen: Any) -> bool:
        lines = _region_text(screen, region)
        if not any(f"sort: {order}" in line for line in lines):
            return False
        shown = [int(match.group(1)) for line in lines if (match := _IMAGE_NAME.search(line))]
        if len(shown) < 2:
            return False
        # Largest first by size (ties by name); newest, the highest index, first by creation time.
        keys: dict[str, Callable[[int], tuple[int, int]]] = {
            "size": lambda index: (-scale_set.size_class(index), index),
            "created": lambda index: (-index, 0),
            "name": lambda index: (index, 0),
        }
        return shown == sorted(shown, key=keys[order])

    return check


# ---------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def settle(pid: int) -> float:
    """Wait until the app has finished its start-up work in the background (the sharing of the
    first image needs every image's layers): at least SETTLE_SECONDS, then until a whole second
    passes with at most one clock tick of CPU, at most SETTLE_LIMIT seconds. Returns the wait."""
    started = time.monotonic()
    time.sleep(SETTLE_SECONDS)
    while time.monotonic() - started < SETTLE_LIMIT:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before <= 1 / CLK_TCK:
            break
    return time.monotonic() - started


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def children(pid: int) -> list[int]:
    """Direct children of a process (dockerd's containerd)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, ValueError, IndexError):
            text = (entry / "stat").read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def process_name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def cpu_over(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Percent of one core each process used over `seconds` of wall time."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    return {name: 100 * (cpu_seconds(pid) - before[name]) / wall for name, pid in pids.items()}


def app_command(host: str) -> list[str]:
    """`dockerscope --host HOST`, from the venv this script runs in when it has the console script."""
    script = Path(sys.executable).parent / "dockerscope"
    if script.exists():
        return [str(script), "--host", host]
    found = shutil.which("dockerscope")
    return [found, "--host", host] if found else [sys.executable, "-m", "dockerscope", "--host", host]


# ---------------------------------------------------------------- measurements


@dataclass
class Spread:
    """Samples in seconds (or any unit) with their median, min and max."""

    samples: list[float]
    median: float = 0.0
    min: float = 0.0
    max: float = 0.0

    def __post_init__(self) -> None:
        if self.samples:
            self.median = statistics.median(self.samples)
            self.min = min(self.samples)
            self.max = max(self.samples)


@dataclass
class ScaleResult:
    """Every number measured at one scale."""

    label: str
    images: int
    containers: int
    scale_set: dict[str, Any] = field(default_factory=dict)
    first_paint: Spread | None = None
    first_data: Spread | None = None
    quit: Spread | None = None
    idle: dict[str, float] = field(default_factory=dict)
    memory_mib: dict[str, float] = field(default_factory=dict)
    event_to_screen: Spread | None = None
    untag_to_screen: Spread | None = None
    requests_per_poll: int | None = None
    poll_seconds: float | None = None
    key_j: Spread | None = None
    key_s: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Bench:
    """Runs every measurement at one scale and keeps every app it starts, to kill them all."""

    def __init__(self, host: str, dockerd_pid: int, idle_seconds: float) -> None:
        self.host = host
        self.dockerd_pid = dockerd_pid
        self.idle_seconds = idle_seconds
        self.api = scale_set.connect()
        self.terminals: list[Terminal] = []

    def close(self) -> None:
        for terminal in self.terminals:
            terminal.close()
        self.terminals.clear()
        self.api.close()

    @contextmanager
    def app(self) -> Iterator[tuple[Terminal, float, float]]:
        """A launched app, the seconds until its first paint and until it showed the scale images."""
        terminal = Terminal(app_command(self.host))
        self.terminals.append(terminal)
        try:
            painted = terminal.watch(lambda screen: any(line.strip() for line in screen.display))
            shown = terminal.watch(_shows(DATA_TEXT))
            started = terminal.start()
            at = terminal.wait(shown, f"no {DATA_TEXT!r} on screen", timeout=FIRST_DATA_TIMEOUT)
            yield terminal, terminal.wait(painted, "the first paint") - started, at - started
        finally:
            terminal.close()
            self.terminals.remove(terminal)

    def daemon_pids(self) -> dict[str, int]:
        pids = {"dockerd": self.dockerd_pid}
        for child in children(self.dockerd_pid):
            with suppress(OSError):
                if process_name(child) == "containerd":
                    pids["containerd"] = child
        return pids

    def run(self, images: int, containers: int) -> ScaleResult:
        result = ScaleResult(label=f"{images}x{containers}", images=images, containers=containers)
        report = scale_set.grow(images, containers, self.api)
        result.scale_set = asdict(report)
        print(scale_set.describe(report), flush=True)
        steps: list[tuple[str, Callable[[ScaleResult], None]]] = [
            ("idle baseline", self.baseline),
            ("launches", self.launches),
            ("long run", self.long_run),
            ("requests per poll", self.requests_per_poll),
        ]
        for name, step in steps:
            print(f"  … {name}", flush=True)
            try:
                step(result)
            except BenchmarkError as error:
                result.errors.append(f"{name}: {error}")
                print(f"  ! {name} failed: {error}", file=sys.stderr, flush=True)
        return result

    def baseline(self, result: ScaleResult) -> None:
        """dockerd (and containerd) alone, with no app running, over the idle window."""
        time.sleep(2)  # let the daemon finish whatever growing the scale set left it doing
        for name, value in cpu_over(self.daemon_pids(), self.idle_seconds).items():
            result.idle[f"{name}_baseline_pct"] = value

    def launches(self, result: ScaleResult) -> None:
        """First data on screen and quit time over LAUNCHES launches."""
        paints, first, quits = [], [], []
        for _ in range(LAUNCHES):
            with self.app() as (terminal, paint, data):
                paints.append(paint)
                first.append(data)
                terminal.wait_quiet(0.5, timeout=5)
                quits.append(terminal.quit())
        result.first_paint = Spread(paints)
        result.first_data = Spread(first)
        result.quit = Spread(quits)

    def long_run(self, result: ScaleResult) -> None:
        """One app, settled: idle cost, memory, event -> screen, key -> screen."""
        with self.app() as (terminal, _, _):
            result.idle["settled_after_s"] = settle(terminal.pid)
            self.idle(terminal, result)
            self.events(terminal, result)
            self.keys(terminal, result)
            result.memory_mib["rss_after_keys"], result.memory_mib["peak"] = memory_mib(terminal.pid)
            terminal.quit()

    def idle(self, terminal: Terminal, result: ScaleResult) -> None:
        frames, written = terminal.frames, terminal.bytes
        pids = {"dockerscope": terminal.pid, **self.daemon_pids()}
        usage = cpu_over(pids, self.idle_seconds)
        result.idle["dockerscope_pct"] = usage["dockerscope"]
        for name in ("dockerd", "containerd"):
            if name in usage:
                result.idle[f"{name}_with_app_pct"] = usage[name]
                result.idle[f"{name}_caused_pct"] = usage[name] - result.idle.get(f"{name}_baseline_pct", 0.0)
        result.idle["total_pct"] = usage["dockerscope"] + result.idle.get("dockerd_caused_pct", 0.0)
        result.idle["frames_per_min"] = (terminal.frames - frames) * 60 / self.idle_seconds
        result.idle["bytes_per_min"] = (terminal.bytes - written) * 60 / self.idle_seconds
        result.memory_mib["rss_after_idle"], result.memory_mib["peak"] = memory_mib(terminal.pid)

    def events(self, terminal: Terminal, result: ScaleResult) -> None:
        """Tag the first image from outside; time until the new tag is on screen, and the untag."""
        tagged, untagged = [], []
        for rep in range(EVENT_REPS):
            tag = f"n{rep}"
            text = f"{EVENT_REPO}:{tag}"
            shown = terminal.watch(_shows(text))
            started = time.monotonic()
            self.api.tag(FIRST_IMAGE, EVENT_REPO, tag)
            try:
                tagged.append(terminal.wait(shown, f"the new tag {text}") - started)
            except BenchmarkError:
                with suppress(docker.errors.APIError):
                    self.api.remove_image(text, noprune=True)
                raise
            gone = terminal.watch(lambda screen, text=text: not _shows(text)(screen))
            started = time.monotonic()
            self.api.remove_image(text, noprune=True)
            untagged.append(terminal.wait(gone, f"the removed tag {text} gone") - started)
            time.sleep(0.5)
        result.event_to_screen = Spread(tagged)
        result.untag_to_screen = Spread(untagged)

    def keys(self, terminal: Terminal, result: ScaleResult) -> None:
        """`j` (cursor down): first change in the image pane; `s`: first change and re-sorted."""
        terminal.wait_quiet(0.5)
        region = terminal.image_pane()
        samples = []
        for _ in range(KEY_REPS):
            changed = terminal.watch_change(region)
            started = time.monotonic()
            terminal.send(b"j")
            samples.append(terminal.wait(changed, "the image pane after j") - started)
            terminal.wait_quiet(0.3)
        result.key_j = Spread(samples)
        for order in ("size", "created", "name")[:SORT_REPS]:
            terminal.wait_quiet(0.3)
            changed = terminal.watch_change(region)
            sorted_ = terminal.watch(_sorted_as(order, region))
            started = time.monotonic()
            terminal.send(b"s")
            result.key_s[order] = {
                "first_change": terminal.wait(changed, "the image pane after s") - started,
                "sorted": terminal.wait(sorted_, f"the image pane sorted by {order}") - started,
            }

    def requests_per_poll(self, result: ScaleResult) -> None:
        """API requests of one poll after a warm-up poll, in-process through DockerService."""
        from dockerscope.service import DockerService, resolve_connection

        async def measure() -> tuple[int, float]:
            service = DockerService(resolve_connection(self.host))
            try:
                await service.snapshot()
                before = service.request_count
                started = time.monotonic()
                await service.snapshot()
                return service.request_count - before, time.monotonic() - started
            finally:
                service.close()

        result.requests_per_poll, result.poll_seconds = asyncio.run(measure())


# ---------------------------------------------------------------- report


def _spread(spread: Spread | None, unit: str = "s") -> str:
    if spread is None:
        return "n/a"
    return f"median {spread.median:.3f}{unit}  min {spread.min:.3f}  max {spread.max:.3f}  (n={len(spread.samples)})"


def _verdict(label: str, metric: str, value: float | None) -> str:
    target = TARGETS.get(label, {}).get(metric)
    if target is None:
        return ""
    limit, unit = target
    if value is None:
        return f"target ≤ {limit:g}{unit}: not measured"
    return f"target ≤ {limit:g}{unit}: {'ok' if value <= limit else 'MISSED'}"


def report(result: ScaleResult, idle_seconds: float) -> str:
    """The table for one scale."""
    idle = result.idle
    memory = result.memory_mib
    label = result.label

    def pct(key: str) -> str:
        value = idle.get(key)
        if value is None:
            return "n/a"
        return f"{value:+.2f}%" if key.endswith("caused_pct") else f"{value:.2f}%"

    rows: list[tuple[str, str, str]] = [
        ("first paint (any text)", _spread(result.first_paint), ""),
        (
            "first data on screen",
            _spread(result.first_data),
            _verdict(label, "first_data_s", result.first_data.median if result.first_data else None),
        ),
        ("quit time (q -> exit)", _spread(result.quit), ""),
        (
            "start-up work done after",
            f"{idle['settled_after_s']:.1f}s" if "settled_after_s" in idle else "n/a",
            "CPU quiet; the idle window starts then",
        ),
        (f"idle {idle_seconds:g}s: dockerscope CPU", pct("dockerscope_pct"), "% of one core"),
        ("idle: dockerd CPU, no app (baseline)", pct("dockerd_baseline_pct"), ""),
        ("idle: dockerd CPU, with app", pct("dockerd_with_app_pct"), ""),
        ("idle: dockerd CPU caused by the app", pct("dockerd_caused_pct"), "with app - baseline"),
        (
            "idle: total (app + caused dockerd)",
            pct("total_pct"),
            _verdict(label, "idle_total_pct", idle.get("total_pct")),
        ),
        ("idle: containerd CPU caused", pct("containerd_caused_pct"), "not in the total"),
        (
            "idle: frames, bytes painted",
            f"{idle.get('frames_per_min', 0):.1f} frames/min, {idle.get('bytes_per_min', 0) / 1024:.1f} KiB/min"
            if idle
            else "n/a",
            "",
        ),
        (
            "RSS after idle / peak (VmHWM)",
            f"{memory['rss_after_idle']:.1f} / {memory['peak']:.1f} MiB" if "rss_after_idle" in memory else "n/a",
            _verdict(label, "rss_mib", memory.get("rss_after_idle")),
        ),
        (
            "RSS after the key tests",
            f"{memory['rss_after_keys']:.1f} MiB" if "rss_after_keys" in memory else "n/a",
            "",
        ),
        (
            "event -> screen (tag)",
            _spread(result.event_to_screen),
            _verdict(label, "event_to_screen_s", result.event_to_screen.median if result.event_to_screen else None),
        ),
        ("event -> screen (untag)", _spread(result.untag_to_screen), ""),
        (
            "requests per poll",
            "n/a" if result.requests_per_poll is None else str(result.requests_per_poll),
            "" if result.poll_seconds is None else f"that poll took {result.poll_seconds * 1000:.0f} ms",
        ),
        (
            "key j -> screen (cursor down)",
            _spread(result.key_j),
            _verdict(label, "key_j_s", result.key_j.median if result.key_j else None),
        ),
        (
            "key s -> first change / re-sorted",
            "  ".join(
                f"{order} {value['first_change']:.3f}/{value['sorted']:.3f}s" for order, value in result.key_s.items()
            )
            or "n/a",
            _verdict(
                label,
                "key_s_s",
                statistics.median(value["sorted"] for value in result.key_s.values()) if result.key_s else None,
            ),
        ),
    ]
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = [f"== {result.images} images x {result.containers} containers =="]
    lines += [f"  {name:<{width}}  {value:<{value_width}}  {note}".rstrip() for name, value, note in rows]
    lines += [f"  ERROR {error.splitlines()[0]}" for error in result.errors]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def parse_scales(text: str) -> list[tuple[int, int]]:
    scales = []
    for part in text.split(","):
        images, sep, containers = part.strip().partition("x")
        if not sep or not images.isdigit() or not containers.isdigit() or int(images) < 1:
            raise argparse.ArgumentTypeError(f"not IMAGESxCONTAINERS: {part!r}")
        scales.append((int(images), int(containers)))
    return scales


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scales", type=parse_scales, default=parse_scales("300x150,1000x500"), metavar="NxM,...")
    parser.add_argument("--idle-seconds", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every number to this file")
    pid = parser.add_mutually_exclusive_group(required=True)
    pid.add_argument("--dockerd-pid", type=int, metavar="PID")
    pid.add_argument("--dockerd-pidfile", type=Path, metavar="FILE")
    args = parser.parse_args(argv)

    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        parser.error("DOCKER_HOST must name the private daemon")
    dockerd_pid = args.dockerd_pid or int(args.dockerd_pidfile.read_text().strip())
    if process_name(dockerd_pid) != "dockerd":
        parser.error(f"process {dockerd_pid} is {process_name(dockerd_pid)!r}, not dockerd")
    if args.idle_seconds < 1:
        parser.error("--idle-seconds must be at least 1")

    signal.signal(signal.SIGTERM, _stop)
    sys.setswitchinterval(0.001)  # the pty reader timestamps chunks: let it run promptly
    try:
        version = scale_set.connect().version()
    except docker.errors.DockerException as error:
        print(f"live.py: cannot reach {host}: {error}", file=sys.stderr)
        return 2
    print(
        f"daemon {host}: Docker {version.get('Version')} (API {version.get('ApiVersion')}), dockerd pid {dockerd_pid}"
    )
    print(f"app: {' '.join(app_command(host))}  terminal {COLS}x{ROWS}", flush=True)

    results: list[ScaleResult] = []
    bench = Bench(host, dockerd_pid, args.idle_seconds)
    try:
        for images, containers in args.scales:
            result = bench.run(images, containers)
            results.append(result)
            print(report(result, args.idle_seconds), flush=True)
    finally:
        bench.close()
        if args.json:
            args.json.write_text(
                json.dumps(
                    {"host": host, "idle_seconds": args.idle_seconds, "results": [asdict(r) for r in results]},
                    indent=2,
                )
            )
    return 1 if any(result.errors for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
