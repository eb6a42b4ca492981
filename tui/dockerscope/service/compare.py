"""Two images side by side: their layer stacks aligned on the chain ids they share, what their
configs set differently, and how their final filesystems differ. Pure functions over details and
listings; the inspect documents are hostile, so every value is read defensively and turned into
text once."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockerscope.service.final_filesystem import FinalEntry, final_filesystems
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing
from dockerscope.service.models import ImageDetail
from dockerscope.service.values import text

# A value longer than this is cut in a comparison (a label can hold megabytes).
VALUE_CHARS = 2000


@dataclass(frozen=True)
class ComparedLayer:
    """One layer of either image: its place in RootFS.Layers (oldest first), diff id, size and the
    instruction that made it (empty when the history could not place it)."""

    index: int
    diff_id: str
    size: int
    instruction: str


@dataclass(frozen=True)
class LayerComparison:
    """`shared`: the layers both stacks start with (the same chain ids: the same layers, not only
    the same contents); then what only the left and only the right image has on top."""

    shared: tuple[ComparedLayer, ...]
    left_only: tuple[ComparedLayer, ...]
    right_only: tuple[ComparedLayer, ...]

    @property
    def diverges_at(self) -> int | None:
        """The index of the first layer the two stacks do not share; None when they are the same."""
        return len(self.shared) if self.left_only or self.right_only else None

    @property
    def size_delta(self) -> int:
        """How many bytes the right image's layers add over the left's (negative: fewer)."""
        return sum(layer.size for layer in self.right_only) - sum(layer.size for layer in self.left_only)


class ChangeType(enum.Enum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class ConfigChange:
    """One difference: `field` (`Env`, `Labels`, `Cmd`…), `key` within it (an Env name, a label, a
    port; empty for a single value), and the values before (left) and after (right)."""

    field: str
    key: str
    change: ChangeType
    before: str | None
    after: str | None


def _layers(detail: ImageDetail) -> list[ComparedLayer]:
    placed = {row.layer_index: row for row in detail.layers.rows if row.layer_index is not None}
    layers = []
    for index, diff_id in enumerate(_diff_ids(detail.inspect)):
        row = placed.get(index)
        layers.append(ComparedLayer(index, diff_id, row.size if row else 0, row.instruction if row else ""))
    return layers


def _field(document: Mapping[str, Any], name: str) -> Any:
    """A field of an inspect document (`RootFS`), or of an image config as an archive holds it,
    which names it in lower case (`rootfs`)."""
    value = document.get(name)
    return document.get(name.lower()) if value is None else value


def _diff_ids(inspect: Mapping[str, Any]) -> list[str]:
    root = _field(inspect, "RootFS")
    layers = (root.get("Layers") or root.get("diff_ids")) if isinstance(root, Mapping) else None
    return [text(layer) for layer in layers] if isinstance(layers, list) else []


def compare_layers(left: ImageDetail, right: ImageDetail) -> LayerComparison:
    """Align the two stacks on their common chain-id prefix."""
    left_layers, right_layers = _layers(left), _layers(right)
    shared = 0
    for left_chain, right_chain in zip(left.chain, right.chain, strict=False):
        if left_chain != right_chain:
            break
        shared += 1
    shared = min(shared, len(left_layers), len(right_layers))
    return LayerComparison(
        shared=tuple(left_layers[:shared]),
        left_only=tuple(left_layers[shared:]),
        right_only=tuple(right_layers[shared:]),
    )


def _value(value: object) -> str:
    """A config value as one line of text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        return text(value)


def _env(value: object) -> dict[str, str]:
    """`NAME=value` entries by name (the last one wins, as for a process)."""
    entries: dict[str, str] = {}
    for entry in value if isinstance(value, list) else ():
        name, _, setting = text(entry).partition("=")
        entries[name] = setting
    return entries


def _mapping(value: object) -> dict[str, str]:
    return {text(key): _value(item) for key, item in value.items()} if isinstance(value, Mapping) else {}


def _keys(value: object) -> dict[str, str]:
    """The keys of a set-like mapping (`ExposedPorts`, `Volumes`: their values are always `{}`)."""
    return {text(key): "" for key in value} if isinstance(value, Mapping) else {}


def _history(detail: ImageDetail) -> dict[str, str]:
    """History entries by their number (oldest first, from 1), as the layer pane numbers them."""
    return {str(row.number): row.created_by for row in detail.layers.rows}


def _entries(
    field: str, before: Mapping[str, str], after: Mapping[str, str], numbered: bool = False
) -> Iterable[ConfigChange]:
    keys = before.keys() | after.keys()
    for key in sorted(keys, key=int) if numbered else sorted(keys):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            yield ConfigChange(field, key, ChangeType.ADDED, None, _cut(new))
        elif new is None:
            yield ConfigChange(field, key, ChangeType.REMOVED, _cut(old), None)
        else:
            yield ConfigChange(field, key, ChangeType.CHANGED, _cut(old), _cut(new))


