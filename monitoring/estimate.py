"""Performance without labels, from calibrated scores (confidence-based performance estimation).

If the model is calibrated on the current population, a citizen scored p is a positive with
probability p. Then, with no outcome known yet:
- the expected positive rate is mean(p), and the observed rate should fall within
  mean(p) +- 1.96 sqrt(sum p(1-p)) / n (expected calibration-in-the-large);
- the expected ROC AUC is the chance that a random positive outranks a random negative when
  each citizen counts as positive with weight p and as negative with weight 1 - p;
- the expected Brier score is mean(p(1-p)).
Covariate shift (a different mix of citizens) moves these estimates as it moves the realized
figures; a change in how ratings relate to jobs (concept shift) does not, and only realized
outcomes (`bip monitor --data`) show it: compare the two when outcomes arrive.
"""

from __future__ import annotations

import numpy as np

Z95 = 1.959964


def expected_roc_auc(probability: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Expected ROC AUC of scores `probability` when each row is positive with probability p
    (ties count one half). `weights` are row counts (for binned scores)."""
    p = np.asarray(probability, dtype=np.float64)
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=np.float64)
    scores, inverse = np.unique(p, return_inverse=True)
    positive = np.bincount(inverse, weights=w * p, minlength=len(scores))
    negative = np.bincount(inverse, weights=w * (1 - p), minlength=len(scores))
    below = np.cumsum(negative) - negative            # negative weight strictly below each score
    total = positive.sum() * negative.sum()
    if total <= 0:
        return float("nan")
    return float((positive * (below + 0.5 * negative)).sum() / total)


def auc_interval(auc: float, positives: float, negatives: float) -> tuple[float, float]:
    """95% interval for a ROC AUC on this many positives and negatives (Hanley and McNeil)."""
    if not (positives > 0 and negatives > 0) or not np.isfinite(auc):
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc ** 2)
                + (negatives - 1) * (q2 - auc ** 2)) / (positives * negatives)
    half = Z95 * np.sqrt(max(variance, 0.0))
    return float(max(auc - half, 0.0)), float(min(auc + half, 1.0))


def expected_performance(probability: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """Label-free estimates for a population of calibrated scores (see the module docstring)."""
    p = np.asarray(probability, dtype=np.float64)
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=np.float64)
    n = float(w.sum())
    if n == 0:
        return {"n": 0}
    rate = float((w * p).sum() / n)
    half = Z95 * float(np.sqrt((w * p * (1 - p)).sum())) / n
    auc = expected_roc_auc(p, w)
    positives = rate * n
    low, high = auc_interval(auc, positives, n - positives)
    return {"n": int(round(n)), "positive_rate": rate, "positive_rate_low": max(rate - half, 0.0),
            "positive_rate_high": min(rate + half, 1.0), "roc_auc": auc, "roc_auc_low": low,
            "roc_auc_high": high, "brier": float((w * p * (1 - p)).sum() / n)}


def expected_from_bins(fine_counts: dict[str, int], bins: int) -> dict:
    """The same estimates from counts of scores in `bins` equal-width probability bins
    (what the service keeps), each bin at its midpoint."""
    if not fine_counts:
        return {"n": 0}
    index = np.array([int(k) for k in fine_counts], dtype=np.float64)
    counts = np.array(list(fine_counts.values()), dtype=np.float64)
    return expected_performance((index + 0.5) / bins, counts)


def realized_performance(y: np.ndarray, probability: np.ndarray) -> dict:
    """What the outcomes say: positive rate, ROC AUC (with its interval), Brier."""
    from sklearn.metrics import roc_auc_score
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(probability, dtype=np.float64)
    positives = int(y.sum())
    negatives = int(len(y) - positives)
    auc = float(roc_auc_score(y, p)) if positives and negatives else float("nan")
    low, high = auc_interval(auc, positives, negatives)
    return {"n": int(len(y)), "positives": positives, "positive_rate": float(y.mean()) if len(y) else float("nan"),
            "roc_auc": auc, "roc_auc_low": low, "roc_auc_high": high,
            "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan")}
