"""Soak: dockerscope in a pseudo-terminal for many minutes of churn on the daemon and keys pressed.

Run with DOCKER_HOST naming a private daemon that has the fixture image dockerscope-test/tool:1
(scripts/build-fixtures.sh builds it):

    python benchmarks/soak.py [--minutes 10] [--period 0.2] [--key-period 0.4]

Every `--period` seconds one step of a cycle runs through the API: tag a tiny imported image, untag
an older tag, create a container from the tool image (network none), start it, stop the one before
(at once), remove an older one; so a few tags and containers come and go all the time. Meanwhile
keys move through the panes, sort, filter, open a layer's contents and go back. The app (the
harness of live.py) runs with hooks that write every exception (of the app, a thread, asyncio or
one Python could not raise) and every warning to a log file instead of the terminal.

It prints the exceptions seen (the target is 0), the app's RSS after start-up, once warm (after two
rounds of the key script) and at the end, and the growth from each, its threads at the start and
the end, and whether the final screen's image and container counts equal the daemon's. Exit
status 1 when an exception was seen, the app died or the counts differ.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import docker
import live

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from images import import_tiny_image  # the tests' helper

TOOL_IMAGE = "dockerscope-test/tool:1"
LABEL = "dockerscope-soak"
TINY_REPOSITORY = "dockerscope-soak/tiny"
TAG_REPOSITORY = "dockerscope-soak/tag"
CONTAINER_PREFIX = "dockerscope-soak-"
TINY_IMAGES = 3
TAGS_KEPT = 3
CONTAINERS_KEPT = 2
START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 30.0
_COUNTS = re.compile(r"(\d+) images? · (\d+) containers?")

# Runs the app with every exception and warning written to the log file named by argv[1].
LAUNCHER = r"""
import logging, sys, threading, traceback

log = open(sys.argv[1], "a", buffering=1)


def write(kind, text):
    log.write(f"=== {kind}\n{text.rstrip()}\n")


logging.basicConfig(stream=log, level=logging.WARNING, format="=== log %(levelname)s %(name)s\n%(message)s")
logging.captureWarnings(True)
threading.excepthook = lambda args: write(
    "exception in a thread", "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
)
sys.unraisablehook = lambda unraisable: write(
    "unraisable exception",
    f"{unraisable.err_msg}: {unraisable.object!r}\n"
    + "".join(traceback.format_exception(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)),
)

from textual.app import App

_handle_exception = App._handle_exception


def handle_exception(self, error):
    write("exception in the app", "".join(traceback.format_exception(error)))
    _handle_exception(self, error)


App._handle_exception = handle_exception

from dockerscope.cli import main

try:
    code = main(sys.argv[2:])
except BaseException:
    write("uncaught exception", traceback.format_exc())
    raise
