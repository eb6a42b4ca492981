"""`dockerscope [--host URL] [--interval SECONDS]`, `dockerscope FILE|DIR` (an image archive or OCI
layout), `dockerscope --demo`, and `dockerscope analyze IMAGE …`."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockerscope import __version__
from dockerscope.connect import add_daemon_arguments, connect, open_path
from dockerscope.sanitize import sanitize

if TYPE_CHECKING:
    from dockerscope.service import ImageSource
    from dockerscope.service.recorded_source import RecordedSource

# With the event stream up, the full poll is only a safety net: rare, so idle costs next to nothing.
DEFAULT_INTERVAL = 60.0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.1 and 3600 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockerscope",
        description="Explore Docker images, their inspect document and their layers by keyboard.",
        epilog="`dockerscope analyze IMAGE --help`: layer contents, wasted space and CI rules without the UI; "
        "`dockerscope diff A B --help`: two images' layers and configs compared; "
        "`dockerscope extract IMAGE PATH --help`: a file or directory of an image written to disk.",
    )
    parser.add_argument("--version", action="version", version=f"dockerscope {__version__}")
    parser.add_argument(
        "path",
        nargs="?",
        metavar="FILE|DIR",
        help="explore a docker save / podman save tarball (plain or gzip) or an OCI image layout "
        "(directory or tar) instead of a daemon",
    )
    add_daemon_arguments(parser)
    parser.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_positive_seconds,
        default=DEFAULT_INTERVAL,
        help="seconds between full polls, a safety net behind the daemon's event stream "
        f"(default: {DEFAULT_INTERVAL:g}; every 3 s at most while the stream is down)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open a recorded snapshot of a daemon shipped with dockerscope: no Docker needed",
    )
    return parser


def _demo() -> RecordedSource:
    """The packaged demo, loaded only when asked for."""
    from dockerscope.service.demo import demo_source

    return demo_source()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    collecting = gc.isenabled()
    # Loading makes some 50,000 objects the cycle collector tracks, nearly all of them living as long
    # as the process (modules, classes, functions): the 130 collections it would run meanwhile free
    # next to nothing. It is held off until they are loaded, then resumes with them frozen.
    gc.disable()
    try:
        if arguments[:1] == ["diff"]:
            from dockerscope import diff

            _resume_collection(collecting)
            return diff.main(arguments[1:])
        if arguments[:1] == ["extract"]:
            from dockerscope import extract

            _resume_collection(collecting)
            return extract.main(arguments[1:])
        if arguments[:1] == ["analyze"]:
            # No Textual here: the report prints to stdout, and a CI job should not load a UI.
            from dockerscope import analyze

            _resume_collection(collecting)
            return analyze.main(arguments[1:])
        parser = build_parser()
        args = parser.parse_args(arguments)
        if args.demo and args.path is not None:
            parser.error("give either --demo or an archive path, not both")
        if args.demo:
            from dockerscope.service import DockerServiceError
            from dockerscope.ui import create_app

            try:
                app = create_app(_demo(), interval=args.interval)
            except DockerServiceError as error:
                print(sanitize(f"dockerscope: {error.reason}", max_chars=1000), file=sys.stderr)
                return 2
        else:
            source: ImageSource | None
            if args.path is not None:
                source = _archive(parser, args)
            else:
                source = service = connect(args.host, args.context)
                if service is not None:
                    # The daemon works on the first lists while Textual loads (a third of a second here).
                    service.prefetch()
            if source is None:
                return 2
            from dockerscope.ui import create_app

            app = create_app(source, interval=args.interval, demo=_demo)
        _resume_collection(collecting)
        app.run()
        # The process ends now: spare the interpreter's teardown a hunt for reference cycles through
        # everything the app made (0.2 s of the time to quit, with a thousand rows).
        gc.freeze()
        return app.return_code or 0
    finally:
        if collecting:
            gc.enable()


def _archive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ImageSource | None:
    """The source for the archive or layout the command line names; None after saying why not."""
    if args.host is not None or args.context is not None:
        parser.error("give either --host/--context or an archive path, not both")
    if not os.path.exists(args.path):
        print(f"dockerscope: {sanitize(args.path, 300)}: no such file or directory", file=sys.stderr)
        return None
    return open_path(args.path)


def _resume_collection(collecting: bool) -> None:
    """Let the collector run again (if it ran before `main`), without ever walking what start-up
    loaded: that (Textual, docker-py: most of the heap) lives as long as the process, so it is
    frozen, and an idle app does not walk it again and again."""
    gc.freeze()
    if collecting:
        gc.enable()


if __name__ == "__main__":
    sys.exit(main())
