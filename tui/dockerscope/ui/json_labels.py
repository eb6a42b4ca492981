"""How a JSON document becomes tree labels: branches with a child count, typed leaves."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

from rich.text import Text

from dockerscope.ui.format import plain

LEAF_VALUE_CHARS = 400
KEY_CHARS = 120
# Children one branch shows; the rest are counted in a last line (a real Env has dozens).
MAX_CHILDREN = 20_000


def is_branch(value: Any) -> bool:
    return isinstance(value, dict | list)


def children_of(value: Any, limit: int = MAX_CHILDREN) -> list[tuple[str, Any]]:
    """The (key, value) pairs below a branch, object keys in document order, array indexes; at
    most `limit` of them (`len(value)` tells how many there are)."""
    if isinstance(value, Mapping):
        return [(str(key), child) for key, child in islice(value.items(), limit)]
    if isinstance(value, list):
        return [(f"[{index}]", child) for index, child in enumerate(islice(value, limit))]
    return []


def _value_text(value: Any) -> Text:
    if value is None:
        return Text("null", style="dim italic")
    if isinstance(value, bool):
        return Text("true" if value else "false", style="yellow")
    if isinstance(value, int | float):
        return plain(repr(value), style="cyan", max_chars=LEAF_VALUE_CHARS)
    if isinstance(value, str):
        if not value:
            return Text('""', style="dim")
        return plain(value, style="green", max_chars=LEAF_VALUE_CHARS)
    return plain(value, max_chars=LEAF_VALUE_CHARS)


def branch_label(key: str, value: Any) -> Text:
    """`Config {24}` for an object, `Env [3]` for an array."""
    count = len(value)
    brackets = "{}" if isinstance(value, Mapping) else "[]"
    label = Text()
    label.append_text(plain(key, style="bold", max_chars=KEY_CHARS))
    label.append(f" {brackets[0]}{count}{brackets[1]}", style="dim")
    return label


def too_deep_label(key: str, value: Any) -> Text:
    """A branch nested too deep to open."""
    label = branch_label(key, value)
    label.append(" nested too deep to show", style="yellow")
    return label


def more_label(hidden: int) -> Text:
    """The last line of a branch with more children than are shown."""
    return Text(f"… {hidden:,} more not shown", style="yellow")


def leaf_label(key: str, value: Any) -> Text:
    label = Text()
    label.append_text(plain(key, style="bold", max_chars=KEY_CHARS))
    label.append(": ")
    label.append_text(_value_text(value))
    return label


def label_for(key: str, value: Any) -> Text:
    return branch_label(key, value) if is_branch(value) else leaf_label(key, value)