def _cut(value: str | None) -> str | None:
    return value if value is None or len(value) <= VALUE_CHARS else value[:VALUE_CHARS] + "…"


# Single values of `Config` and of the inspect document's top level that a comparison shows.
_CONFIG_VALUES = ("Cmd", "Entrypoint", "WorkingDir", "User", "StopSignal")
_TOP_VALUES = ("Architecture", "Variant", "Os")


def compare_config(left: ImageDetail, right: ImageDetail) -> list[ConfigChange]:
    """What the two images' configs set differently: Env, Cmd, Entrypoint, WorkingDir, User,
    ExposedPorts, Volumes, Labels, the platform, and the history entries by position."""
    left_config, right_config = _config(left.inspect), _config(right.inspect)
    changes: list[ConfigChange] = []
    changes += _entries("Env", _env(left_config.get("Env")), _env(right_config.get("Env")))
    for field in _CONFIG_VALUES:
        changes += _entries(field, _single(left_config, field), _single(right_config, field))
    changes += _entries("ExposedPorts", _keys(left_config.get("ExposedPorts")), _keys(right_config.get("ExposedPorts")))
    changes += _entries("Volumes", _keys(left_config.get("Volumes")), _keys(right_config.get("Volumes")))
    changes += _entries("Labels", _mapping(left_config.get("Labels")), _mapping(right_config.get("Labels")))
    for field in _TOP_VALUES:
        changes += _entries(field, _top(left.inspect, field), _top(right.inspect, field))
    changes += _entries("History", _history(left), _history(right), numbered=True)
    return changes


def _top(inspect: Mapping[str, Any], field: str) -> dict[str, str]:
    return _single({field: _field(inspect, field)}, field)


def _config(inspect: Mapping[str, Any]) -> Mapping[str, Any]:
    config = _field(inspect, "Config")
    return config if isinstance(config, Mapping) else {}


def _single(document: Mapping[str, Any], field: str) -> dict[str, str]:
    """A single value as a one-entry mapping under the empty key; absent, null or empty: none."""
    value = document.get(field)
    return {"": _value(value)} if value not in (None, "", [], {}) else {}


@dataclass(frozen=True)
class FileDifference:
    """One path whose final state differs: added (only in the right image), removed (only in the
    left one), or changed, with what changed (`type`, `size`, `link`, `mode`, `owner`, and
    `contents` when a layer of its own rewrote it at the same size: listings hold no contents)."""

    path: str
    change: ChangeType
    before: LayerEntry | None
    after: LayerEntry | None
    changed: tuple[str, ...] = ()

    @property
    def size_delta(self) -> int:
        return (self.after.size if self.after else 0) - (self.before.size if self.before else 0)


def _what_changed(before: LayerEntry, after: LayerEntry) -> tuple[str, ...]:
    """What differs between two entries written by different layers."""
    changed = [
        name
        for name, differs in (
            ("type", before.type is not after.type),
            ("size", before.size != after.size),
            ("link", before.link != after.link),
            ("mode", before.mode != after.mode),
            ("owner", (before.uid, before.gid) != (after.uid, after.gid)),
        )
        if differs
    ]
    if not changed and before.type is EntryType.FILE:
        changed.append("contents")
    return tuple(changed)


def compare_listings(
    left: Sequence[tuple[str, LayerListing]], right: Sequence[tuple[str, LayerListing]], shared_layers: int
) -> list[FileDifference]:
    """The same from the two stacks' listings, without analysing them: the shared layers are
    replayed once, and what neither image's own layers touch is not looked at again."""
    return compare_final(*final_filesystems(left, right, shared_layers), shared_layers)


def compare_final(
    before: Mapping[str, FinalEntry], after: Mapping[str, FinalEntry], shared_layers: int
) -> list[FileDifference]:
    """Two final filesystems compared path by path, in path order. A path both last wrote in the
    same one of their `shared_layers` (the shared chain prefix) is the same file; a file rewritten
    by a layer of its own at the same size is reported with `contents`, as it may differ."""
    differing = [path for path, old in before.items() if after.get(path) is not old]
    differing += [path for path in after if path not in before]
    differences: list[FileDifference] = []
    for path in sorted(differing):
        old, new = before.get(path), after.get(path)
        if new is None:
            assert old is not None
            differences.append(FileDifference(path, ChangeType.REMOVED, old[0], None))
        elif old is None:
            differences.append(FileDifference(path, ChangeType.ADDED, None, new[0]))
        elif old[1] != new[1] or old[1] >= shared_layers:
            # Last written by the same shared layer on both sides: the same entry, nothing to compare.
            changed = _what_changed(old[0], new[0])
            if changed:
                differences.append(FileDifference(path, ChangeType.CHANGED, old[0], new[0], changed))
    return differences
