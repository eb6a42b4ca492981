"""Time `Enter` on a layer inside the running app, until its file tree is on the terminal.

dockerscope runs in a pseudo-terminal owned by this script (the harness of `live.py`), so a figure
is from the key to the frame that shows the result. On the image the big-image benchmark builds
(`--image`; it must sort first in the image list, where the cursor starts):
- cold: an empty disk cache, every layer read (the overlay2 fast path when readable);
- warm disk cache: a new app (nothing in memory), the layer listings on disk;
- reopen: `Esc`, then `Enter` again in the same app (the analysis kept in memory);
- cancel: a cold read, `Esc` 0.3 s after `Enter`: seconds until the explorer is back, then from a
  `j` until the layer table shows it.

Usage: DOCKER_HOST=... python benchmarks/app_contents.py [--image IMAGE] [--runs N]
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

DEFAULT_IMAGE = "dockerscope-bench/big:1"
TREE_SHOWN = "this layer's changes"  # the file pane's subtitle, drawn with the tree
EXPLORER_SHOWN = "1 Images"
TIMEOUT = 120.0


@contextmanager
def app(image: str, cache: str) -> Iterator[live.Terminal]:
    """dockerscope in a pty with its layer cache in `cache`, the image's layers on screen, the
    layer table focused."""
    os.environ["XDG_CACHE_HOME"] = cache
    terminal = live.Terminal(live.app_command(os.environ["DOCKER_HOST"]))
    try:
        loaded = terminal.watch(live._shows("mapping "))
        terminal.start()
        terminal.wait(loaded, "the first image's layers", TIMEOUT)
        if image not in terminal.text():
            raise SystemExit(f"app_contents.py: {image} is not the first image in the list")
        terminal.wait_quiet(1.0, 20)
        terminal.send(b"3")
        terminal.wait_quiet(0.3)
        yield terminal
        terminal.quit()
    finally:
        terminal.close()


def timed(terminal: live.Terminal, key: bytes, text: str, what: str) -> float:
    shown = terminal.watch(live._shows(text))
    started = time.monotonic()
    terminal.send(key)
    return terminal.wait(shown, what, TIMEOUT) - started


def open_twice(terminal: live.Terminal) -> tuple[float, float]:
    first = timed(terminal, b"\r", TREE_SHOWN, "the file tree")
    terminal.wait_quiet(0.5)
    timed(terminal, b"\x1b", EXPLORER_SHOWN, "the explorer")
    terminal.wait_quiet(0.5)
    again = timed(terminal, b"\r", TREE_SHOWN, "the file tree again")
    terminal.wait_quiet(0.3)
    return first, again


def cancel(terminal: live.Terminal) -> tuple[float, float]:
    opened = terminal.watch(live._shows(TREE_SHOWN))
    terminal.send(b"\r")
    time.sleep(0.3)
    if opened.done.is_set():
        raise SystemExit("app_contents.py: the layer opened within 0.3 s: nothing left to cancel")
    back = timed(terminal, b"\x1b", EXPLORER_SHOWN, "the explorer after Esc")
    terminal.wait_quiet(0.2)
    changed = terminal.watch_change(terminal.image_pane())
    terminal.send(b"1")
    terminal.wait(changed, "the image pane focused", TIMEOUT)
    terminal.wait_quiet(0.2)
    changed = terminal.watch_change(terminal.image_pane())
    started = time.monotonic()
    terminal.send(b"j")
    key = terminal.wait(changed, "the image pane after j", TIMEOUT) - started
    return back, key


def report(label: str, values: list[float]) -> None:
    print(f"{label:<28} median {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    if not os.environ.get("DOCKER_HOST"):
        sys.exit("app_contents.py: DOCKER_HOST must name the private daemon")
    cold, warm, reopen, cancels, keys = [], [], [], [], []
    for number in range(1, arguments.runs + 1):
        with tempfile.TemporaryDirectory(prefix="dockerscope-bench-cache-") as cache:
            with app(arguments.image, cache) as terminal:
                first, again = open_twice(terminal)
            with app(arguments.image, cache) as terminal:
                second, again_warm = open_twice(terminal)
        with (
            tempfile.TemporaryDirectory(prefix="dockerscope-bench-cache-") as cache,
            app(arguments.image, cache) as terminal,
        ):
            back, key = cancel(terminal)
        cold.append(first)
        warm.append(second)
        reopen += [again, again_warm]
        cancels.append(back)
        keys.append(key)
        print(
            f"run {number}: cold {first:.3f} s, warm disk cache {second:.3f} s, reopen {again:.3f} / "
            f"{again_warm:.3f} s, cancel {back:.3f} s, then j {key:.3f} s",
            flush=True,
        )
    report("cold (no cache)", cold)
    report("warm disk cache, new app", warm)
    report("reopen, same app", reopen)
    report("Esc during a cold read", cancels)
    report("then j in the image list", keys)


if __name__ == "__main__":
    main()
