"""Start-up: dockerscope's first data on screen against a bare Textual app's first frame.

Run with DOCKER_HOST naming a private daemon:

    python benchmarks/startup.py [--launches 5] [--scale 300x150] [--image dockerscope-test/base:1]
                                 [--json OUT]

In one run, alternately: a bare Textual app (an `App` with one `Static`) to its first frame with
text, and `dockerscope --host $DOCKER_HOST` to the first frame showing `scale/img-` (both in the
pseudo-terminal of live.py), with the app's CPU seconds at that frame. Then `dockerscope analyze
IMAGE` to its first byte on stdout, and the import cost of `textual.app`, `dockerscope.ui`,
`dockerscope.analyze` and `docker` inside a fresh interpreter. Prints the medians, and dockerscope's
over the bare app's in wall time (the target is ≤ 1.5) and in CPU seconds.

Every process reads its bytecode from a private cache that one uncounted launch of each fills
(PYTHONPYCACHEPREFIX), whatever PYTHONDONTWRITEBYTECODE says: as for an installed package, whose
.pyc files pip writes. Without it a checkout compiles dockerscope's modules at every launch
(about 0.03 s of CPU), while Textual's come from its installed .pyc files.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

import live
import scale_set

TARGET_RATIO = 1.5
BARE_TEXT = "bare textual app"
# The bare app: what every Textual app pays before its first frame, and nothing more.
BARE_APP = f"""
from textual.app import App
from textual.widgets import Static


class Bare(App[None]):
    def compose(self):
        yield Static({BARE_TEXT!r})


