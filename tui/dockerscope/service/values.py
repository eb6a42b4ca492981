"""Reading single values out of daemon answers, whatever their type.

A daemon (or whoever built the image) chooses every field: a size may come as a string, a time
far beyond the year 9999, a name as a list. These readers give the type the models need, or the
"unknown" value, and never raise."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

# Unix seconds of 9999-12-31T23:59:59Z: datetime cannot go further.
_LAST_SECOND = 253_402_300_799
# Sizes and counts above this are not real (an exabyte); they are shown as given no further.
MAX_COUNT = 2**63 - 1
_TIMESTAMP = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,30}))?(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)


def count(value: object) -> int:
    """A size or count: a non-negative whole number, else 0 (missing, negative, text, NaN…)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return min(max(int(value), 0), MAX_COUNT)


def text(value: object) -> str:
    """A string field; a number as its digits, "" for null, and an object or array only by its
    kind: its repr could be megabytes, or nested too deep to make at all."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool | float) or (isinstance(value, int) and abs(value) < 10**100):
        return str(value)
    if isinstance(value, dict):
        return "<object>"
    return "<array>" if isinstance(value, list) else "<value>"


def unix_time(value: object) -> datetime | None:
    """Unix seconds as the list endpoints give them; None for missing, zero, negative or beyond
    the year 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 < value <= _LAST_SECOND:  # also false for NaN
        return None
    return datetime.fromtimestamp(value, tz=timezone.utc)


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 time as the daemon writes it (nanoseconds, `Z`); None for the zero time and
    anything that is not such a time."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    try:
        parsed = datetime.fromisoformat(f"{match['base']}.{fraction}{zone}")
    except ValueError:
        return None
    return parsed if parsed.year > 1 else None


def short_id(object_id: str) -> str:
    """The first 12 hex digits an id is shown by, as the docker CLI shows it (`sha256:` left out)."""
    return object_id.removeprefix("sha256:")[:12]
