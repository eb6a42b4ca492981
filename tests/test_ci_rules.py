"""dive's CI rules: names, defaults, thresholds and size parsing."""

from __future__ import annotations

import pytest

from dockerscope.service.ci_rules import RuleResult, RuleStatus, Thresholds, evaluate, parse_bytes, parse_ratio
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


def results(files: ImageFiles, **thresholds: str) -> list[RuleResult]:
    """The rules' results with thresholds given as texts by dive's rule names."""
    return evaluate(files, Thresholds.parse(thresholds))


def outcome(files: ImageFiles, **thresholds: str) -> dict[str, RuleStatus]:
    return {rule.name: rule.status for rule in results(files, **thresholds)}


def test_defaults_are_dives_efficiency_0_9_user_wasted_0_1_and_wasted_bytes_disabled() -> None:
    clean = image(total=1000, kept=1000, first_layer=500)
    assert outcome(clean) == {
        "lowestEfficiency": RuleStatus.PASS,
        "highestWastedBytes": RuleStatus.SKIP,
        "highestUserWastedPercent": RuleStatus.PASS,
    }


def test_each_rule_fails_on_its_own_side_of_the_threshold() -> None:
    wasteful = image(total=1000, kept=850, first_layer=500)  # efficiency 0.85, user wasted 150/500 = 0.3
    by_name = {rule.name: rule for rule in results(wasteful, highestWastedBytes="100")}
    assert by_name["lowestEfficiency"].status is RuleStatus.FAIL
    assert "efficiency=0.8500 < threshold=0.9" in by_name["lowestEfficiency"].message
    assert by_name["highestWastedBytes"].status is RuleStatus.FAIL
    assert by_name["highestUserWastedPercent"].status is RuleStatus.FAIL
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


def lines(files: ImageFiles, **thresholds: str) -> list[str]:
    return [rule.line() for rule in results(files, **thresholds)]


def test_the_report_lines_name_each_rule_and_say_why_it_failed_or_was_skipped() -> None:
    wasteful = image(total=1000, kept=850, first_layer=500)
    assert lines(wasteful, highestWastedBytes="100") == [
        "FAIL: lowestEfficiency: image efficiency is too low (efficiency=0.8500 < threshold=0.9)",
        "FAIL: highestWastedBytes: too many bytes wasted (wasted-bytes=150 > threshold=100)",
        "FAIL: highestUserWastedPercent: too many bytes wasted, relative to the user bytes added "
        "(%-user-wasted-bytes=0.3000 > threshold=0.1)",
    ]
    passing = {"lowestEfficiency": "0.5", "highestWastedBytes": "1KB", "highestUserWastedPercent": "0.5"}
    assert lines(wasteful, **passing) == [
        "PASS: lowestEfficiency",
        "PASS: highestWastedBytes",
        "PASS: highestUserWastedPercent",
    ]
    assert [rule.message for rule in results(wasteful, **passing)] == ["", "", ""]
    assert lines(
        wasteful, lowestEfficiency="disabled", highestWastedBytes=" Disabled ", highestUserWastedPercent="disabled"
    ) == [
        "SKIP: lowestEfficiency: rule disabled",
        "SKIP: highestWastedBytes: rule disabled",
        "SKIP: highestUserWastedPercent: rule disabled",
    ]


def test_the_default_thresholds_hold_at_exactly_0_9_and_0_1() -> None:
    # efficiency 900/1000 = 0.9 is not below 0.9; user wasted 100/1000 = 0.1 is not above 0.1.
    assert set(outcome(image(total=1000, kept=900, first_layer=0)).values()) == {RuleStatus.PASS, RuleStatus.SKIP}
    # One byte more wasted crosses both.
    assert outcome(image(total=1000, kept=899, first_layer=0)) == {
        "lowestEfficiency": RuleStatus.FAIL,
        "highestWastedBytes": RuleStatus.SKIP,
        "highestUserWastedPercent": RuleStatus.FAIL,
    }


def test_wasted_bytes_fail_only_above_the_threshold() -> None:
    wasteful = image(total=1000, kept=850, first_layer=500)
    assert outcome(wasteful, highestWastedBytes="150")["highestWastedBytes"] is RuleStatus.PASS
    assert outcome(wasteful, highestWastedBytes="149")["highestWastedBytes"] is RuleStatus.FAIL


def test_the_user_wasted_threshold_may_exceed_1() -> None:
    # wasted 600 over 300 user bytes: a ratio of 2.0.
    doubled = image(total=1000, kept=400, first_layer=700)
    assert outcome(doubled, highestUserWastedPercent="1.5")["highestUserWastedPercent"] is RuleStatus.FAIL
    assert outcome(doubled, highestUserWastedPercent="2")["highestUserWastedPercent"] is RuleStatus.PASS


def test_ratios_include_both_ends() -> None:
    assert parse_ratio("0") == 0.0
    assert parse_ratio("1") == 1.0


def test_refusals_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"^'1\.5' is not a ratio between 0 and 1\.0$"):
        parse_ratio("1.5")
    with pytest.raises(ValueError, match=r"^'5 parsecs' is not a size \(examples: 20MB, 512KiB, 1000\)$"):
        parse_bytes("5 parsecs")


def test_thresholds_are_parsed_once_by_each_rules_own_reader() -> None:
    assert Thresholds.parse({}) == Thresholds(
        lowest_efficiency=0.9, highest_wasted_bytes=None, highest_user_wasted_percent=0.1
    )
    assert Thresholds.parse(
        {"lowestEfficiency": "disabled", "highestWastedBytes": "20MB", "highestUserWastedPercent": "2.5"}
    ) == Thresholds(lowest_efficiency=None, highest_wasted_bytes=20_000_000, highest_user_wasted_percent=2.5)
    with pytest.raises(ValueError, match="not a ratio"):
        Thresholds.parse({"lowestEfficiency": "1.5"})
    with pytest.raises(ValueError, match="not a size"):
        Thresholds.parse({"highestWastedBytes": "lots"})


def test_parsed_thresholds_are_used_as_they_are() -> None:
    wasteful = image(total=1000, kept=850, first_layer=500)
    assert [rule.line() for rule in evaluate(wasteful, Thresholds(0.8, 149, None))] == [
        "PASS: lowestEfficiency",
        "FAIL: highestWastedBytes: too many bytes wasted (wasted-bytes=150 > threshold=149)",
        "SKIP: highestUserWastedPercent: rule disabled",
    ]