Bare().run()
"""
# Seconds from just before an import to just after, in a fresh interpreter, printed on stdout.
IMPORT_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
IMPORTS = ("textual.app", "dockerscope.ui", "dockerscope.analyze", "docker")
ANALYZE_TIMEOUT = 60.0


@dataclass
class Result:
    """Every sample, in seconds."""

    bare_first_frame: list[float] = field(default_factory=list)
    bare_cpu: list[float] = field(default_factory=list)
    dockerscope_first_paint: list[float] = field(default_factory=list)
    dockerscope_first_data: list[float] = field(default_factory=list)
    dockerscope_cpu: list[float] = field(default_factory=list)
    analyze_first_output: list[float] = field(default_factory=list)
    analyze_exit: list[float] = field(default_factory=list)
    imports: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _taking_cpu(terminal: live.Terminal, predicate: live.Predicate, cpu: list[float]) -> live.Predicate:
    """`predicate`, which also notes the app's CPU seconds (all threads) at the frame that made it
    true: on a busy machine the CPU an app needed for a frame varies less than the wall time."""

    def check(screen: object) -> bool:
        if not predicate(screen):
            return False
        if not cpu and terminal.process is not None:
            cpu.append(live.cpu_seconds(terminal.pid))
        return True

    return check


def bare_launch() -> tuple[float, float]:
    """Seconds from the launch of the bare app to its first frame with text, and its CPU seconds then."""
    terminal = live.Terminal([sys.executable, "-c", BARE_APP])
    cpu: list[float] = []
    try:
        shown = terminal.watch(_taking_cpu(terminal, live._shows(BARE_TEXT), cpu))
        started = terminal.start()
        at = terminal.wait(shown, "the bare app's first frame", timeout=live.FIRST_DATA_TIMEOUT)
        return at - started, cpu[0]
    finally:
        terminal.close()


def dockerscope_launch(host: str) -> tuple[float, float, float]:
    """Seconds from the launch of dockerscope to its first paint and to the first frame with data,
    and its CPU seconds at that frame."""
    terminal = live.Terminal(live.app_command(host))
    cpu: list[float] = []
    try:
        painted = terminal.watch(lambda screen: any(line.strip() for line in screen.display))
        shown = terminal.watch(_taking_cpu(terminal, live._shows(live.DATA_TEXT), cpu))
        started = terminal.start()
        data = terminal.wait(shown, f"no {live.DATA_TEXT!r} on screen", timeout=live.FIRST_DATA_TIMEOUT)
        paint = terminal.wait(painted, "the first paint")
        terminal.wait_quiet(0.3, timeout=3)
        terminal.quit()
        return paint - started, data - started, cpu[0]
    finally:
        terminal.close()


def analyze_launch(host: str, image: str, cache: str) -> tuple[float, float]:
    """Seconds from the launch of `dockerscope analyze IMAGE` to its first byte on stdout, and to
    its exit. The layer cache is a private one, warmed by a launch that is not counted."""
    command = [*live.app_command(host)[:-2], "analyze", image, "--host", host]
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        # The first byte's arrival: select, then read it (a read alone could wait forever).
        readable, _, _ = select.select([process.stdout], [], [], ANALYZE_TIMEOUT)
        first_at = time.monotonic()
        first = process.stdout.read(1) if readable else b""
        _, error = process.communicate(timeout=ANALYZE_TIMEOUT)
        ended = time.monotonic()
    except subprocess.TimeoutExpired:
        raise live.BenchmarkError(f"analyze did not end within {ANALYZE_TIMEOUT}s") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0 or not first:
        raise live.BenchmarkError(f"analyze exited with {process.returncode}: {error.decode(errors='replace')}")
    return first_at - started, ended - started


def import_seconds(module: str) -> float:
    """Seconds `import module` takes in a fresh interpreter."""
    answer = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE.format(module=module)], capture_output=True, text=True, check=True
    )
    return float(answer.stdout.strip())


def measure(host: str, launches: int, image: str) -> Result:
    result = Result()
    steps = [("bare app", lambda: _add_bare(result, *bare_launch())), ("dockerscope", lambda: _add(result, host))]
    try:  # not counted: fills the bytecode cache (and the daemon's own caches)
        bare_launch()
        dockerscope_launch(host)
    except live.BenchmarkError as error:
        result.errors.append(f"warm-up: {error}")
        print(f"  ! warm-up failed: {error}", file=sys.stderr, flush=True)
    # Alternate the two, so a busy moment of the machine falls on both alike.
    for _ in range(launches):
        for name, step in steps:
            try:
                step()
            except live.BenchmarkError as error:
                result.errors.append(f"{name}: {error}")
                print(f"  ! {name} failed: {error}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="startup-cache-") as cache:
        try:
            analyze_launch(host, image, cache)
            for _ in range(launches):
                first, ended = analyze_launch(host, image, cache)
                result.analyze_first_output.append(first)
                result.analyze_exit.append(ended)
        except live.BenchmarkError as error:
            result.errors.append(f"analyze: {error}")
            print(f"  ! analyze failed: {error}", file=sys.stderr, flush=True)
    for module in IMPORTS:
        import_seconds(module)  # not counted: fills the bytecode cache
    for _ in range(launches):
        for module in IMPORTS:
            result.imports.setdefault(module, []).append(import_seconds(module))
    return result


def _add_bare(result: Result, first_frame: float, cpu: float) -> None:
    result.bare_first_frame.append(first_frame)
    result.bare_cpu.append(cpu)


def _add(result: Result, host: str) -> None:
    paint, data, cpu = dockerscope_launch(host)
    result.dockerscope_first_paint.append(paint)
    result.dockerscope_first_data.append(data)
    result.dockerscope_cpu.append(cpu)


def _median(samples: Sequence[float]) -> float | None:
    return statistics.median(samples) if samples else None


def _spread(samples: Sequence[float]) -> str:
    if not samples:
        return "n/a"
    return (
        f"median {statistics.median(samples):.3f}s  min {min(samples):.3f}  max {max(samples):.3f}  (n={len(samples)})"
    )


def _ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float | None:
    top, bottom = _median(numerator), _median(denominator)
    return top / bottom if top and bottom else None


def report(result: Result) -> str:
    ratio = _ratio(result.dockerscope_first_data, result.bare_first_frame)
    verdict = "" if ratio is None else f"target ≤ {TARGET_RATIO:g}: {'ok' if ratio <= TARGET_RATIO else 'MISSED'}"
    cpu_ratio = _ratio(result.dockerscope_cpu, result.bare_cpu)
    rows = [
        ("bare Textual app: first frame", _spread(result.bare_first_frame), ""),
        ("dockerscope: first paint", _spread(result.dockerscope_first_paint), ""),
        ("dockerscope: first data on screen", _spread(result.dockerscope_first_data), ""),
        ("ratio (medians) data / bare", "n/a" if ratio is None else f"{ratio:.2f}", verdict),
        ("bare app: CPU at first frame", _spread(result.bare_cpu), "utime+stime, 10 ms ticks"),
        ("dockerscope: CPU at first data", _spread(result.dockerscope_cpu), ""),
        ("CPU ratio (medians)", "n/a" if cpu_ratio is None else f"{cpu_ratio:.2f}", ""),
        ("analyze: first output", _spread(result.analyze_first_output), "warm layer cache"),
        ("analyze: exit", _spread(result.analyze_exit), ""),
        *((f"import {module}", _spread(samples), "fresh interpreter") for module, samples in result.imports.items()),
    ]
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = [f"  {name:<{width}}  {value:<{value_width}}  {note}".rstrip() for name, value, note in rows]
    lines += [f"  ERROR {error.splitlines()[0]}" for error in result.errors]
    return "\n".join(lines)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_scale(text: str) -> tuple[int, int]:
    images, sep, containers = text.partition("x")
    if not sep or not images.isdigit() or not containers.isdigit() or int(images) < 1:
        raise argparse.ArgumentTypeError(f"not IMAGESxCONTAINERS: {text!r}")
    return int(images), int(containers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--launches", type=int, default=live.LAUNCHES, metavar="N", help="launches of each (default 5)")
    parser.add_argument("--scale", type=parse_scale, default=(300, 150), metavar="NxM", help="default 300x150")
    parser.add_argument("--image", default="dockerscope-test/base:1", help="the image `analyze` reads (a small one)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every sample to this file")
    args = parser.parse_args(argv)
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        parser.error("DOCKER_HOST must name the private daemon")
    if not 1 <= args.launches <= 100:
        parser.error("--launches must be 1..100")

    signal.signal(signal.SIGTERM, _stop)
    sys.setswitchinterval(0.001)  # the pty reader timestamps chunks: let it run promptly
    print(scale_set.describe(scale_set.grow(*args.scale)), flush=True)
    print(f"app: {' '.join(live.app_command(host))}  terminal {live.COLS}x{live.ROWS}", flush=True)
    with tempfile.TemporaryDirectory(prefix="startup-pycache-") as pycache:
        # Read by every process this one starts (they inherit the environment).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = pycache
        result = measure(host, args.launches, args.image)
    print(report(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"host": host, "scale": args.scale, **asdict(result)}, indent=2))
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