sys.exit(code)
"""

# (keys, seconds to wait after them), pressed in a loop: every pane, sorts, filters, dangling
# images, a container's image, help, a manual refresh, a layer's contents opened and closed.
# Rounds of the key script after which the app has used every screen, cache and kept analysis
# it will: the RSS there is the baseline for growth that would be a leak.
WARM_CYCLES = 2
KEY_SCRIPT: list[tuple[bytes, float]] = [
    (b"1", 0.0),
    (b"j", 0.0),
    (b"j", 0.0),
    (b"k", 0.0),
    (b"3", 0.0),
    (b"j", 0.0),
    (b"\r", 1.5),
    (b"a", 0.0),
    (b"s", 0.0),
    (b"\x1b", 0.5),
    (b"2", 0.0),
    (b"j", 0.0),
    (b"\r", 0.0),
    (b"+", 0.0),
    (b"-", 0.0),
    (b"4", 0.0),
    (b"j", 0.0),
    (b"j", 0.0),
    (b"i", 0.0),
    (b"4", 0.0),
    (b"3", 0.0),
    (b"\r", 1.0),
    (b"\x1b", 0.5),
    (b"1", 0.0),
    (b"s", 0.0),
    (b"s", 0.0),
    (b"s", 0.0),
    (b"/", 0.0),
    (b"s", 0.0),
    (b"o", 0.0),
    (b"a", 0.0),
    (b"k", 0.0),
    (b"\x1b", 0.5),
    (b"d", 0.0),
    (b"d", 0.0),
    (b"c", 0.0),
    (b"a", 0.0),
    (b"?", 0.5),
    (b"\x1b", 0.5),
    (b"r", 0.0),
]


class Churn:
    """One step every `period` seconds, cycling tag, untag, create, start, stop, remove."""

    def __init__(self, api: docker.APIClient, tiny_ids: list[str], period: float) -> None:
        self.api = api
        self.tiny_ids = tiny_ids
        self.period = period
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.first_failures: list[str] = []
        self._containers: dict[int, str] = {}

    def run(self, stop: threading.Event) -> None:
        steps: list[tuple[str, Callable[[int], None]]] = [
            ("tag", self.tag),
            ("untag", self.untag),
            ("create", self.create),
            ("start", self.start),
            ("stop", self.stop),
            ("rm", self.remove),
        ]
        step_number = 0
        next_at = time.monotonic()
        while not stop.is_set():
            name, step = steps[step_number % len(steps)]
            try:
                step(step_number // len(steps))
                self.done[name] += 1
            except docker.errors.DockerException as error:
                self.failed[name] += 1
                if len(self.first_failures) < 5:
                    self.first_failures.append(f"{name}: {error}")
            step_number += 1
            next_at += self.period
            stop.wait(max(next_at - time.monotonic(), 0.0))

    def tag(self, cycle: int) -> None:
        self.api.tag(self.tiny_ids[cycle % len(self.tiny_ids)], TAG_REPOSITORY, str(cycle))

    def untag(self, cycle: int) -> None:
        if cycle >= TAGS_KEPT:
            self.api.remove_image(f"{TAG_REPOSITORY}:{cycle - TAGS_KEPT}")

    def create(self, cycle: int) -> None:
        container = self.api.create_container(
            TOOL_IMAGE,
            ["sleep", "3600"],
            name=f"{CONTAINER_PREFIX}{cycle}",
            labels={LABEL: "1"},
            host_config=self.api.create_host_config(network_mode="none"),
        )
        self._containers[cycle] = container["Id"]

    def start(self, cycle: int) -> None:
        self.api.start(self._containers[cycle])

    def stop(self, cycle: int) -> None:
        if cycle - 1 in self._containers:
            self.api.stop(self._containers[cycle - 1], timeout=0)

    def remove(self, cycle: int) -> None:
        gone = self._containers.pop(cycle - CONTAINERS_KEPT, None)
        if gone is not None:
            self.api.remove_container(gone, force=True)


def press_keys(terminal: live.Terminal, period: float, stop: threading.Event, pressed: Counter[str]) -> None:
    while not stop.is_set():
        for keys, pause in KEY_SCRIPT:
            if stop.is_set():
                return
            with contextlib.suppress(OSError):
                terminal.send(keys)
                pressed["keys"] += 1
            stop.wait(period + pause)
        pressed["cycles"] += 1


def clean_up(api: docker.APIClient) -> None:
    """Remove every container, tag and image a soak made (also those of an interrupted run)."""
    for container in api.containers(all=True, filters={"label": LABEL}):
        with contextlib.suppress(docker.errors.DockerException):
            api.remove_container(container["Id"], force=True)
    for image in api.images(filters={"label": LABEL}):
        with contextlib.suppress(docker.errors.DockerException):
            api.remove_image(image["Id"], force=True)


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError(f"no thread count for {pid}")


def screen_counts(terminal: live.Terminal) -> tuple[int, int] | None:
    match = _COUNTS.search(terminal.text())
    return (int(match.group(1)), int(match.group(2))) if match else None


def daemon_counts(api: docker.APIClient) -> dict[str, int]:
    return {
        "images": len(api.images()),
        "images -a": len(api.images(all=True)),
        "ps -a": len(api.containers(all=True)),
    }


def settled_counts(api: docker.APIClient, terminal: live.Terminal) -> tuple[tuple[int, int] | None, dict[str, int]]:
    """The screen's counts and the daemon's, once the screen agrees with a daemon that did not
    change meanwhile (others may use the daemon too), or as they are after SETTLE_TIMEOUT."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        before = daemon_counts(api)
        terminal.wait_quiet(1.0, timeout=5.0)
        shown = screen_counts(terminal)
        after = daemon_counts(api)
        agree = shown == (after["images"], after["ps -a"])
        if (before == after and agree) or time.monotonic() > deadline:
            return shown, after
        time.sleep(0.5)


