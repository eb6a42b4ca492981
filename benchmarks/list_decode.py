"""How long the UI thread can wait for the GIL while a daemon's list answer is decoded.

The image list is decoded in a worker thread, but `json.loads` holds the GIL for the whole of it,
so the event loop cannot run meanwhile. For image lists shaped like the daemon's (`--counts`), this
prints the decode time and the longest time a probe thread (standing in for the event loop, waking
every millisecond) waited, for `json.loads` and for dockerscope's `json_answer.loads`. Best of
`--runs` for the time, worst of them for the wait.

Usage: python benchmarks/list_decode.py [--counts 50000 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from dockerscope.service import json_answer


def image_list(count: int) -> bytes:
    return json.dumps(
        [
            {
                "Containers": -1,
                "Created": 1_700_000_000 + index,
                "Id": f"sha256:{index:064x}",
                "Labels": {"maintainer": "someone", "org.opencontainers.image.version": f"1.2.{index}"},
                "ParentId": "",
                "RepoDigests": [f"repo/name{index}@sha256:{index:064x}"],
                "RepoTags": [f"repo/name{index}:latest"],
                "SharedSize": -1,
                "Size": 123_456_789 + index,
                "VirtualSize": 123_456_789 + index,
            }
            for index in range(count)
        ]
    ).encode()


def measure(decode: Callable[[bytes], Any], body: bytes) -> tuple[float, float]:
    """Seconds the decode took, and the longest wait of the probe thread meanwhile."""
    done = threading.Event()
    gaps: list[float] = []

    def probe() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.05)
    started = time.perf_counter()
    decode(body)
    elapsed = time.perf_counter() - started
    done.set()
    prober.join()
    return elapsed, max(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for count in args.counts:
        body = image_list(count)
        for name, decode in (("json.loads", json.loads), ("json_answer.loads", json_answer.loads)):
            results = [measure(decode, body) for _ in range(args.runs)]
            best = min(result[0] for result in results)
            worst_wait = max(result[1] for result in results)
            print(
                f"{count:>7,} images ({len(body) / 1e6:.0f} MB), {name:<17}: decode {best:.3f} s,"
                f" longest wait of the other thread {worst_wait * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
