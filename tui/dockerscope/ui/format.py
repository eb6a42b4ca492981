"""Turning service values into display text. Daemon strings only reach widgets through `plain`."""

from __future__ import annotations

from datetime import datetime, timedelta

import humanize
from rich.text import Text

from dockerscope import clock
from dockerscope.sanitize import sanitize
from dockerscope.units import human_bytes


def plain(value: object, style: str = "", max_chars: int | None = 500) -> Text:
    """Daemon-supplied text as a Rich Text that is never parsed as markup and holds no control
    characters."""
    return Text(sanitize(value, max_chars=max_chars), style=style, no_wrap=True, overflow="ellipsis")


def human_size(size: int) -> str:
    """Decimal units with three significant digits, as the docker CLI prints them (`2.29MB`)."""
    return human_bytes(size)


def sizes_differ(layers: int, image: int) -> bool:
    """Whether the layers' total and the image's own size read differently as `human_size` prints
    them. Podman's history sizes are tar stream sizes (headers included), a few kB off its image
    size: a note saying "2.44MB (image size 2.44MB)" would only puzzle."""
    return human_size(layers) != human_size(image)


def relative_time(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "unknown"
    current = now or clock.utc_now()
    return humanize.naturaltime(current - moment)


# Where humanize's text can change: whole seconds under a minute; minutes and hours are rounded,
# so at half units under an hour and under a day; then days (months and years are whole days).
# Half a day is a safe step past the first day.
_RELATIVE_STEPS = (
    (timedelta(minutes=1), timedelta(seconds=1)),
    (timedelta(hours=1), timedelta(seconds=30)),
    (timedelta(days=1), timedelta(minutes=30)),
)


def relative_time_changes_at(moment: datetime | None, now: datetime) -> datetime | None:
    """The first instant after `now` at which `relative_time(moment)` may read differently (None:
    never), so a row showing it is made again only then."""
    if moment is None:
        return None
    age = now - moment
    if age < timedelta(0):
        return now + timedelta(seconds=1)
    step = next((step for limit, step in _RELATIVE_STEPS if age < limit), timedelta(hours=12))
    if not age % step:
        return now + timedelta(microseconds=1)  # on a rounding boundary: the text changes right after
    return moment + step * (age // step + 1)


def counted(number: int, noun: str) -> str:
    """`1 image`, `2 images`."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def signed_size(size: int) -> str:
    """`+2.29MB`, `-14B`, `0B`."""
    return f"{'+' if size > 0 else '-' if size < 0 else ''}{human_size(abs(size))}"