def log_entries(path: Path) -> Counter[str]:
    """Entries of the launcher's log by kind ("exception in the app", "log ERROR asyncio", …)."""
    kinds: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("=== "):
            kinds[line.removeprefix("=== ")] += 1
    return kinds


def is_exception(kind: str) -> bool:
    return "exception" in kind or kind.startswith(("log ERROR", "log CRITICAL"))


@dataclass
class Soak:
    """What one soak measured."""

    minutes: float = 0.0
    rss_start: float = 0.0
    rss_warm: float = 0.0
    rss_end: float = 0.0
    rss_peak: float = 0.0
    threads_start: int = 0
    threads_end: int = 0
    died: str = ""
    exit_code: int | None = None
    quit_seconds: float = 0.0
    status: str = ""
    shown: tuple[int, int] | None = None
    daemon: dict[str, int] = field(default_factory=dict)

    @property
    def counts_equal(self) -> bool:
        return self.shown is not None and self.shown == (self.daemon.get("images"), self.daemon.get("ps -a"))


def soak(terminal: live.Terminal, host: str, churn: Churn, pressed: Counter[str], args: argparse.Namespace) -> Soak:
    """Start the app, churn and press keys for `args.minutes`, then take the final numbers and quit."""
    result = Soak()
    shown_live = terminal.watch(live._shows("● live"))
    terminal.start()
    terminal.wait(shown_live, "the app live", START_TIMEOUT)
    live.settle(terminal.pid)
    result.rss_start, _ = live.memory_mib(terminal.pid)
    result.threads_start = threads(terminal.pid)
    print(
        f"app pid {terminal.pid} on {host}: live; RSS {result.rss_start:.1f} MiB, {result.threads_start} threads; "
        f"churn every {args.period:g} s, a key every {args.key_period:g} s or more, for {args.minutes:g} min",
        flush=True,
    )
    stop = threading.Event()
    workers = [
        threading.Thread(target=churn.run, args=(stop,), name="churn", daemon=True),
        threading.Thread(target=press_keys, args=(terminal, args.key_period, stop, pressed), name="keys", daemon=True),
    ]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    next_report = started + 60
    try:
        while (now := time.monotonic()) < deadline:
            assert terminal.process is not None
            if terminal.process.poll() is not None:
                result.died = f"the app exited with {terminal.process.returncode} during the soak"
                break
            time.sleep(min(1.0, deadline - now))
            if not result.rss_warm and pressed["cycles"] >= WARM_CYCLES:
                result.rss_warm, _ = live.memory_mib(terminal.pid)
            if time.monotonic() >= next_report:
                next_report += 60
                print(
                    f"  {(time.monotonic() - started) / 60:4.1f} min: RSS {live.memory_mib(terminal.pid)[0]:.1f} MiB, "
                    f"{threads(terminal.pid)} threads, {sum(churn.done.values())} churn steps, "
                    f"{pressed['keys']} keys",
                    flush=True,
                )
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    result.minutes = (time.monotonic() - started) / 60
    if result.died:
        result.exit_code = terminal.process.returncode if terminal.process else None
        return result
    for _ in range(3):  # back to the explorer from wherever the keys left it
        terminal.send(b"\x1b")
        time.sleep(0.4)
    result.shown, result.daemon = settled_counts(churn.api, terminal)
    result.rss_end, result.rss_peak = live.memory_mib(terminal.pid)
    result.threads_end = threads(terminal.pid)
    result.status = next((line.strip() for line in terminal.text().splitlines() if _COUNTS.search(line)), "")
    result.quit_seconds = terminal.quit()
    result.exit_code = terminal.process.returncode if terminal.process else None
    return result


