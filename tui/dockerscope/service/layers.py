"""Map `docker history` entries onto `RootFS.Layers`.

The API does not say which history entries made a filesystem layer. Entries with a size certainly
did; when they account for every layer the mapping is exact. Otherwise the zero-size entries are
judged by their instruction (RUN/COPY/ADD make layers, ENV/CMD/LABEL… never do, WORKDIR depends on
the builder), and where that still does not add up, only the layers that can be pinned from the
bottom or the top of the stack get a diff id and the stack says it is ambiguous.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dockerscope.service.models import LayerKind, LayerRow, LayerStack, MappingQuality
from dockerscope.service.sharing import chain_ids
from dockerscope.service.values import count, parse_timestamp, text, unix_time

METADATA_INSTRUCTIONS = frozenset(
    {
        "ARG",
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
    }
)
FILESYSTEM_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})

_SHELL_PREFIX = re.compile(r"^/bin/sh -c\s+")
# The legacy builder prefixes `#(nop)` with the current SHELL (`/bin/sh -c` unless SHELL changed it).
_LEGACY_NOP = re.compile(r"^(?:\S+\s+){0,16}?#\(nop\)\s+")
# The legacy builder's count of build args. The image author chose it: a count with more digits
# than this cannot be real, and the command is then shown as it stands.
_BUILD_ARGS = re.compile(r"^\|(\d{1,6})\s+")
_BUILDKIT_SUFFIX = re.compile(r"\s+# buildkit$")
_INSTRUCTION_WORD = re.compile(r"^([A-Z]+)(\s|$)")
IMPORTED = "(imported)"


class _Evidence(enum.Enum):
    """How sure we are that a history entry made a layer."""

    SIZED = 1  # size > 0: it certainly made one
    LIKELY = 2  # RUN/COPY/ADD, legacy WORKDIR, an import: made one even if empty
    POSSIBLE = 3  # BuildKit WORKDIR, unknown forms: cannot tell
    NEVER = 4  # metadata-only instruction


def _strip_build_args(command: str) -> str:
    """Drop the `|2 A=1 B=2 ` prefix the legacy builder puts before RUN with build args."""
    match = _BUILD_ARGS.match(command)
    if not match:
        return command
    rest = command[match.end() :]
    # One split, bounded by the text: each arg takes at least a character and a space.
    args = min(int(match.group(1)), len(rest))
    parts = rest.split(" ", args)
    return parts[args] if len(parts) > args else ""


def clean_instruction(created_by: str) -> str:
    """Turn a history `CreatedBy` into the Dockerfile instruction a person would recognise."""
    command = created_by.strip()
    if not command:
        return IMPORTED
    nop = _LEGACY_NOP.match(command)
    if nop:
        return command[nop.end() :].strip()
    command = _BUILDKIT_SUFFIX.sub("", command)
    word = _INSTRUCTION_WORD.match(command)
    if word:
        if word.group(1) == "RUN":
            body = _strip_build_args(command[word.end() :].strip())
            return "RUN " + _SHELL_PREFIX.sub("", body)
        return command
    # Legacy builder RUN, shell form (`/bin/sh -c …`) or exec form (`/bin/busybox --install …`).
    return "RUN " + _SHELL_PREFIX.sub("", _strip_build_args(command))


def _evidence(created_by: str, size: int) -> _Evidence:
    if size > 0:
        return _Evidence.SIZED
    command = created_by.strip()
    if not command:
        return _Evidence.LIKELY
    instruction = clean_instruction(command)
    word = (instruction.split(maxsplit=1) or [""])[0]
    if word in METADATA_INSTRUCTIONS:
        return _Evidence.NEVER
    if word in FILESYSTEM_INSTRUCTIONS:
        return _Evidence.LIKELY
    if word == "WORKDIR" and _LEGACY_NOP.match(command):
        return _Evidence.LIKELY  # the legacy builder commits a layer for every WORKDIR
    return _Evidence.POSSIBLE


def _layer_flags(evidence: Sequence[_Evidence], layer_count: int) -> tuple[list[bool | None], MappingQuality]:
    """Decide per entry whether it made a layer: True, False, or None when it cannot be told."""
    for quality, accepted in (
        (MappingQuality.EXACT, {_Evidence.SIZED}),
        (MappingQuality.INFERRED, {_Evidence.SIZED, _Evidence.LIKELY}),
        (MappingQuality.INFERRED, {_Evidence.SIZED, _Evidence.LIKELY, _Evidence.POSSIBLE}),
    ):
        if sum(e in accepted for e in evidence) == layer_count:
            return [e in accepted for e in evidence], quality
    flags: list[bool | None] = [
        True if e is _Evidence.SIZED else False if e is _Evidence.NEVER else None for e in evidence
    ]
    return flags, MappingQuality.AMBIGUOUS


def _assign_layers(flags: Sequence[bool | None], layer_count: int) -> list[int | None]:
    """Give each layer-making entry the index of its layer in `RootFS.Layers`, pinning from the
    bottom and the top of the stack and stopping, from either end, at the first entry that cannot be
    decided."""
    assigned: list[int | None] = [None] * len(flags)
    bottom = 0
    for index, flag in enumerate(flags):
        if flag is None or bottom >= layer_count:
            break
        if flag:
            assigned[index] = bottom
            bottom += 1
    top = layer_count - 1
    for index in range(len(flags) - 1, -1, -1):
        flag = flags[index]
        if flag is None or top < bottom or assigned[index] is not None:
            break
        if flag:
            assigned[index] = top
            top -= 1
    return assigned


def map_history(history: Sequence[Mapping[str, Any]], diff_ids: Sequence[str]) -> LayerStack:
    """Build the layer stack from `GET /images/{id}/history` (newest first, as the API returns it)
    and the image's `RootFS.Layers` (oldest first). Rows that made a known layer get its diff id and
    chain id."""
    entries = [entry if isinstance(entry, Mapping) else {} for entry in reversed(history)]
    sizes = [count(entry.get("Size")) for entry in entries]
    commands = [text(entry.get("CreatedBy")) for entry in entries]
    evidence = [_evidence(command, size) for command, size in zip(commands, sizes, strict=True)]
    flags, quality = _layer_flags(evidence, len(diff_ids))
    assigned = _assign_layers(flags, len(diff_ids))
    chain = chain_ids(diff_ids)

    rows = tuple(
        LayerRow(
            number=position + 1,
            created=unix_time(entry.get("Created")),
            created_by=commands[position],
            instruction=clean_instruction(commands[position]),
            size=sizes[position],
            kind=LayerKind.UNKNOWN if flag is None else LayerKind.LAYER if flag else LayerKind.EMPTY,
            diff_id=None if layer is None else diff_ids[layer],
            comment=text(entry.get("Comment")),
            chain_id=None if layer is None else chain[layer],
            layer_index=layer,
        )
        for position, (entry, flag, layer) in enumerate(zip(entries, flags, assigned, strict=True))
    )
    return LayerStack(
        rows=rows,
        layer_count=len(diff_ids),
        total_size=sum(sizes),
        quality=quality,
        note=_note(quality, evidence, len(diff_ids)),
    )


def _note(quality: MappingQuality, evidence: Sequence[_Evidence], layer_count: int) -> str:
    sized = sum(e is _Evidence.SIZED for e in evidence)
    if quality is MappingQuality.EXACT:
        return "exact: every layer has a size"
    if quality is MappingQuality.INFERRED:
        return f"inferred: {layer_count - sized} zero-size layer(s) placed by instruction"
    undecided = sum(e in (_Evidence.LIKELY, _Evidence.POSSIBLE) for e in evidence)
    return (
        f"ambiguous: {layer_count} layers, {sized} sized entries, {undecided} zero-size "
        "entries that may or may not be layers (marked ?)"
    )


def map_config_history(
    history: Sequence[Mapping[str, Any]], diff_ids: Sequence[str], layer_sizes: Sequence[int]
) -> LayerStack:
    """Build the layer stack from an image config's `history` (oldest first) and `rootfs.diff_ids`,
    as an archive holds them: `empty_layer` says exactly which entries made a layer, and each layer
    row takes the size of its layer as stored (`layer_sizes`, per diff id). A config whose
    non-empty entries do not account for its layers is mapped as a daemon's history is; one
    without history gets one row per layer."""
    entries = [entry if isinstance(entry, Mapping) else {} for entry in history]
    if not entries:
        entries = [{} for _ in diff_ids]
    made = [entry.get("empty_layer") is not True for entry in entries]
    if sum(made) != len(diff_ids):
        return map_history(
            [
                {
                    "Created": _unix(entry.get("created")),
                    "CreatedBy": entry.get("created_by"),
                    "Comment": entry.get("comment"),
                }
                for entry in reversed(entries)
            ],
            diff_ids,
        )
    chain = chain_ids(diff_ids)
    rows: list[LayerRow] = []
    layer = 0
    for position, (entry, flag) in enumerate(zip(entries, made, strict=True)):
        command = text(entry.get("created_by"))
        index = layer if flag else None
        layer += flag
        rows.append(
            LayerRow(
                number=position + 1,
                created=parse_timestamp(entry.get("created")),
                created_by=command,
                instruction=clean_instruction(command),
                size=layer_sizes[index] if index is not None else 0,
                kind=LayerKind.LAYER if flag else LayerKind.EMPTY,
                diff_id=None if index is None else diff_ids[index],
                comment=text(entry.get("comment")),
                chain_id=None if index is None else chain[index],
                layer_index=index,
            )
        )
    return LayerStack(
        rows=tuple(rows),
        layer_count=len(diff_ids),
        total_size=sum(layer_sizes),
        quality=MappingQuality.EXACT,
        note="exact: the image config marks the entries that made no layer",
    )


def _unix(value: object) -> int | None:
    moment = parse_timestamp(value)
    return int(moment.timestamp()) if moment is not None else None
