"""The overlay2 path of `dockerscope analyze` against `find` walking the same layer directories.

Run as root (the overlay path reads the daemon's data root) with DOCKER_HOST naming a local
private daemon that has the image (benchmarks/big_image.py builds the default one):

    python benchmarks/overlay_walk.py [--image dockerscope-bench/big:1] [--runs 5]
                                      [--dockerscope PATH] [--json OUT]

The directories are the ones dockerscope walks: `overlay_layer_dirs` of the image's GraphDriver
(LowerDir and UpperDir) under the daemon's DockerRootDir, with the same checks. Alternately,
`--runs` times each (after one warm-up round, not counted, so the page cache is warm for all):

- `find DIRS... -printf '%y %s %m %U %G %T@ %p\\n'` into /dev/null: a walk that stats every entry
  and formats what the reader keeps of it, the floor for any program walking these directories;
- `dockerscope analyze IMAGE --json --no-cache --source overlay` into /dev/null, a process;
- `python -c pass` (the interpreter's start-up alone) and `python -c "import dockerscope.cli,
  dockerscope.analyze"` (with the imports `analyze` pays before any work);
- in this process, after a warm-up call: `analyze.main` with the same arguments (from the call to
  the report written: inspect, walk, analysis, JSON), `read_layer_dir` over every directory alone
  (the walk) and `analyze_layers` on those listings alone (the replay), both with the collector held
  off as the service holds it.

Wall time is from the spawn to `wait4` (or from the call to its return); CPU time is user + system
of the child from `wait4`'s rusage, or of this process (all its threads) from `getrusage`. On a
machine shared with other jobs, CPU seconds vary less than wall time: the CPU ratio is the one to
trust there. Prints medians, min and max, the load average before and after, and the ratios of
`analyze` over `find`. Nothing leaves loopback: the daemon is the one DOCKER_HOST names.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.utils import kwargs_from_env

DEFAULT_IMAGE = "dockerscope-bench/big:1"
TARGET_RATIO = 2.0
# What the overlay reader takes from each entry: type, size, mode, owner, (mtime), path.
FIND_FORMAT = "%y %s %m %U %G %T@ %p\\n"
IMPORT_PROBE = "import dockerscope.cli, dockerscope.analyze"
FIND = "find"
ANALYZE = "dockerscope analyze"
INTERPRETER = "python -c pass"
IMPORTS = "start-up + imports"
IN_PROCESS = "analyze.main in process"
WALK = "read_layer_dir (walk only)"
REPLAY = "analyze_layers (replay only)"


@dataclass
class Sample:
    """One run: wall seconds and CPU seconds (user, system)."""

    wall: float
    user: float
    system: float

    @property
    def cpu(self) -> float:
        return self.user + self.system


@dataclass
class Measure:
    label: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def median(self, attribute: str) -> float | None:
        values = [getattr(sample, attribute) for sample in self.samples]
        return statistics.median(values) if values else None

    def spread(self, attribute: str) -> str:
        values = [getattr(sample, attribute) for sample in self.samples]
        if not values:
            return "n/a"
        return f"{statistics.median(values):6.3f} ({min(values):.3f}-{max(values):.3f})"


def default_dockerscope() -> Path:
    """The dockerscope console script of the venv this script runs in, else the one on PATH."""
    script = Path(sys.executable).parent / "dockerscope"
    found = shutil.which("dockerscope")
    return script if script.exists() or not found else Path(found)


def spawn(argv: Sequence[str]) -> Sample:
    """Runs argv with stdin and stdout on /dev/null; its wall time and its own CPU times. Raises
    RuntimeError when it exits with a failure."""
    executable = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if executable is None:
        raise RuntimeError(f"{argv[0]} not found")
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
        started = time.perf_counter()
        pid = os.posix_spawn(executable, list(argv), os.environ, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
    finally:
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}... exited with {code}")
    return Sample(wall, usage.ru_utime, usage.ru_stime)


def in_process(call: Callable[[], object]) -> Sample:
    """Runs call in this process: wall time and this process's CPU times (all threads)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    call()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Sample(wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)


def layer_dirs(image: str) -> tuple[list[str], list[str]]:
    """The image's diff ids and overlay2 layer directories, oldest first, as dockerscope finds them."""
    from dockerscope.service.layer_contents import diff_ids
    from dockerscope.service.overlay_reader import overlay_layer_dirs

    api = docker.APIClient(version="auto", **kwargs_from_env())
    try:
        inspect = api.inspect_image(image)
        root = api.info().get("DockerRootDir")
    finally:
        api.close()
    layers = diff_ids(inspect)
    dirs = overlay_layer_dirs(inspect.get("GraphDriver"), len(layers), root)
    if dirs is None:
        raise SystemExit(
            f"overlay_walk.py: the overlay2 directories of {image} are not readable here "
            "(run as root, on the daemon's host, with the overlay2 driver)"
        )
    return layers, dirs


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