def report(result: Soak, churn: Churn, pressed: Counter[str], log_path: Path, on_terminal: int) -> int:
    """Print the numbers; the exit status: 1 when anything went wrong."""
    entries = log_entries(log_path)
    exceptions = sum(count for kind, count in entries.items() if is_exception(kind))
    print(
        f"soak: {result.minutes:.1f} min, {sum(churn.done.values())} churn steps {dict(churn.done)}, "
        f"{sum(churn.failed.values())} failed {dict(churn.failed)}; {pressed['keys']} keys pressed"
    )
    for failure in churn.first_failures:
        print(f"  churn failure: {failure}")
    if result.died:
        print(result.died)
    print(f"exceptions seen: {exceptions} in the app's log, {on_terminal} tracebacks on its terminal")
    for kind, count in sorted(entries.items()):
        print(f"  {count} x {kind}")
    print(f"app exit code: {result.exit_code} (quit took {result.quit_seconds:.2f} s)")
    growth = 100 * (result.rss_end - result.rss_start) / result.rss_start if result.rss_start else 0.0
    print(
        f"RSS: {result.rss_start:.1f} MiB at start, {result.rss_end:.1f} MiB at the end, "
        f"growth {growth:+.1f} % (peak {result.rss_peak:.1f} MiB)"
    )
    if result.rss_warm:
        warm_growth = 100 * (result.rss_end - result.rss_warm) / result.rss_warm
        print(
            f"RSS once warm (after {WARM_CYCLES} rounds of the key script: every screen, cache and kept "
            f"analysis in use): {result.rss_warm:.1f} MiB; growth from there to the end {warm_growth:+.1f} %"
        )
    print(f"threads: {result.threads_start} at start, {result.threads_end} at the end")
    print(f"final status line: {result.status}")
    images, containers = result.shown if result.shown else (None, None)
    daemon = result.daemon
    print(
        f"counts: screen {images} images, {containers} containers; daemon: `docker images` {daemon.get('images')} "
        f"(`docker images -a` {daemon.get('images -a')}, which adds the intermediate images of legacy builds "
        f"that dockerscope does not list), `docker ps -a` {daemon.get('ps -a')}: "
        f"{'equal' if result.counts_equal else 'DIFFERENT'}"
    )
    print(f"app log: {log_path}")
    failed = result.died or exceptions or on_terminal or not result.counts_equal or result.exit_code != 0
    return 1 if failed else 0


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=0.2, help="seconds between churn steps")
    parser.add_argument("--key-period", type=float, default=0.4, help="seconds between keys")
    parser.add_argument("--log", type=Path, help="the app's exception log (default: a temporary file)")
    args = parser.parse_args()
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        parser.error("DOCKER_HOST must name the private daemon")
    signal.signal(signal.SIGTERM, _stop)

    api = docker.APIClient(base_url=host, version="auto", timeout=60)
    try:
        api.inspect_image(TOOL_IMAGE)
    except docker.errors.DockerException as error:
        print(f"soak.py: {TOOL_IMAGE} on {host}: {error}", file=sys.stderr)
        return 2
    log_path = args.log or Path(tempfile.mkstemp(prefix="dockerscope-soak-", suffix=".log")[1])
    log_path.write_text("")
    clean_up(api)
    tiny_ids = [
        import_tiny_image(api, f"{TINY_REPOSITORY}:{number}", changes=(f"LABEL {LABEL}=1",))
        for number in range(TINY_IMAGES)
    ]
    churn = Churn(docker.APIClient(base_url=host, version="auto", timeout=60), tiny_ids, args.period)
    pressed: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="dockerscope-soak-cache-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # the app's layer cache: empty at start, gone after
        terminal = live.Terminal([sys.executable, "-c", LAUNCHER, str(log_path), "--host", host])
        try:
            result = soak(terminal, host, churn, pressed, args)
        finally:
            terminal.close()
            clean_up(api)
            churn.api.close()
            api.close()
    return report(result, churn, pressed, log_path, terminal.text().count("Traceback"))


if __name__ == "__main__":
    sys.exit(main())
