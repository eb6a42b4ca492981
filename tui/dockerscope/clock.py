"""The one place dockerscope reads the wall clock (tests freeze it for stable screenshots)."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