class Bench:
    """Every measure, run once per round in a fixed order so a busy moment falls on all of them."""

    def __init__(self, image: str, dockerscope: Path, layers: list[str], dirs: list[str], in_proc: bool) -> None:
        from dockerscope import analyze
        from dockerscope.service.file_analysis import analyze_layers
        from dockerscope.service.layer_files import gc_paused
        from dockerscope.service.overlay_reader import read_layer_dir

        analyze_args = [image, "--json", "--no-cache", "--source", "overlay"]
        self.steps: list[tuple[Measure, Callable[[], Sample]]] = [
            (Measure(FIND), lambda: spawn([FIND, *dirs, "-printf", FIND_FORMAT])),
            (Measure(ANALYZE), lambda: spawn([str(dockerscope), "analyze", *analyze_args])),
            (Measure(INTERPRETER), lambda: spawn([sys.executable, "-c", "pass"])),
            (Measure(IMPORTS), lambda: spawn([sys.executable, "-c", IMPORT_PROBE])),
        ]
        if not in_proc:
            return

        def main() -> None:
            code = analyze.main(analyze_args, out=io.StringIO())
            if code != 0:
                raise RuntimeError(f"analyze.main exited with {code}")

        def walk() -> list[Any]:
            with gc_paused():
                return [read_layer_dir(directory) for directory in dirs]

        listings = walk()

        def replay() -> None:
            with gc_paused():
                analyze_layers(list(zip(layers, listings, strict=True)))

        self.steps += [
            (Measure(IN_PROCESS), lambda: in_process(main)),
            (Measure(WALK), lambda: in_process(walk)),
            (Measure(REPLAY), lambda: in_process(replay)),
        ]

    def round(self, keep: bool) -> None:
        for measure, step in self.steps:
            try:
                sample = step()
            except (OSError, RuntimeError) as error:
                measure.errors.append(str(error))
                continue
            finally:
                gc.collect()  # what one step left behind is not collected during the next
            if keep:
                measure.samples.append(sample)

    def measure(self, label: str) -> Measure:
        return next(measure for measure, _ in self.steps if measure.label == label)


def ratio(top: Measure, bottom: Measure, attribute: str) -> float | None:
    numerator, denominator = top.median(attribute), bottom.median(attribute)
    return numerator / denominator if numerator and denominator else None


def table(bench: Bench) -> str:
    rows = [("", "wall s, median (min-max)", "CPU s (user+sys)", "user", "sys")]
    for measure, _ in bench.steps:
        rows.append(
            (
                measure.label,
                measure.spread("wall"),
                measure.spread("cpu"),
                f"{measure.median('user') or 0:.3f}",
                f"{measure.median('system') or 0:.3f}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=5, metavar="N", help="rounds of every measure (default 5)")
    parser.add_argument("--dockerscope", type=Path, metavar="PATH", default=default_dockerscope())
    parser.add_argument("--no-in-process", action="store_true", help="leave out the measures in this process")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every sample to this file")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not os.environ.get("DOCKER_HOST"):
        parser.error("DOCKER_HOST must name the private daemon")

    layers, dirs = layer_dirs(args.image)
    print(f"image {args.image}: {len(dirs)} layer directories; {args.runs} rounds after a warm-up, alternating")
    bench = Bench(args.image, args.dockerscope, layers, dirs, not args.no_in_process)
    load_before = load()
    bench.round(keep=False)
    for _ in range(args.runs):
        bench.round(keep=True)
    load_after = load()
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after} on {os.cpu_count()} CPUs")
    print()
    print(table(bench))
    find, analyze = bench.measure(FIND), bench.measure(ANALYZE)
    ratios = {attribute: ratio(analyze, find, attribute) for attribute in ("wall", "cpu")}
    print()
    for attribute, value in ratios.items():
        text = "n/a" if value is None else f"{value:.2f}"
        verdict = "" if value is None else f"  (aim <= {TARGET_RATIO:g}: {'ok' if value <= TARGET_RATIO else 'missed'})"
        print(f"analyze / find, {attribute:<4} (medians): {text}{verdict}")
    errors = [f"{measure.label}: {error}" for measure, _ in bench.steps for error in measure.errors]
    for error in errors:
        print(f"ERROR {error}")
    if args.json:
        report = {
            "image": args.image,
            "dirs": dirs,
            "load_before": load_before,
            "load_after": load_after,
            "measures": [asdict(measure) for measure, _ in bench.steps],
            "ratios": ratios,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
