"""dive's CI rules: names, defaults, thresholds and size parsing."""

from __future__ import annotations

import pytest

from dockerscope.service.ci_rules import RuleStatus, evaluate, parse_bytes, parse_ratio
from dockerscope.service.file_analysis import ImageFiles


def image(total: int, kept: int, first_layer: int) -> ImageFiles:
    return ImageFiles(
        layers=(),
        total_bytes=total,
        kept_bytes=kept,
        wasted_bytes=total - kept,
        user_bytes=total - first_layer,
        wasted_paths=(),
    )


def outcome(files: ImageFiles, **thresholds: str) -> dict[str, RuleStatus]:
    return {rule.name: rule.status for rule in evaluate(files, thresholds)}


def test_defaults_are_dives_efficiency_0_9_user_wasted_0_1_and_wasted_bytes_disabled() -> None:
    clean = image(total=1000, kept=1000, first_layer=500)
    assert outcome(clean) == {
        "lowestEfficiency": RuleStatus.PASS,
        "highestWastedBytes": RuleStatus.SKIP,
        "highestUserWastedPercent": RuleStatus.PASS,
    }


def test_each_rule_fails_on_its_own_side_of_the_threshold() -> None:
    wasteful = image(total=1000, kept=850, first_layer=500)  # efficiency 0.85, user wasted 150/500 = 0.3
    results = {rule.name: rule for rule in evaluate(wasteful, {"highestWastedBytes": "100"})}
    assert results["lowestEfficiency"].status is RuleStatus.FAIL
    assert "efficiency=0.8500 < threshold=0.9" in results["lowestEfficiency"].message
    assert results["highestWastedBytes"].status is RuleStatus.FAIL
    assert results["highestUserWastedPercent"].status is RuleStatus.FAIL
    assert outcome(wasteful, lowestEfficiency="0.85", highestWastedBytes="150", highestUserWastedPercent="0.3") == {
        "lowestEfficiency": RuleStatus.PASS,
        "highestWastedBytes": RuleStatus.PASS,
        "highestUserWastedPercent": RuleStatus.PASS,
    }


def test_any_rule_can_be_disabled() -> None:
    wasteful = image(total=1000, kept=10, first_layer=0)
    assert set(outcome(wasteful, lowestEfficiency="disabled", highestUserWastedPercent="DISABLED").values()) == {
        RuleStatus.SKIP
    }


def test_a_one_layer_image_that_wastes_nothing_passes_the_user_rule() -> None:
    assert outcome(image(total=10, kept=10, first_layer=10))["highestUserWastedPercent"] is RuleStatus.PASS


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000", 1000), ("20MB", 20_000_000), ("20 mb", 20_000_000), ("1.5GiB", 1_610_612_736), ("512KiB", 524_288)],
)
def test_sizes_parse_like_dive(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "5 parsecs", "-3MB"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_ratios() -> None:
    assert parse_ratio("0.9") == 0.9
    assert parse_ratio("disabled") is None
    assert parse_ratio("2.5", most=None) == 2.5
    with pytest.raises(ValueError):
        parse_ratio("1.5")
    with pytest.raises(ValueError):
        parse_ratio("-0.1", most=None)
