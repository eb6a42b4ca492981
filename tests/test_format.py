"""Display formatting: the relative times a row shows, and when they may change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dockerscope.ui.format import relative_time, relative_time_changes_at, sizes_differ

NOW = datetime(2026, 11, 29, 3, 0, 0, tzinfo=timezone.utc)
TICK = timedelta(microseconds=1)
AGES = [
    timedelta(seconds=seconds)
    for seconds in (
        0,
        0.4,
        1,
        59,
        59.9,
        60,
        61,
        89,
        90,
        149,
        150,
        151,
        3569,
        3599,
        3600,
        5000,
        5399,
        84599,
        86399,
        86400,
    )
] + [
    timedelta(days=days, seconds=seconds) for days in (1, 2, 29, 30, 45, 364, 365, 800) for seconds in (0, 43199, 86399)
]


@pytest.mark.parametrize("age", AGES, ids=str)
def test_the_text_holds_until_the_instant_it_may_change(age: timedelta) -> None:
    moment = NOW - age
    changes_at = relative_time_changes_at(moment, NOW)
    assert changes_at is not None and changes_at > NOW
    assert relative_time(moment, changes_at - TICK) == relative_time(moment, NOW)


@pytest.mark.parametrize(
    ("age", "seconds_until_change"),
    [(timedelta(seconds=10.5), 0.5), (timedelta(minutes=5, seconds=10), 20), (timedelta(hours=3, minutes=10), 1200)],
)
def test_young_rows_are_made_again_soon_old_ones_rarely(age: timedelta, seconds_until_change: float) -> None:
    changes_at = relative_time_changes_at(NOW - age, NOW)
    assert changes_at == NOW + timedelta(seconds=seconds_until_change)


def test_an_unknown_time_never_changes_and_a_future_one_is_looked_at_again_soon() -> None:
    assert relative_time_changes_at(None, NOW) is None
    assert relative_time_changes_at(NOW + timedelta(hours=1), NOW) == NOW + timedelta(seconds=1)


def test_a_layer_total_that_prints_like_the_image_size_is_no_difference() -> None:
    """Podman's app image: history sizes add up to 2,436,096 bytes, the image says 2,443,397."""
    assert not sizes_differ(2_436_096, 2_443_397)
    assert sizes_differ(2_436_096, 2_536_096)
    assert sizes_differ(0, 1)
