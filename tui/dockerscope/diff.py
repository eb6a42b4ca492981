"""`dockerscope diff A B [--json] [--no-files]`: two images' layer stacks aligned on the layers they
share, what their configs set differently, and how their final filesystems differ, without the UI."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from dockerscope.connect import add_daemon_arguments, connect, open_path
from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ChangeType,
    ComparedLayer,
    ConfigChange,
    ContentsUnavailable,
    DockerServiceError,
    FileDifference,
    ImageDetail,
    ImageSource,
    LayerComparison,
    LayerEntry,
    ReadCancelled,
    compare_config,
    compare_layers,
    compare_listings,
    is_archive_path,
    read_both_layers,
    short_id,
)
from dockerscope.units import human_bytes

ERROR_CHARS = 1000
# A value is shown this long in the text report (the JSON report has them as compared).
SHOWN_CHARS = 120
# Paths the text report lists (the JSON report lists them all).
FILES_SHOWN = 200


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockerscope diff",
        usage="%(prog)s [-h] [--host URL | --context NAME] [--json] [--no-files] [FILE|DIR] A B",
        description="Compare two images: their layer stacks, aligned on the layers they share, and "
        "what their configs (Env, Cmd, Entrypoint, WorkingDir, User, ports, volumes, labels, platform, "
        "history) set differently.",
    )
    parser.add_argument(
        "images",
        nargs="+",
        metavar="[FILE|DIR] A B",
        help="two image ids or references, e.g. app:1 app:2; first a docker save / podman save tarball "
        "or OCI image layout to compare two of its images",
    )
    add_daemon_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument(
        "--no-files",
        action="store_true",
        help="leave the files out (comparing them reads both images' layers, from the cache when it can)",
    )
    return parser


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    archive = is_archive_path(args.images[0])
    if len(args.images) != (3 if archive else 2):
        parser.error("give A B, or FILE|DIR A B for two images of an archive")
    if archive and (args.host is not None or args.context is not None):
        parser.error("give either --host/--context or an archive path, not both")
    args.left, args.right = args.images[-2:]
    service = open_path(args.images[0]) if archive else connect(args.host, args.context)
    if service is None:
        return 2
    try:
        return asyncio.run(_compare(service, args, out))
    except (DockerServiceError, ContentsUnavailable) as error:
        if isinstance(error, DockerServiceError):
            _stderr_line(f"{error.headline} ({error.host}): {error.reason}")
        else:
            _stderr_line(str(error))
        return 2
    except (KeyboardInterrupt, ReadCancelled):
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        service.close()


async def _compare(source: ImageSource, args: argparse.Namespace, out: TextIO) -> int:
    """Compare and report; the exit code. The report is written here rather than returned:
    asyncio.run's signal handling can end up formatting the main task's result with repr(), and
    two big images' listings took 3.3 s to format."""
    left, right = await source.image_detail_of(args.left), await source.image_detail_of(args.right)
    layers, config = compare_layers(left, right), compare_config(left, right)
    differences = None
    if not args.no_files:
        if not source.capabilities.layer_contents:
            raise ContentsUnavailable(f"{source.host} cannot list what is inside layers: use --no-files")
        ours, theirs = await read_both_layers(source, left, right, layers)
        differences = compare_listings(ours, theirs, shared_layers=len(layers.shared))
    if args.json:
        # ensure_ascii (the default) writes every non-ASCII and control character as an escape.
        document = report(args.left, left, args.right, right, layers, config, differences)
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        write_text(out, (args.left, left), (args.right, right), layers, config, differences)
    return 0


def _stderr_line(message: str) -> None:
    print(sanitize(f"dockerscope diff: {message}", max_chars=ERROR_CHARS), file=sys.stderr)


def _line(out: TextIO, text: str = "") -> None:
    """Every line of the text report goes out through here, sanitised."""
    out.write(sanitize(text) + "\n")


def _layer_json(layer: ComparedLayer) -> dict[str, Any]:
    return {"index": layer.index, "diff_id": layer.diff_id, "size": layer.size, "instruction": layer.instruction}


def _change_json(change: ConfigChange) -> dict[str, Any]:
    return {
        "field": change.field,
        "key": change.key,
        "change": change.change.value,
        "before": change.before,
        "after": change.after,
    }


def _entry_json(entry: LayerEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "type": entry.type.value,
        "size": entry.size,
        "mode": f"{entry.mode:04o}",
        "uid": entry.uid,
        "gid": entry.gid,
        "link": entry.link,
    }


