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
from dataclasses import dataclass

from dockerscope.service.file_analysis import ImageFiles

DISABLED = "disabled"
DEFAULT_THRESHOLDS = {
    "lowestEfficiency": "0.9",
    "highestWastedBytes": DISABLED,
    "highestUserWastedPercent": "0.1",
}
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


def evaluate(files: ImageFiles, thresholds: dict[str, str]) -> list[RuleResult]:
    """Each rule's result; `thresholds` maps rule names to their text (defaults for the missing)."""
    given = {**DEFAULT_THRESHOLDS, **thresholds}
    results: list[RuleResult] = []
    efficiency = parse_ratio(given["lowestEfficiency"])
    if efficiency is None:
        results.append(RuleResult("lowestEfficiency", RuleStatus.SKIP, "rule disabled"))
    elif files.efficiency < efficiency:
        message = f"image efficiency is too low (efficiency={files.efficiency:.4f} < threshold={efficiency})"
        results.append(RuleResult("lowestEfficiency", RuleStatus.FAIL, message))
    else:
        results.append(RuleResult("lowestEfficiency", RuleStatus.PASS, ""))
    wasted = parse_bytes(given["highestWastedBytes"])
    if wasted is None:
        results.append(RuleResult("highestWastedBytes", RuleStatus.SKIP, "rule disabled"))
    elif files.wasted_bytes > wasted:
        message = f"too many bytes wasted (wasted-bytes={files.wasted_bytes} > threshold={wasted})"
        results.append(RuleResult("highestWastedBytes", RuleStatus.FAIL, message))
    else:
        results.append(RuleResult("highestWastedBytes", RuleStatus.PASS, ""))
    user = parse_ratio(given["highestUserWastedPercent"], most=None)
    if user is None:
        results.append(RuleResult("highestUserWastedPercent", RuleStatus.SKIP, "rule disabled"))
    elif files.user_wasted_ratio > user:
        message = (
            "too many bytes wasted, relative to the user bytes added "
            f"(%-user-wasted-bytes={files.user_wasted_ratio:.4f} > threshold={user})"
        )
        results.append(RuleResult("highestUserWastedPercent", RuleStatus.FAIL, message))
    else:
        results.append(RuleResult("highestUserWastedPercent", RuleStatus.PASS, ""))
    return results
