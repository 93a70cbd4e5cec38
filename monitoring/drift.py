"""Drift of a window of scored occasions against the model's reference profile.

Per aspect (indicator x respondent x rating/change, and the score) two numbers:
- PSI, population stability index: sum over categories of (q - r) ln(q / r), r and q the
  reference and current shares (each floored at 1e-4 so an empty category stays finite). An
  effect size that does not grow with the window: below 0.1 stable, 0.1-0.25 watch, from 0.25
  act (the usual credit-scoring reading).
- the p-value of a chi-square test of homogeneity (reference counts against current counts):
  is the difference more than sampling noise?
An aspect is flagged only when both agree: PSI at or over the threshold AND p below 0.01
(Settings.psi_watch, psi_act, drift_p_value). PSI alone would flag noise in a small window;
the test alone would flag trivial differences in a large one. Fewer than
Settings.drift_min_count scores in the window: no verdict. An indicator takes the worst status
of its aspects.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2_contingency

from monitoring.estimate import expected_from_bins
from monitoring.profile import SCORE, SCORE_FINE

SHARE_FLOOR = 1e-4
STATUS_ORDER = {"insufficient_data": -1, "ok": 0, "watch": 1, "act": 2}


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same categories."""
    r = np.maximum(np.asarray(reference, float) / max(np.sum(reference), 1), SHARE_FLOOR)
    q = np.maximum(np.asarray(current, float) / max(np.sum(current), 1), SHARE_FLOOR)
    return float(np.sum((q - r) * np.log(q / r)))


def chi_square_p(reference: np.ndarray, current: np.ndarray) -> float:
    """p-value of the chi-square test that both count vectors come from one distribution."""
    table = np.vstack([reference, current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def status(psi_value: float, p_value: float, n: int, settings) -> str:
    if n < settings.drift_min_count:
        return "insufficient_data"
    if p_value >= settings.drift_p_value or psi_value < settings.psi_watch:
        return "ok"
    return "act" if psi_value >= settings.psi_act else "watch"


def drift_report(profile: dict, window: dict[str, dict[str, int]], settings) -> dict:
    """Drift per aspect, per indicator and for the score, and the label-free estimates, for a
    window of counts (from monitoring.window or monitoring.profile.count_for_profile)."""
    aspects, indicators = {}, {}
    n = int(sum(window.get(SCORE, {}).values()))
    for name, reference in profile["aspects"].items():
        categories = reference["categories"]
        r = np.array([reference["counts"].get(c, 0) for c in categories])
        q = np.array([window.get(name, {}).get(c, 0) for c in categories])
        value, p = psi(r, q), chi_square_p(r, q)
        verdict = status(value, p, n, settings)
        aspects[name] = {"indicator": reference["indicator"], "respondent": reference["respondent"],
                         "aspect": reference["aspect"], "psi": value, "p_value": p, "status": verdict,
                         "reference_shares": (r / max(r.sum(), 1)).round(4).tolist(),
                         "current_shares": (q / max(q.sum(), 1)).round(4).tolist(), "categories": categories}
        key = reference["indicator"]
        if key is not None:
            worst = indicators.get(key, {"status": "insufficient_data", "psi": 0.0})
            if STATUS_ORDER[verdict] > STATUS_ORDER[worst["status"]] or \
               (verdict == worst["status"] and value > worst["psi"]):
                indicators[key] = {"status": verdict, "psi": value, "p_value": p, "worst_aspect": name}
    overall = max((a["status"] for a in aspects.values()), key=STATUS_ORDER.get, default="insufficient_data")
    return {
        "n": n, "overall": overall,
        "thresholds": {"psi_watch": settings.psi_watch, "psi_act": settings.psi_act,
                       "p_value": settings.drift_p_value, "min_count": settings.drift_min_count},
        "indicators": indicators, "score": aspects.get(SCORE), "aspects": aspects,
        "estimated_performance": expected_from_bins(window.get(SCORE_FINE, {}), profile["fine_bins"]),
        "reference_expected_performance": profile.get("expected"),
    }
