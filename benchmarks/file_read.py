"""Reading one ~100 kB file of `dockerscope-bench/big:1` as of the top layer, as the file view does.

`python benchmarks/file_read.py [--runs 5]` talks to the daemon DOCKER_HOST names, which must hold
the big benchmark image (`python benchmarks/big_image.py` builds it). The layer contents are read
once first (warm, as when the user presses Enter in the layer-contents screen), then each run
takes, end to end: the contents (from memory), `locate_file` as of the top layer and `read_file`
(the first MiB, here the whole file):

- fast path: the file opened in its overlay2 layer directory;
- export: `GET /images/{id}/get` read up to that layer's file and no further;
- the raw export stream, read (nothing parsed) up to the byte where the export read stopped: what
  reading up to that layer costs at the least (and the wait for its first byte: a legacy daemon
  writes the whole image to disk before it sends anything).

The image's files are seeded random bytes, so "text" here only means its size; reading costs the
same. Prints medians and min-max of each and the peak traced memory of one export read.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import tracemalloc
from collections.abc import Callable, Collection, Mapping
from typing import Any, cast

import docker
from docker.utils import kwargs_from_env

from dockerscope.service import DockerService, ReadProgress, SourceChoice, resolve_connection
from dockerscope.service.file_reading import SinkOpener, locate_file, read_file
from dockerscope.service.layer_contents import EXPORT_CHUNK_SIZE
from dockerscope.service.source import ImageSource

IMAGE = "dockerscope-bench/big:1"
# A 100,548-byte file of the assets layer (layer 5 of 8).
PATH = "opt/app/static/js/06/asset-0216"


class Export:
    """The service with its reads forced onto the export, keeping how far each read the stream."""

    def __init__(self, service: DockerService) -> None:
        self.service = service
        self.streamed = 0
        self.first_report = 0.0

    async def read_layer_files(
        self, image_id: str, wanted: Mapping[int, Collection[str]], open_sink: SinkOpener, **kwargs: Any
    ) -> str:
        def progress(report: ReadProgress) -> None:
            if not self.streamed:
                self.first_report = time.perf_counter()
            self.streamed = max(self.streamed, report.bytes_done)

        return await self.service.read_layer_files(
            image_id, wanted, open_sink, choice=SourceChoice.EXPORT, on_progress=progress, **kwargs
        )


def raw_stream(limit: int) -> tuple[float, float]:
    """Seconds to the first byte of the image's export stream and to `limit` bytes, nothing
    parsed."""
    client = docker.APIClient(version="auto", **kwargs_from_env())
    try:
        started = time.perf_counter()
        stream = client.get_image(IMAGE, chunk_size=EXPORT_CHUNK_SIZE)
        taken = 0
        first = 0.0
        for chunk in stream:
            if not taken:
                first = time.perf_counter() - started
            taken += len(chunk)
            if taken >= limit:
                break
        return first, time.perf_counter() - started
    finally:
        client.close()


def summary(name: str, seconds: list[float]) -> str:
    return f"{name:<44} median {statistics.median(seconds):7.3f} s  (min {min(seconds):.3f}, max {max(seconds):.3f})"


async def main(runs: int) -> None:
    service = DockerService(resolve_connection())
    try:
        image_id = (await service.image_detail_of(IMAGE)).id
        contents = await service.image_contents(image_id)
        top = len(contents.files.layers) - 1
        print(f"{IMAGE}: contents from {', '.join(contents.sources)} in {contents.seconds:.2f} s (warm-up)")

        async def view(source: ImageSource) -> tuple[float, str, int, int]:
            started = time.perf_counter()
            files = (await service.image_contents(image_id)).files
            version = locate_file(files, top, PATH)
            shown = await read_file(source, image_id, version)
            return time.perf_counter() - started, shown.source, version.layer, len(shown.data)

        fast: list[float] = []
        exported: list[float] = []
        export_first: list[float] = []
        raw: list[float] = []
        raw_first: list[float] = []
        export = Export(service)
        for run in range(runs):
            seconds, where, layer, size = await view(service)
            fast.append(seconds)
            # Alternate which export goes first: the daemon's disk cache favours the second.
            for turn in (0, 1) if run % 2 else (1, 0):
                if turn:
                    export.streamed = 0
                    started = time.perf_counter()
                    seconds, export_where, _, _ = await view(cast(ImageSource, export))
                    exported.append(seconds)
                    export_first.append(export.first_report - started)
                else:
                    first, whole = await asyncio.to_thread(raw_stream, export.streamed or 1 << 60)
                    raw_first.append(first)
                    raw.append(whole)
        print(f"/{PATH}: {size} bytes, layer {layer + 1} of {top + 1}")
        print(summary(f"fast path ({where})", fast))
        print(summary(f"{export_where} (stopped at {export.streamed / 1e6:.0f} MB of the stream)", exported))
        print(summary("  of which: until its first chunk was read", export_first))
        print(summary("raw export stream up to that byte", raw))
        print(summary("  of which: until its first byte", raw_first))
        tracemalloc.start()
        await view(cast(ImageSource, export))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak traced memory of one export read: {peak / (1 << 20):.1f} MiB")
    finally:
        service.close()


def parse(argv: list[str] | None = None) -> Callable[[], None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args(argv)
    return lambda: asyncio.run(main(arguments.runs))


if __name__ == "__main__":
    parse()()