def _file_json(difference: FileDifference) -> dict[str, Any]:
    return {
        "path": difference.path,
        "change": difference.change.value,
        "changed": list(difference.changed),
        "size_delta": difference.size_delta,
        "a": _entry_json(difference.before),
        "b": _entry_json(difference.after),
    }


def report(
    left_name: str,
    left: ImageDetail,
    right_name: str,
    right: ImageDetail,
    layers: LayerComparison,
    config: list[ConfigChange],
    files: list[FileDifference] | None = None,
) -> dict[str, Any]:
    return {
        "a": {"reference": left_name, "id": left.id, "size": left.layers.total_size},
        "b": {"reference": right_name, "id": right.id, "size": right.layers.total_size},
        "layers": {
            "shared": [_layer_json(layer) for layer in layers.shared],
            "a_only": [_layer_json(layer) for layer in layers.left_only],
            "b_only": [_layer_json(layer) for layer in layers.right_only],
            "diverges_at": layers.diverges_at,
            "size_delta": layers.size_delta,
        },
        "config": [_change_json(change) for change in config],
        "files": None if files is None else [_file_json(difference) for difference in files],
    }


def _signed(size: int) -> str:
    """`+2.29MB`, `-14B`."""
    return f"{'+' if size >= 0 else '-'}{human_bytes(abs(size))}"


def _shown(value: str | None) -> str:
    if value is None:
        return ""
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"


def write_text(
    out: TextIO,
    left: tuple[str, ImageDetail],
    right: tuple[str, ImageDetail],
    layers: LayerComparison,
    config: list[ConfigChange],
    files: list[FileDifference] | None = None,
) -> None:
    for label, (name, detail) in (("A", left), ("B", right)):
        count = len(layers.shared) + len(layers.left_only if label == "A" else layers.right_only)
        layer_count = f"{count} layer{'' if count == 1 else 's'}"
        _line(out, f"{label}: {name} ({short_id(detail.id)}, {layer_count}, {human_bytes(detail.layers.total_size)})")
    _line(out)
    if layers.diverges_at is None:
        _line(out, f"Layers: the same {len(layers.shared)} layers")
    elif not layers.shared:
        _line(out, "Layers: no layer in common")
    else:
        _line(out, f"Layers: {len(layers.shared)} shared, then they diverge at layer {layers.diverges_at + 1}")
    for where, group in (("both", layers.shared), ("A only", layers.left_only), ("B only", layers.right_only)):
        for layer in group:
            _line(
                out,
                f"  {where:<7}{layer.index + 1:>4}  {short_id(layer.diff_id):<12}  {human_bytes(layer.size):>9}  "
                f"{_shown(layer.instruction)}",
            )
    delta = layers.size_delta
    _line(out, f"  size of the layers B has over A: {_signed(delta)}")
    _line(out)
    if not config:
        _line(out, "Config: the same")
    else:
        _line(out, f"Config: {len(config)} difference{'s' if len(config) != 1 else ''}")
    for change in config:
        key = f"{change.field} {change.key}".rstrip()
        if change.change is ChangeType.ADDED:
            _line(out, f"  + {key}: {_shown(change.after)}")
        elif change.change is ChangeType.REMOVED:
            _line(out, f"  - {key}: {_shown(change.before)}")
        else:
            _line(out, f"  ~ {key}: {_shown(change.before)} -> {_shown(change.after)}")
    if files is not None:
        _line(out)
        _write_files(out, files)


def _write_files(out: TextIO, files: list[FileDifference]) -> None:
    counts = {kind: sum(1 for difference in files if difference.change is kind) for kind in ChangeType}
    delta = sum(difference.size_delta for difference in files)
    _line(
        out,
        f"Files: {counts[ChangeType.ADDED]} added, {counts[ChangeType.REMOVED]} removed, "
        f"{counts[ChangeType.CHANGED]} changed ({_signed(delta)})",
    )
    marks = {ChangeType.ADDED: "+", ChangeType.REMOVED: "-", ChangeType.CHANGED: "~"}
    for difference in files[:FILES_SHOWN]:
        what = f" ({', '.join(difference.changed)})" if difference.changed else ""
        _line(
            out,
            f"  {marks[difference.change]} /{_shown(difference.path)}{what}  {_signed(difference.size_delta)}",
        )
    if len(files) > FILES_SHOWN:
        _line(out, f"  … and {len(files) - FILES_SHOWN} more (--json lists them all)")
