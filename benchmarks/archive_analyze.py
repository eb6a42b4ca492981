"""`dockerscope analyze FILE` on the big benchmark image's `docker save` file: time and peak RSS,
against `dive --source docker-archive` on the same file in the same run when a dive binary is given.

Usage: python benchmarks/archive_analyze.py [--archive FILE] [--runs N] [--dive PATH] [--work DIR]

Without `--archive`, the archive of `dockerscope-bench/big:1` (benchmarks/big_image.py: ~1 GB,
~60,000 files, seeded, so every build is the same image) is written straight to a file in the
`docker save` layout: no daemon is needed. `--save IMAGE` takes a `docker save` of IMAGE from the
daemon DOCKER_HOST names instead. Each tool runs as its own process, alternately, `--runs` times;
reported are each run's wall time, CPU time and peak RSS (GNU time at /usr/bin/time) and the
medians' ratios.
dive runs in CI mode (`CI=true`): it reads the archive, analyses it and prints its report.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import big_image  # the seeded generator of the big benchmark image


def write_big_archive(target: Path, busybox: Path) -> None:
    """The big benchmark image as a `docker save` file, built as big_image.py builds it."""
    layers = big_image._Planner(busybox.stat().st_size).layers()
    counts = big_image.count(layers)
    pool = random.Random(big_image.SEED).randbytes(big_image.POOL_BYTES)
    with tempfile.TemporaryDirectory(prefix="dockerscope-archive-bench-", dir=target.parent) as scratch:
        written = [
            big_image.write_layer(layer, Path(scratch, f"layer-{number}.tar"), pool, busybox)
            for number, layer in enumerate(layers)
        ]
        config = big_image._config(layers, written, counts, "amd64")
        with target.open("wb") as file:
            big_image._stream_archive(file, written, config)


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, all threads) and peak RSS (MB) of one run, the
    last two from GNU time (`wait4`'s maxrss would start at this script's, kept across `exec`).
    Its output is discarded; a failure stops all."""
    with tempfile.NamedTemporaryFile("r", prefix="dockerscope-time-") as report:
        timed = ["/usr/bin/time", "-f", "%U %S %M", "-o", report.name, *command]
        started = time.perf_counter()
        result = subprocess.run(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
        seconds = time.perf_counter() - started
        if result.returncode not in (0, 1):  # 1: a CI rule failed, the analysis ran
            raise SystemExit(
                f"{command[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')[-2000:]}"
            )
        user, system, rss_kb = report.read().split()[-3:]
    return seconds, float(user) + float(system), int(rss_kb) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--archive", type=Path, help="an existing archive to analyse")
    parser.add_argument("--save", metavar="IMAGE", help="docker save IMAGE from DOCKER_HOST's daemon and use that")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()), help="where a built archive goes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dive", metavar="PATH", help="a dive binary to compare with")
    parser.add_argument("--busybox", type=Path, default=Path(os.environ.get("BUSYBOX", "/bin/busybox")))
    args = parser.parse_args(argv)
    archive = args.archive
    made = None
    if archive is None:
        made = archive = args.work / f"dockerscope-archive-bench-{os.getpid()}.tar"
        started = time.perf_counter()
        if args.save:
            subprocess.run(["docker", "save", "-o", str(archive), args.save], check=True)
        else:
            write_big_archive(archive, args.busybox)
        print(f"wrote {archive} ({archive.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.1f} s")
    try:
        env = {**os.environ, "CI": "true"}
        tools = {"dockerscope": [sys.executable, "-m", "dockerscope", "analyze", str(archive), "--json", "--no-cache"]}
        if args.dive:
            tools["dive"] = [args.dive, "--source", "docker-archive", str(archive)]
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in tools}
        for run in range(args.runs):
            for name, command in tools.items():
                seconds, cpu, rss = measure(command, env)
                results[name].append((seconds, cpu, rss))
                print(f"run {run + 1} {name:<12} {seconds:7.2f} s  CPU {cpu:6.2f} s  peak RSS {rss:5.0f} MB")
        medians = {name: statistics.median(run[0] for run in runs) for name, runs in results.items()}
        cpus = {name: statistics.median(run[1] for run in runs) for name, runs in results.items()}
        peaks = {name: max(run[2] for run in runs) for name, runs in results.items()}
        for name in tools:
            print(f"{name:<12} median {medians[name]:7.2f} s  CPU {cpus[name]:6.2f} s  peak RSS {peaks[name]:5.0f} MB")
        if "dive" in medians:
            wall, cpu = medians["dockerscope"] / medians["dive"], cpus["dockerscope"] / cpus["dive"]
            print(f"dockerscope / dive: {wall:.2f}x wall time (target <= 0.3x), {cpu:.2f}x CPU time")
    finally:
        if made is not None:
            made.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
