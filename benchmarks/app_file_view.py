"""Time `Enter` on a file in the layer contents, until its contents are on the terminal.

dockerscope runs in a pseudo-terminal owned by this script (the harness of `live.py`). It moves
to `--image` in the image list, opens the contents of its last layer but one (the benchmark
images end with a metadata-only step), shows the whole filesystem and moves the tree's cursor
onto the file by keys worked out from the same listing (read once beforehand, so the app finds
it in the disk cache: warm). Then, `--runs` times: `Enter` on the file until the frame that shows
its first line and the header, and `Esc` back. The first open of the run is reported apart
(Pygments' first lexer lookup, the view's first use). Without `--path`, the regular file closest
to 100 kB in the image's final filesystem is taken.

Usage: DOCKER_HOST=... python benchmarks/app_file_view.py [--image IMAGE] [--path PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time

import live

from dockerscope.service import Connection, DockerService, EntryType, FileStatus, ImageContents, filesystem_at
from dockerscope.ui.file_tree import EXPAND_ALL_LIMIT
from dockerscope.ui.file_view import SortOrder, build_view

DEFAULT_IMAGE = "dockerscope-bench/big:1"
TARGET_SIZE = 100_000
TIMEOUT = 120.0
READ_TIME = re.compile(r"read from (.+?) in (\d+\.\d+) s")


def find_file(image: str, path: str | None, size: int) -> tuple[str, int, list[bytes]]:
    """The file (`path`, or the regular file closest to `size` bytes in the image's final
    filesystem), its size and the keys that move the file tree's cursor onto it in the whole
    filesystem as of the top layer: `k` up to the first row, then down over the siblings before
    each directory on the way, Space to open it and `j` into it."""

    async def contents() -> ImageContents:
        host = os.environ["DOCKER_HOST"]
        service = DockerService(Connection(host=host, source="benchmark", client_kwargs={"base_url": host}))
        try:
            return await service.image_contents(image)
        finally:
            service.close()

    files = asyncio.run(contents()).files
    top = len(files.layers) - 1
    changes = filesystem_at(files, top)
    regular = {
        change.path: change.size
        for change in changes
        if change.status is not FileStatus.REMOVED and change.entry is not None and change.entry.type is EntryType.FILE
    }
    if path is None:
        path = min(regular, key=lambda name: abs(regular[name] - size))
    # The directories the layer's own changes view opened (all of them, for a small layer) stay
    # open in the whole filesystem.
    layer_view = build_view(files.layers[top].changes, top)
    small = layer_view.matches <= EXPAND_ALL_LIMIT and len(layer_view.children) <= EXPAND_ALL_LIMIT
    opened = set(layer_view.children) - {""} if small else set()
    view = build_view(changes, top)

    def rows(node: str) -> int:
        """Rows a node takes in the tree, its open subdirectories' rows included."""
        if node not in opened:
            return 1
        return 1 + sum(rows(child.path) for child in view.children_of(node, SortOrder.NAME))

    keys = [b"k" * 5]
    parent = ""
    parts = path.split("/")
    for depth, part in enumerate(parts):
        current = f"{parent}/{part}" if parent else part
        siblings = [node.path for node in view.children_of(parent, SortOrder.NAME)]
        keys.append(b"j" * sum(rows(sibling) for sibling in siblings[: siblings.index(current)]))
        if depth < len(parts) - 1:
            # One at a time: the tree fills a directory's rows after it opens.
            keys += [b"j"] if current in opened else [b" ", b"j"]
        parent = current
    return path, regular[path], keys


def shows(*texts: str) -> live.Predicate:
    def check(screen: object) -> bool:
        shown = "\n".join(screen.display)  # type: ignore[attr-defined]
        return all(text in shown for text in texts)

    return check


def keys(terminal: live.Terminal, *steps: bytes, quiet: float = 0.5) -> None:
    """Send each step once the app has gone quiet after the one before (and a moment more: a
    step that only changes state, not the screen, is quiet at once)."""
    for step in steps:
        terminal.send(step)
        terminal.wait_quiet(quiet, 60)
        time.sleep(0.3)


