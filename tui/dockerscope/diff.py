"""`dockerscope diff A B [--json]`: two images' layer stacks aligned on the layers they share, and
what their configs set differently, without the UI. (Comparing their files comes next.)"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from dockerscope.connect import add_daemon_arguments, connect
from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ChangeType,
    ComparedLayer,
    ConfigChange,
    DockerServiceError,
    ImageDetail,
    LayerComparison,
    compare_config,
    compare_layers,
    short_id,
)
from dockerscope.units import human_bytes

ERROR_CHARS = 1000
# A value is shown this long in the text report (the JSON report has them as compared).
SHOWN_CHARS = 120


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockerscope diff",
        description="Compare two images: their layer stacks, aligned on the layers they share, and "
        "what their configs (Env, Cmd, Entrypoint, WorkingDir, User, ports, volumes, labels, platform, "
        "history) set differently.",
    )
    parser.add_argument("left", metavar="A", help="image id or reference, e.g. app:1")
    parser.add_argument("right", metavar="B", help="the image to compare it with, e.g. app:2")
    add_daemon_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    return parser


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    service = connect(args.host, args.context)
    if service is None:
        return 2
    try:
        left, right = asyncio.run(_details(service, args.left, args.right))
    except DockerServiceError as error:
        _stderr_line(f"{error.headline} ({error.host}): {error.reason}")
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        service.close()
    layers, config = compare_layers(left, right), compare_config(left, right)
    try:
        if args.json:
            # ensure_ascii (the default) writes every non-ASCII and control character as an escape.
            out.write(json.dumps(report(args.left, left, args.right, right, layers, config), indent=2) + "\n")
        else:
            write_text(out, (args.left, left), (args.right, right), layers, config)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


async def _details(service: Any, left: str, right: str) -> tuple[ImageDetail, ImageDetail]:
    return await service.image_detail_of(left), await service.image_detail_of(right)


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


def report(
    left_name: str,
    left: ImageDetail,
    right_name: str,
    right: ImageDetail,
    layers: LayerComparison,
    config: list[ConfigChange],
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
    }


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
    _line(out, f"  size of the layers B has over A: {'+' if delta >= 0 else '-'}{human_bytes(abs(delta))}")
    _line(out)
    if not config:
        _line(out, "Config: the same")
        return
    _line(out, f"Config: {len(config)} difference{'s' if len(config) != 1 else ''}")
    for change in config:
        key = f"{change.field} {change.key}".rstrip()
        if change.change is ChangeType.ADDED:
            _line(out, f"  + {key}: {_shown(change.after)}")
        elif change.change is ChangeType.REMOVED:
            _line(out, f"  - {key}: {_shown(change.before)}")
        else:
            _line(out, f"  ~ {key}: {_shown(change.before)} -> {_shown(change.after)}")
