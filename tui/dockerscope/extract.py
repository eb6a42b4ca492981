"""`dockerscope extract IMAGE PATH [--layer N] [-o DEST] [--replace]` (or `FILE|DIR [IMAGE] PATH`:
an image archive or OCI layout): write a file or directory of an image, as of a layer, to disk."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from dockerscope.analyze import choose_image
from dockerscope.connect import add_daemon_arguments, connect, open_path
from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ContentsUnavailable,
    DestinationExists,
    DockerServiceError,
    ExtractError,
    ExtractProgress,
    FileNotReadable,
    ImageSource,
    ObjectNotFound,
    ReadCancelled,
    default_destination,
    extract_files,
    is_archive_path,
    plan_extraction,
)
from dockerscope.units import human_bytes

ERROR_CHARS = 1000
# The progress line on a terminal is redrawn at most this often.
PROGRESS_SECONDS = 0.1


class BadInput(Exception):
    """What the command line asked for is not there or cannot be done: exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockerscope extract",
        usage="%(prog)s [-h] [--layer N] [-o DEST] [--replace] [--platform OS/ARCH[/VARIANT]]\n"
        "       [--host URL | --context NAME] IMAGE|FILE|DIR [IMAGE] PATH",
        description="Write a file or directory of an image, as a layer leaves it, to disk: modes kept, "
        "owners when run as root, symlinks as symlinks, nothing written outside the destination.",
    )
    parser.add_argument(
        "image",
        metavar="IMAGE|FILE|DIR",
        help="image id or reference, e.g. app:1; or a docker save / podman save tarball or OCI image layout",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="[IMAGE] PATH",
        help="the path in the image, e.g. /etc; after an archive, first the image to take it from when "
        "the archive holds several",
    )
    parser.add_argument(
        "--layer",
        metavar="N",
        type=int,
        help="the layer, counted from 1 at the bottom as the UI shows them (default: the top layer)",
    )
    parser.add_argument("-o", "--output", metavar="DEST", help="where to write it (default: ./ and the path's name)")
    parser.add_argument(
        "--replace", action="store_true", help="replace DEST when it exists (once the copy is complete)"
    )
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="the platform, when an archive holds several")
    add_daemon_arguments(parser)
    return parser


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Exit codes: 0 written, 1 the engine failed, 2 bad input (no such image or path, the
    destination exists, the path cannot be written here), 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    archive = is_archive_path(args.image)
    if len(args.paths) > (2 if archive else 1):
        parser.error("give IMAGE PATH, or FILE|DIR [IMAGE] PATH for an archive")
    if archive and (args.host is not None or args.context is not None):
        parser.error("give either --host/--context or an archive path, not both")
    if args.layer is not None and args.layer < 1:
        parser.error("--layer counts from 1")
    terminate = signal.getsignal(signal.SIGTERM)
    # `kill` and `timeout` end it as Ctrl+C does: the partial output is removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args, archive, sys.stdout if out is None else out)
    except (KeyboardInterrupt, ReadCancelled):
        _stderr_line("interrupted: nothing was written")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # the last resort: an engine's answer tripped something unforeseen
        _stderr_line(f"{type(error).__name__}: {error}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, terminate)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace, archive: bool, out: TextIO) -> int:
    source = open_path(args.image) if archive else connect(args.host, args.context)
    if source is None:
        return 2
    try:
        return asyncio.run(_extract(source, args, archive, out))
    except DestinationExists as error:
        _stderr_line(f"{error} (--replace replaces it)")
        return 2
    except (BadInput, FileNotReadable, ExtractError, ContentsUnavailable) as error:
        _stderr_line(str(error))
        return 2
    except ObjectNotFound as error:
        _stderr_line(f"{error.reason}")
        return 2
    except DockerServiceError as error:
        _stderr_line(f"{error.headline} ({error.host}): {error.reason}")
        return 1
    finally:
        source.close()


async def _extract(source: ImageSource, args: argparse.Namespace, archive: bool, out: TextIO) -> int:
    if not source.capabilities.file_contents:
        raise ContentsUnavailable(f"{source.host} cannot read the files inside layers")
    reference = (args.paths[0] if len(args.paths) == 2 else None) if archive else args.image
    detail = await choose_image(source, reference, args.platform)
    contents = await source.image_contents(detail.id)
    layers = contents.files.layers
    if not layers:
        raise BadInput("the image has no layers")
    if args.layer is not None and args.layer > len(layers):
        raise BadInput(f"--layer {args.layer}: the image has {len(layers)} layer{'s' if len(layers) != 1 else ''}")
    as_of = len(layers) - 1 if args.layer is None else args.layer - 1
    path = args.paths[-1]
    plan = plan_extraction(contents.files, as_of, path)
    destination = args.output or default_destination(plan.asked)
    progress = _Progress() if sys.stderr.isatty() else None
    cancel = threading.Event()
    try:
        result = await extract_files(
            source,
            detail.id,
            plan,
            destination,
            replace=args.replace,
            cancel=cancel,
            on_progress=None if progress is None else progress.show,
        )
    finally:
        cancel.set()
        if progress is not None:
            progress.clear()
    what = f"/{plan.image_path}" + (f" (from /{plan.asked})" if plan.asked != plan.image_path else "")
    summary = (
        f"Extracted {what} as of layer {as_of + 1} to {result.destination}: "
        f"{result.files} file{'s' if result.files != 1 else ''}, {human_bytes(result.bytes, spaced=True)}"
    )
    if result.skipped:
        summary += f", {result.skipped} skipped (devices, fifos, sockets, paths under a symlink)"
    out.write(sanitize(summary, max_chars=ERROR_CHARS) + "\n")
    if result.missing:
        names = ", ".join(result.missing[:5]) + (" …" if len(result.missing) > 5 else "")
        _stderr_line(f"{len(result.missing)} file(s) listed in the layers were not found when read: {names}")
    return 0


class _Progress:
    """One line on stderr (a terminal), redrawn now and then from the reading thread."""

    def __init__(self) -> None:
        self._last = 0.0
        self._lock = threading.Lock()

    def show(self, progress: ExtractProgress) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < PROGRESS_SECONDS:
                return
            self._last = now
            sys.stderr.write(
                f"\r\x1b[Kextracting: {progress.files_done} of {progress.files_total} files, "
                f"{human_bytes(progress.bytes_done, spaced=True)} of {human_bytes(progress.bytes_total, spaced=True)}"
            )
            sys.stderr.flush()

    def clear(self) -> None:
        with self._lock:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _stderr_line(message: str) -> None:
    print(sanitize(f"dockerscope extract: {message}", max_chars=ERROR_CHARS), file=sys.stderr)
