"""`dockerscope analyze` over `ssh://` against the same analysis from the local unix socket's export.

Both read every layer from the image export stream (`GET /images/{id}/get`): locally with
`--source export`, over ssh because a remote daemon has no other way (its directories are on
another machine). The difference is the ssh leg: `ssh … docker system dial-stdio` on the far
side, the stream through sshd and ssh. Needs an sshd whose login leads to the same daemon as the
local socket (scripts/sshd-private.sh makes one on loopback and a PATH-first `ssh` that uses its
key; that is what DOCKERSCOPE_TEST_SSH_DIR and DOCKERSCOPE_TEST_SSH_HOST name):

    source scripts/dockerd-private.sh; start_private_dockerd; bash scripts/build-fixtures.sh
    source scripts/sshd-private.sh; start_private_sshd
    python benchmarks/remote_export.py [--image dockerscope-test/huge:1] [--runs 3]

Each round runs both, alternating which goes first, as separate processes with an empty layer
cache (`--no-cache`, and XDG_CACHE_HOME in a temporary directory). Wall time is from the spawn to
`wait4`; CPU time is user + system of the analyze process and its children (ssh) from `wait4`'s
rusage (sshd and the far side's docker CLI are not in it). Prints medians (min-max) and the ratio,
and checks both reports agree (layers, entries, wasted bytes). Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_IMAGE = "dockerscope-test/huge:1"
LOCAL = "local unix socket, --source export"
REMOTE = "ssh://, export stream"


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    report: dict[str, Any]


def analyze(image: str, host: str, extra: Sequence[str], env: dict[str, str]) -> Run:
    command = [sys.executable, "-m", "dockerscope", "analyze", image, "--host", host, "--json", "--no-cache", *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = process.stdout.read() if process.stdout else b""
    err = process.stderr.read() if process.stderr else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {err.decode(errors='replace')}")
    return Run(wall, usage.ru_utime + usage.ru_stime, json.loads(out))


def summary(report: dict[str, Any]) -> tuple[Any, ...]:
    """What both reports must agree on."""
    image = report["image"]
    layers = tuple((layer["diff_id"], layer["entries"], layer["wasted_bytes"]) for layer in report["layers"])
    return image["id"], image["size_bytes"], image["wasted_bytes"], layers


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--local", default=os.environ.get("DOCKER_HOST", ""), help="default: DOCKER_HOST")
    parser.add_argument(
        "--ssh", default=os.environ.get("DOCKERSCOPE_TEST_SSH_HOST", ""), help="default: DOCKERSCOPE_TEST_SSH_HOST"
    )
    parser.add_argument("--json", metavar="OUT", help="write the measurements here too")
    args = parser.parse_args()
    if not args.local.startswith("unix://") or not args.ssh.startswith("ssh://"):
        parser.error("give --local unix://… and --ssh ssh://… (or source scripts/sshd-private.sh and start it)")
    env = dict(os.environ)
    if ssh_dir := os.environ.get("DOCKERSCOPE_TEST_SSH_DIR"):
        env["PATH"] = f"{ssh_dir}/bin{os.pathsep}{env.get('PATH', '')}"
    runs: dict[str, list[Run]] = {LOCAL: [], REMOTE: []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dockerscope-bench-cache-") as cache:
        env["XDG_CACHE_HOME"] = cache
        ways = [(LOCAL, args.local, ["--source", "export"]), (REMOTE, args.ssh, [])]
        for round_number in range(args.runs):
            for name, host, extra in ways if round_number % 2 == 0 else ways[::-1]:
                runs[name].append(analyze(args.image, host, extra, env))
    load_after = os.getloadavg()
    reference = summary(runs[LOCAL][0].report)
    for name, done in runs.items():
        for run in done:
            if summary(run.report) != reference:
                raise SystemExit(f"{name}: the report differs from the local export's")
            if run.report["image"]["source"] != "export":
                raise SystemExit(f"{name}: read from {run.report['image']['source']}, not the export")
    image = runs[LOCAL][0].report["image"]
    entries = sum(layer["entries"] for layer in runs[LOCAL][0].report["layers"])
    print(f"{args.image}: {image['size_bytes'] / 1e6:.1f} MB, {len(reference[3])} layers, {entries} entries")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; median of {args.runs}")
    for name, done in runs.items():
        print(f"  {name:<36} wall {spread([r.wall for r in done])}   CPU {spread([r.cpu for r in done])}")
    wall_ratio = statistics.median(r.wall for r in runs[REMOTE]) / statistics.median(r.wall for r in runs[LOCAL])
    print(f"  ssh:// over local export: {wall_ratio:.2f}x wall")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {name: [{"wall": r.wall, "cpu": r.cpu} for r in done] for name, done in runs.items()}, out, indent=2
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
