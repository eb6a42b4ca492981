"""`dockerscope [--host URL] [--interval SECONDS]`, and `dockerscope analyze IMAGE …`."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

from dockerscope import __version__
from dockerscope.connect import add_daemon_arguments, connect

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
        epilog="`dockerscope analyze IMAGE --help`: layer contents, wasted space and CI rules without the UI.",
    )
    parser.add_argument("--version", action="version", version=f"dockerscope {__version__}")
    add_daemon_arguments(parser)
    parser.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_positive_seconds,
        default=DEFAULT_INTERVAL,
        help="seconds between full polls, a safety net behind the daemon's event stream "
        f"(default: {DEFAULT_INTERVAL:g}; every 3 s at most while the stream is down)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    collecting = gc.isenabled()
    # Loading makes some 50,000 objects the cycle collector tracks, nearly all of them living as long
    # as the process (modules, classes, functions): the 130 collections it would run meanwhile free
    # next to nothing. It is held off until they are loaded, then resumes with them frozen.
    gc.disable()
    try:
        if arguments[:1] == ["analyze"]:
            # No Textual here: the report prints to stdout, and a CI job should not load a UI.
            from dockerscope import analyze

            _resume_collection(collecting)
            return analyze.main(arguments[1:])
        args = build_parser().parse_args(arguments)
        service = connect(args.host, args.context)
        if service is None:
            return 2
        # The daemon works on the first lists while Textual loads (a third of a second here).
        service.prefetch()
        from dockerscope.ui import create_app

        app = create_app(service, interval=args.interval)
        _resume_collection(collecting)
        app.run()
        # The process ends now: spare the interpreter's teardown a hunt for reference cycles through
        # everything the app made (0.2 s of the time to quit, with a thousand rows).
        gc.freeze()
        return app.return_code or 0
    finally:
        if collecting:
            gc.enable()


def _resume_collection(collecting: bool) -> None:
    """Let the collector run again (if it ran before `main`), without ever walking what start-up
    loaded: that (Textual, docker-py: most of the heap) lives as long as the process, so it is
    frozen, and an idle app does not walk it again and again."""
    gc.freeze()
    if collecting:
        gc.enable()


if __name__ == "__main__":
    sys.exit(main())
