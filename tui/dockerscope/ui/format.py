"""Turning service values into display text. Daemon strings only reach widgets through `plain`."""

from __future__ import annotations

from datetime import datetime

import humanize
from rich.text import Text

from dockerscope import clock
from dockerscope.sanitize import sanitize


def plain(value: object, style: str = "", max_chars: int | None = 500) -> Text:
    """Daemon-supplied text as a Rich Text that is never parsed as markup and holds no control
    characters."""
    return Text(sanitize(value, max_chars=max_chars), style=style, no_wrap=True, overflow="ellipsis")


def human_size(size: int) -> str:
    """Decimal units with three significant digits, as the docker CLI prints them (`2.29MB`)."""
    if size < 1000:
        return f"{size}B"
    return humanize.naturalsize(size, format="%.3g").replace(" ", "")


def relative_time(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "unknown"
    current = now or clock.utc_now()
    return humanize.naturaltime(current - moment)


def counted(number: int, noun: str) -> str:
    """`1 image`, `2 images`."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
