"""`dockerscope analyze --ci`: dive's three CI rules, with dive's names, defaults and meanings.

- lowestEfficiency: fail when the efficiency (a ratio, 0..1) is below the threshold (default 0.9);
- highestWastedBytes: fail when more bytes than the threshold are wasted (default: disabled);
  sizes like `20MB` (1000-based) or `20MiB` (1024-based) are accepted;
- highestUserWastedPercent: fail when wasted bytes over the bytes the layers above the first add
  (a ratio, despite the name) exceed the threshold (default 0.1).

Any threshold may be `disabled`. The figures come from `ImageFiles`; see its module for the formulas.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from dockerscope.service.file_analysis import ImageFiles

DISABLED = "disabled"
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class RuleStatus(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class RuleResult:
    name: str
    status: RuleStatus
    message: str

    def line(self) -> str:
        return f"{self.status.value}: {self.name}" + (f": {self.message}" if self.message else "")


def parse_ratio(text: str, most: float | None = 1.0) -> float | None:
    """A ratio threshold from 0 to `most` (no limit: None), or None for `disabled`. Raises
    ValueError otherwise."""
    if text.strip().lower() == DISABLED:
        return None
    value = float(text)
    if value < 0 or (most is not None and value > most):
        raise ValueError(f"{text!r} is not a ratio between 0 and {most}")
    return value


def parse_bytes(text: str) -> int | None:
    """A size such as `20MB`, `1.5GiB` or `1000`, or None for `disabled`. Raises ValueError otherwise."""
    if text.strip().lower() == DISABLED:
        return None
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 20MB, 512KiB, 1000)")
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass(frozen=True)
class Thresholds:
    """Each rule's threshold, parsed once (by `analyze`'s argument parser or `parse`); None: the
    rule is disabled. The defaults are dive's."""

    lowest_efficiency: float | None = 0.9
    highest_wasted_bytes: int | None = None
    highest_user_wasted_percent: float | None = 0.1

    @classmethod
    def parse(cls, texts: Mapping[str, str]) -> Thresholds:
        """The thresholds given as texts by dive's rule names (as a `.dive-ci` file names them); a
        rule not named keeps its default. Raises ValueError for a text its rule cannot read."""
        given: dict[str, Any] = {rule.field: rule.parse(texts[rule.name]) for rule in RULES if rule.name in texts}
        return replace(cls(), **given)


@dataclass(frozen=True)
class Rule:
    """One CI rule: the measure it checks, where its threshold is kept, which side of the threshold
    fails and how the failure is worded."""

    name: str  # dive's name
    field: str  # the Thresholds field that holds its threshold
    parse: Callable[[str], float | None]
    measure: Callable[[ImageFiles], float]
    fails_below: bool  # the threshold is the least value allowed (else the most)
    failure: str  # the message of a failure, with {measured} and {threshold}

    def check(self, files: ImageFiles, thresholds: Thresholds) -> RuleResult:
        threshold = getattr(thresholds, self.field)
        if threshold is None:
            return RuleResult(self.name, RuleStatus.SKIP, "rule disabled")
        measured = self.measure(files)
        if (measured < threshold) if self.fails_below else (measured > threshold):
            return RuleResult(self.name, RuleStatus.FAIL, self.failure.format(measured=measured, threshold=threshold))
        return RuleResult(self.name, RuleStatus.PASS, "")


RULES = (
    Rule(
        "lowestEfficiency",
        "lowest_efficiency",
        parse_ratio,
        lambda files: files.efficiency,
        fails_below=True,
        failure="image efficiency is too low (efficiency={measured:.4f} < threshold={threshold})",
    ),
    Rule(
        "highestWastedBytes",
        "highest_wasted_bytes",
        parse_bytes,
        lambda files: files.wasted_bytes,
        fails_below=False,
        failure="too many bytes wasted (wasted-bytes={measured} > threshold={threshold})",
    ),
    Rule(
        "highestUserWastedPercent",
        "highest_user_wasted_percent",
        partial(parse_ratio, most=None),
        lambda files: files.user_wasted_ratio,
        fails_below=False,
        failure="too many bytes wasted, relative to the user bytes added "
        "(%-user-wasted-bytes={measured:.4f} > threshold={threshold})",
    ),
)


def evaluate(files: ImageFiles, thresholds: Thresholds) -> list[RuleResult]:
    """Each rule's result, in dive's order."""
    return [rule.check(files, thresholds) for rule in RULES]