def open_contents(terminal: live.Terminal, image: str, tree_keys: list[bytes]) -> None:
    """Move the image list's cursor onto `image`, open the contents of its last layer but one (the
    top one of the benchmark images is CMD or ENV, metadata only), the whole filesystem, and move
    the cursor onto the file."""
    rows = [line for line in terminal.text().splitlines() if "Tags" in line or "sha256:" not in line]
    names = [
        line.split("│")[1].split()[0] if line.count("│") > 1 and line.split("│")[1].split() else "" for line in rows
    ]
    try:
        row = names.index(image) - names.index("Tags") - 1
    except ValueError:
        raise SystemExit(f"app_file_view.py: {image} is not on screen:\n{terminal.text()}") from None
    keys(terminal, b"1")
    details = terminal.watch(shows(f"▼ {image}", "unique "))
    terminal.send(b"j" * row)
    terminal.wait(details, "the image's details", TIMEOUT)
    keys(terminal, b"3", b"j" * 60 + b"k", quiet=1.0)
    tree = terminal.watch(shows("this layer's changes"))
    terminal.send(b"\r")
    terminal.wait(tree, "the layer contents", TIMEOUT)
    terminal.wait_quiet(0.5, 20)
    whole = terminal.watch(shows("filesystem as of this layer"))
    terminal.send(b"a")
    terminal.wait(whole, "the whole filesystem", TIMEOUT)
    keys(terminal, *tree_keys)


def open_file(terminal: live.Terminal, path: str, first_line: str) -> tuple[float, str, float]:
    """Enter on the file: seconds to the frame with its first line and the header; where the
    bytes came from and the read time the header gives."""
    shown = terminal.watch(shows(first_line, f"/{path} · as of layer", "read from "))
    started = time.monotonic()
    terminal.send(b"\r")
    seconds = terminal.wait(shown, "the file view", TIMEOUT) - started
    match = READ_TIME.search(terminal.text())
    terminal.wait_quiet(0.5)
    back = terminal.watch(shows("Layer contents of "))
    terminal.send(b"\x1b")
    terminal.wait(back, "the layer contents after Esc", TIMEOUT)
    terminal.wait_quiet(0.5)
    if match is None:
        raise SystemExit(f"app_file_view.py: no read time on screen:\n{terminal.text()}")
    return seconds, match.group(1), float(match.group(2))


def report(label: str, values: list[float]) -> None:
    print(f"{label:<44} median {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--path", help="the file (default: the one closest to 100 kB)")
    parser.add_argument("--first-line", help="text of the view's first line to wait for (default: the hex dump's)")
    parser.add_argument("--runs", type=int, default=10)
    arguments = parser.parse_args()
    if not os.environ.get("DOCKER_HOST"):
        sys.exit("app_file_view.py: DOCKER_HOST must name the private daemon")
    path, size, tree_keys = find_file(arguments.image, arguments.path, TARGET_SIZE)
    print(f"{arguments.image}: /{path}, {size:,} bytes")
    first_line = arguments.first_line or "00000000  "
    with tempfile.TemporaryDirectory(prefix="dockerscope-bench-cache-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        terminal = live.Terminal(live.app_command(os.environ["DOCKER_HOST"]))
        try:
            loaded = terminal.watch(live._shows("mapping "))
            terminal.start()
            terminal.wait(loaded, "the first image's layers", TIMEOUT)
            terminal.wait_quiet(1.0, 20)
            open_contents(terminal, arguments.image, tree_keys)
            first, source, read = open_file(terminal, path, first_line)
            times, reads = [], []
            for _ in range(arguments.runs):
                seconds, source, read = open_file(terminal, path, first_line)
                times.append(seconds)
                reads.append(read)
            terminal.quit()
        finally:
            terminal.close()
    print(f"first Enter in the app: {first:.3f} s")
    report(f"Enter -> contents on screen ({source})", times)
    report("  of which the read (the header's figure)", reads)


if __name__ == "__main__":
    main()
