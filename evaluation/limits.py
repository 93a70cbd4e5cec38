"""The known limits of the evaluation's intervals, as the last truth check wrote them
(evaluation/known_limits.json, made by `bip evaluate-check --limits`): the one reader of that file
for the report, the band effects and the check itself."""

from __future__ import annotations

import json
from pathlib import Path

KNOWN_LIMITS = Path(__file__).with_name("known_limits.json")
BAND_COVERAGE_CHECKED = 0.90   # band intervals covering at least this share of their truths count as checked


def read_known_limits(path: Path = KNOWN_LIMITS) -> dict:
    """The file's content; {} when it is missing or unreadable (no check has been run)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def band_interval_check(kind: str, path: Path = KNOWN_LIMITS) -> dict:
    """Whether the last truth check found this kind's readiness-band intervals honest: their
    coverage over the check's seeds at least BAND_COVERAGE_CHECKED, and so did all kinds' together.
    {"checked": bool, "coverage": float | None, "estimates": int, "seeds": int}."""
    bands = read_known_limits(path).get("band_effects")
    if not bands:
        return {"checked": False, "coverage": None, "estimates": 0, "seeds": 0}
    coverage = bands.get("by_kind", {}).get(kind)
    checked = bool(bands.get("checked") and coverage is not None and coverage >= bands.get("threshold", 1.0))
    return {"checked": checked, "coverage": coverage, "estimates": bands.get("estimates", 0),
            "seeds": bands.get("seeds", 0)}


POLICY_COVERAGE_CHECKED = 0.9   # the rule's true value inside its interval on at least 9 of 10 seeds


def policy_interval_check(path: Path = KNOWN_LIMITS) -> dict:
    """Whether the last `bip evaluate-check --policy --limits` found the targeting rule's value
    intervals honest (coverage of the true value at least POLICY_COVERAGE_CHECKED) and its true
    gain over current practice positive on average. {"checked": bool, "coverage", "seeds",
    "mean_true_gain", "mean_regret"} (None where no check has been run)."""
    entry = read_known_limits(path).get("policy")
    if not entry:
        return {"checked": False, "coverage": None, "seeds": 0, "mean_true_gain": None, "mean_regret": None}
    return {**entry, "checked": bool(entry.get("coverage", 0) >= POLICY_COVERAGE_CHECKED
                                     and entry.get("mean_true_gain", 0) > 0)}
