"""Byte counts as text, one formatter for the UI and `dockerscope analyze` (no Textual here)."""

from __future__ import annotations

import humanize


def human_bytes(size: int, *, spaced: bool = False) -> str:
    """Decimal units. By default three significant digits and no space, as the docker CLI prints
    them (`2.29MB`, `512B`); `spaced`, one decimal and a space, as the analyze report prints them
    (`2.3 MB`, `512 B`)."""
    space = " " if spaced else ""
    if size < 1000:
        return f"{size}{space}B"
    return humanize.naturalsize(size, format="%.1f" if spaced else "%.3g").replace(" ", space)
