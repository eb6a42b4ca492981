"""Time the comparison inside the running app: `3` on the compare screen until the files pane
shows the two final filesystems' differences.

dockerscope runs in a pseudo-terminal owned by this script (the harness of `live.py`), so a figure
is from the key to the frame that shows the result. The two images (`--left`, `--right`; by
default the big-image benchmark's image and one built on it) are found with the image filter,
the first marked with `Space`, the second compared with `=`. Per run:
- cold: an empty disk cache, both images' layers read;
- warm disk cache: a new app (nothing in memory), the layer listings on disk;
- reopen: `Esc`, then `=` and `3` again in the same app (the listings kept in memory).

Usage: DOCKER_HOST=... python benchmarks/app_compare.py [--left IMAGE] [--right IMAGE] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import live

LEFT = "dockerscope-bench/big:1"
RIGHT = "dockerscope-bench/big-plus:1"
FILES_SHOWN = "Files: "  # the files pane's summary, drawn with the tree
TIMEOUT = 180.0


def select(terminal: live.Terminal, image: str) -> None:
    """Filter the image list down to `image` and go back to the list, its cursor on it."""
    shown = terminal.watch(live._shows("1 shown"))
    terminal.send(b"/")
    terminal.wait_quiet(0.3)
    for character in image:  # one key at a time, as typed
        terminal.send(character.encode())
        time.sleep(0.02)
    terminal.wait(shown, f"the list filtered to {image}", TIMEOUT)
    terminal.send(b"\r")
    terminal.wait_quiet(0.3)


@contextmanager
def app(left: str, right: str, cache: str) -> Iterator[live.Terminal]:
    """dockerscope in a pty with its layer cache in `cache`, `left` marked, `right` highlighted."""
    os.environ["XDG_CACHE_HOME"] = cache
    terminal = live.Terminal(live.app_command(os.environ["DOCKER_HOST"]))
    try:
        loaded = terminal.watch(live._shows("mapping "))
        terminal.start()
        terminal.wait(loaded, "the first image's layers", TIMEOUT)
        terminal.wait_quiet(1.0, 20)
        select(terminal, left)
        marked = terminal.watch(live._shows("marked: "))
        terminal.send(b" ")
        terminal.wait(marked, f"{left} marked", TIMEOUT)
        terminal.send(b"\x1b")  # the filter field, cleared
        terminal.wait_quiet(0.3)
        select(terminal, right)
        yield terminal
        terminal.quit()
    finally:
        terminal.close()


def compare(terminal: live.Terminal) -> float:
    """`=`, until the layers are compared; then the timed `3`, until the files pane is drawn."""
    layers = terminal.watch(live._shows("size delta B - A"))
    terminal.send(b"=")
    terminal.wait(layers, "the comparison's layers", TIMEOUT)
    terminal.wait_quiet(0.5)
    shown = terminal.watch(live._shows(FILES_SHOWN))
    started = time.monotonic()
    terminal.send(b"3")
    seconds = terminal.wait(shown, "the files pane", TIMEOUT) - started
    terminal.wait_quiet(0.3)
    back = terminal.watch(live._shows("1 Images"))
    terminal.send(b"\x1b")
    terminal.wait(back, "the explorer", TIMEOUT)
    terminal.wait_quiet(0.3)
    return seconds


def report(label: str, values: list[float]) -> None:
    print(f"{label:<28} median {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--left", default=LEFT)
    parser.add_argument("--right", default=RIGHT)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    if not os.environ.get("DOCKER_HOST"):
        sys.exit("app_compare.py: DOCKER_HOST must name the private daemon")
    cold, warm, reopen = [], [], []
    for number in range(1, arguments.runs + 1):
        with tempfile.TemporaryDirectory(prefix="dockerscope-bench-cache-") as cache:
            with app(arguments.left, arguments.right, cache) as terminal:
                first, again = compare(terminal), compare(terminal)
            with app(arguments.left, arguments.right, cache) as terminal:
                second = compare(terminal)
        cold.append(first)
        warm.append(second)
        reopen.append(again)
        print(f"run {number}: cold {first:.3f} s, warm disk cache {second:.3f} s, reopen {again:.3f} s", flush=True)
    report("cold (no cache)", cold)
    report("warm disk cache, new app", warm)
    report("reopen, same app", reopen)


if __name__ == "__main__":
    main()
