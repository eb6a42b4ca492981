"""How fast a cancel ends an export read, before and after the export's first byte.

A legacy (graphdriver) daemon writes the whole image to disk before it sends the first byte of
`GET /images/{id}/get`; a cancel in that wait must still end the reading thread at once. For the
image the big-image benchmark builds (`--image`), this prints, median of `--runs`:
- the time from the request to the export's first byte (read with docker-py, nothing parsed);
- cancels at `--early` seconds (before the first byte) and at the first byte plus `--late`
  seconds: seconds from the cancel until `image_contents` raised ReadCancelled and until no
  dockerscope reading thread is left.

Usage: DOCKER_HOST=... python benchmarks/export_cancel.py [--image IMAGE] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import threading
import time

import docker

from dockerscope.service import Connection, DockerService
from dockerscope.service.layer_contents import SourceChoice
from dockerscope.service.layer_files import ReadCancelled

DEFAULT_IMAGE = "dockerscope-bench/big:1"


def first_byte_seconds(api: docker.APIClient, image: str) -> float:
    started = time.perf_counter()
    stream = api.get_image(image, chunk_size=1)
    next(iter(stream))
    elapsed = time.perf_counter() - started
    stream.close()
    return elapsed


READER_THREADS = ("dockerscope-layers", "dockerscope-export")


def _readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(READER_THREADS)]


async def cancel_after(service: DockerService, image: str, delay: float) -> tuple[float, float]:
    """Seconds from the cancel to ReadCancelled, and to the last reading thread's end."""
    cancel = threading.Event()
    read = asyncio.ensure_future(
        service.image_contents(image, choice=SourceChoice.EXPORT, use_cache=False, cancel=cancel)
    )
    await asyncio.sleep(delay)
    if read.done():
        raise SystemExit(f"the read ended before the cancel at {delay:.2f} s: use a bigger image")
    cancel.set()
    started = time.perf_counter()
    with contextlib.suppress(ReadCancelled):
        await read
    raised = time.perf_counter() - started
    while _readers() and time.perf_counter() - started < 300:
        await asyncio.sleep(0.01)
    return raised, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--early", type=float, default=0.3, help="seconds after the request")
    parser.add_argument("--late", type=float, default=0.5, help="seconds after the first byte")
    args = parser.parse_args()
    host = os.environ["DOCKER_HOST"]
    api = docker.APIClient(base_url=host, version="auto", timeout=600)
    image_id = api.inspect_image(args.image)["Id"]
    first = [first_byte_seconds(api, image_id) for _ in range(args.runs)]
    print(f"first byte of the export: median {statistics.median(first):.2f} s ({', '.join(f'{s:.2f}' for s in first)})")
    service = DockerService(Connection(host, "benchmark", {"base_url": host}))
    try:
        late = statistics.median(first) + args.late
        for label, delay in (("before the first byte", args.early), ("mid-stream", late)):
            results = [await cancel_after(service, image_id, delay) for _ in range(args.runs)]
            raised = statistics.median(result[0] for result in results)
            ended = statistics.median(result[1] for result in results)
            print(
                f"cancel {label} (at {delay:.2f} s): ReadCancelled after {raised:.3f} s,"
                f" threads ended after {ended:.3f} s (median of {args.runs})"
            )
    finally:
        service.close()


if __name__ == "__main__":
    asyncio.run(main())
