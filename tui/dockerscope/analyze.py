"""`dockerscope analyze IMAGE` (or `FILE|DIR [IMAGE]`: an image archive or OCI layout): the layer
table, efficiency and top wasted paths, without the UI."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from dockerscope.connect import add_daemon_arguments, connect, open_path
from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ContentsUnavailable,
    DockerServiceError,
    ImageContents,
    ImageDetail,
    ImageFiles,
    ImageSource,
    ImageSummary,
    ReadCancelled,
    RuleStatus,
    SourceChoice,
    Thresholds,
    evaluate,
    is_archive_path,
    parse_bytes,
    parse_ratio,
    short_id,
)
from dockerscope.units import human_bytes

TOP_WASTED = 20
# An error line is cut here: a daemon's error text can be any length.
ERROR_CHARS = 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockerscope analyze",
        description="Read every layer of an image and report what each adds, modifies and removes, the "
        "space later layers waste, and the image's efficiency.",
    )
    parser.add_argument(
        "image",
        metavar="IMAGE|FILE|DIR",
        help="image id or reference, e.g. app:1; or a docker save / podman save tarball or OCI image layout",
    )
    parser.add_argument(
        "archive_image",
        nargs="?",
        metavar="IMAGE",
        help="the image of the archive to analyse (tag or id), when it holds several",
    )
    parser.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="the platform to analyse, e.g. linux/arm64, when an archive's index holds several",
    )
    add_daemon_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--source",
        choices=[choice.value for choice in SourceChoice],
        default=SourceChoice.AUTO.value,
        help="where layers are read from: overlay2 directories when readable (auto), only those "
        "(overlay), or the image export stream (export)",
    )
    parser.add_argument("--no-cache", action="store_true", help="read every layer again, ignoring the disk cache")
    parser.add_argument("--ci", action="store_true", help="check the rules below; exit 1 when one fails")
    # The thresholds are parsed here, once; `disabled` parses to None, so the defaults are dive's
    # parsed thresholds rather than None.
    dive = Thresholds()
    parser.add_argument(
        "--lowest-efficiency",
        metavar="RATIO",
        type=_parsed(parse_ratio),
        default=dive.lowest_efficiency,
        help=f"fail below this efficiency (default {dive.lowest_efficiency}, or 'disabled')",
    )
    parser.add_argument(
        "--highest-wasted-bytes",
        metavar="SIZE",
        type=_parsed(parse_bytes),
        default=dive.highest_wasted_bytes,
        help="fail above this many wasted bytes, e.g. 20MB (default disabled)",
    )
    parser.add_argument(
        "--highest-user-wasted-percent",
        metavar="RATIO",
        type=_parsed(lambda text: parse_ratio(text, most=None)),
        default=dive.highest_user_wasted_percent,
        help="fail when wasted bytes over the bytes added above the first layer exceed this ratio "
        f"(default {dive.highest_user_wasted_percent}, or 'disabled')",
    )
    return parser


def _parsed(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type that parses the text with `parse`; its ValueError becomes argparse's usage error."""

    def parsed(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parsed


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Exit codes: 0 done (rules pass), 1 a rule failed, 2 any failure (one line on stderr, never a
    traceback), 130 interrupted, 141 the reader of stdout went away."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.archive_image is not None and not is_archive_path(args.image):
        parser.error(f"{args.image!r} is not a file or directory: a second IMAGE only goes with an archive")
    if args.host is not None and is_archive_path(args.image):
        parser.error("give either --host or an archive path, not both")
    try:
        return _run(args, out)
    except (KeyboardInterrupt, ReadCancelled):
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more, and keep the interpreter from
        # complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # the last resort: a daemon's answer tripped something unforeseen
        _stderr_line(f"{sanitize(args.image, 200)}: {type(error).__name__}: {error}")
        return 2


def _run(args: argparse.Namespace, out: TextIO) -> int:
    service = open_path(args.image) if is_archive_path(args.image) else connect(args.host, args.context)
    if service is None:
        return 2
    try:
        return asyncio.run(_analyze(service, args, out))
    except DockerServiceError as error:
        _stderr_line(f"{sanitize(args.image, 200)}: {error.headline} ({error.host}): {error.reason}")
        return 2
    except ContentsUnavailable as error:
        _stderr_line(f"{sanitize(args.image, 200)}: {error}")
        return 2
    finally:
        service.close()


def _stderr_line(message: str) -> None:
    """One line on stderr; `message` may hold daemon text, so it is cut and sanitised."""
    print(sanitize(f"dockerscope: {message}", max_chars=ERROR_CHARS), file=sys.stderr)


def _line(out: TextIO, text: str = "") -> None:
    """Every line of the text report goes out through here: sanitised, so no daemon or image
    string can drive the terminal whatever a caller forgot."""
    out.write(sanitize(text) + "\n")


async def _analyze(source: ImageSource, args: argparse.Namespace, out: TextIO) -> int:
    """Analyse and report; the exit code. The report is written here rather than returned:
    asyncio.run's signal handling can end up formatting the main task's result with repr(), and
    a big image's analysis takes seconds to format."""
    choice = SourceChoice(args.source)
    if not source.capabilities.layer_contents:
        raise ContentsUnavailable(f"{source.host} cannot list what is inside layers")
    if choice is SourceChoice.OVERLAY and not source.capabilities.fast_path:
        raise ContentsUnavailable(f"--source overlay reads a daemon's own directories; {source.host} is not local")
    reference = args.archive_image if is_archive_path(args.image) else args.image
    detail = await choose_image(source, reference, args.platform)
    contents = await source.image_contents(detail.id, choice=choice, use_cache=not args.no_cache)
    if (cache_problem := source.take_cache_problem()) is not None:
        _stderr_line(cache_problem)
    thresholds = Thresholds(
        lowest_efficiency=args.lowest_efficiency,
        highest_wasted_bytes=args.highest_wasted_bytes,
        highest_user_wasted_percent=args.highest_user_wasted_percent,
    )
    rules = evaluate(contents.files, thresholds) if args.ci else []
    if args.json:
        # ensure_ascii (the default) writes every non-ASCII and control character as an escape.
        out.write(json.dumps(report(detail, contents, rules), indent=2) + "\n")
    else:
        write_text(out, detail, contents, rules)
    return 1 if any(rule.status is RuleStatus.FAIL for rule in rules) else 0


async def choose_image(source: ImageSource, reference: str | None, platform: str | None) -> ImageDetail:
    """The image a reference (a tag or an id; None: the only image there is) and a platform
    (`os/arch[/variant]`) name. With neither more than one image, the error lists them."""
    if reference is not None and platform is None:
        return await source.image_detail_of(reference)
    snapshot = await source.snapshot()
    details = [await source.image_detail(image) for image in snapshot.images if _named(image, reference)]
    if platform is not None:
        details = [detail for detail in details if _platform_matches(_platform(detail), platform)]
    if len(details) == 1:
        return details[0]
    wanted = " ".join(part for part in (reference, platform) if part)
    if not details:
        raise ContentsUnavailable(f"no image matches {wanted or 'anything'}")
    names = "; ".join(_described(detail) for detail in details[:20])
    more = f" and {len(details) - 20} more" if len(details) > 20 else ""
    found = f"{wanted} matches {len(details)} images" if wanted else f"it holds {len(details)} images"
    raise ContentsUnavailable(f"{found}; name one (tag, id or --platform): {names}{more}")


def _named(image: ImageSummary, reference: str | None) -> bool:
    """Whether a listed image goes by `reference`: a tag (the rows of a multi-platform archive
    carry their platform after it: `app:1 (linux/arm64)`) or an id prefix."""
    if reference is None:
        return True
    if any(tag == reference or tag.startswith(f"{reference} (") for tag in image.tags):
        return True
    wanted = reference.removeprefix("sha256:")
    return len(wanted) >= 4 and image.id.removeprefix("sha256:").startswith(wanted)


def _platform(detail: ImageDetail) -> str:
    """An image's os/architecture[/variant], from an archive's `Platform` or a daemon's inspect."""
    inspect = detail.inspect
    if isinstance(inspect.get("Platform"), str):
        return str(inspect["Platform"])
    parts = (inspect.get(key) for key in ("Os", "Architecture", "Variant"))
    return "/".join(part for part in parts if isinstance(part, str) and part)


def _platform_matches(platform: str, wanted: str) -> bool:
    """`linux/arm64` picks `linux/arm64/v8` too; `linux/arm/v7` only that variant."""
    wanted_parts = wanted.strip("/").split("/")
    return platform.split("/")[: len(wanted_parts)] == wanted_parts


def _described(detail: ImageDetail) -> str:
    name = ", ".join(sanitize(tag, 100) for tag in _tags(detail)) or "<none>"
    platform = _platform(detail)
    return f"{name}{f' {sanitize(platform, 60)}' if platform else ''} {short_id(detail.id)}"


def layer_instructions(detail: ImageDetail, layer_count: int) -> list[str]:
    """The instruction that made each layer; empty where the history mapping could not place it."""
    made = detail.layers.instructions()
    return [sanitize(made.get(index, "")) for index in range(layer_count)]


def report(detail: ImageDetail, contents: ImageContents, rules: Sequence[Any] = ()) -> dict[str, Any]:
    """The JSON report. Every string from the daemon or the image (ids, tags, paths, instructions)
    is sanitised: no control character or lone surrogate reaches a consumer."""
    files = contents.files
    instructions = layer_instructions(detail, len(files.layers))
    document: dict[str, Any] = {
        "image": {
            "id": sanitize(detail.id),
            "tags": [sanitize(tag) for tag in _tags(detail)],
            "source": sanitize("+".join(contents.sources)),
            "seconds": round(contents.seconds, 3),
            "size_bytes": files.total_bytes,
            "kept_bytes": files.kept_bytes,
            "efficiency": files.efficiency,
            "wasted_bytes": files.wasted_bytes,
            "user_size_bytes": files.user_bytes,
            "user_wasted_ratio": files.user_wasted_ratio if files.user_bytes or not files.wasted_bytes else None,
            "top_wasted": [
                {
                    "path": sanitize("/" + item.path),
                    "copies": item.copies,
                    "wasted_bytes": item.wasted,
                    "layers": list(item.layers),
                    "removed": not item.kept,
                }
                for item in files.wasted_paths[:TOP_WASTED]
            ],
        },
        "layers": [
            {
                "index": layer.index,
                "diff_id": sanitize(layer.diff_id),
                "instruction": instruction,
                "size_bytes": layer.size,
                "entries": layer.entry_count,
                "files": layer.file_count,
                "added": layer.added,
                "modified": layer.modified,
                "removed": layer.removed,
                "wasted_bytes": layer.wasted,
            }
            for layer, instruction in zip(files.layers, instructions, strict=True)
        ],
    }
    if rules:
        document["rules"] = [
            {"name": rule.name, "status": rule.status.value, "message": sanitize(rule.message)} for rule in rules
        ]
    return document


def _size(size: int) -> str:
    return human_bytes(size, spaced=True)


def _tags(detail: ImageDetail) -> list[str]:
    """The image's tags; a daemon that answers something other than a list of strings has none."""
    tags = detail.inspect.get("RepoTags")
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def write_text(out: TextIO, detail: ImageDetail, contents: ImageContents, rules: Sequence[Any]) -> None:
    files = contents.files
    name = ", ".join(_tags(detail)) or short_id(detail.id)
    _line(
        out,
        f"Image: {sanitize(name, 300)} · {len(files.layers)} layers · "
        f"read from {' + '.join(contents.sources) or 'nothing'} in {contents.seconds:.2f} s",
    )
    _line(out)
    _line(
        out,
        f"{'#':>3}  {'Size':>10}  {'Files':>7}  {'Added':>7}  {'Modified':>8}  {'Removed':>7}  {'Wasted':>10}  "
        "Instruction",
    )
    for layer, instruction in zip(files.layers, layer_instructions(detail, len(files.layers)), strict=True):
        _line(
            out,
            f"{layer.index:>3}  {_size(layer.size):>10}  {layer.file_count:>7}  {layer.added:>7}  "
            f"{layer.modified:>8}  {layer.removed:>7}  {_size(layer.wasted):>10}  {sanitize(instruction, 100)}",
        )
    _line(out)
    _line(out, _summary(files))
    if files.wasted_paths:
        _line(out)
        _line(out, "Top wasted paths:")
        _line(out, f"{'Copies':>6}  {'Wasted':>10}  Path")
        for item in files.wasted_paths[:TOP_WASTED]:
            note = "" if item.kept else "  (removed)"
            _line(out, f"{item.copies:>6}  {_size(item.wasted):>10}  /{sanitize(item.path, 300)}{note}")
    if rules:
        _line(out)
        _line(out, "Results:")
        for rule in rules:
            _line(out, f"  {rule.line()}")
        counts = {status: sum(1 for rule in rules if rule.status is status) for status in RuleStatus}
        verdict = "FAIL" if counts[RuleStatus.FAIL] else "PASS"
        _line(
            out,
            f"Result:{verdict} [Total:{len(rules)}] [Passed:{counts[RuleStatus.PASS]}] "
            f"[Failed:{counts[RuleStatus.FAIL]}] [Warn:0] [Skipped:{counts[RuleStatus.SKIP]}]",
        )


def _summary(files: ImageFiles) -> str:
    user = f"{files.user_wasted_ratio * 100:.1f} %" if files.user_bytes or not files.wasted_bytes else "n/a (one layer)"
    return (
        f"efficiency: {files.efficiency * 100:.2f} %  ·  wasted: {_size(files.wasted_bytes)} "
        f"of {_size(files.total_bytes)}  ·  user wasted: {user}"
    )
