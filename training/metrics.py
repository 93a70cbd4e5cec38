"""Model quality metrics: discrimination, accuracy of probabilities, calibration, by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

_EPS = 1e-6


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Sum over equal-width probability bins of (bin share) * |mean outcome - mean probability|."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    return float(total)


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Fit logit P(y=1) = intercept + slope * logit(p); perfect calibration is (1, 0)."""
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    logit = np.log(p / (1 - p)).reshape(-1, 1)
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    model = LogisticRegression(C=np.inf, max_iter=1000).fit(logit, y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def metric_set(y, p) -> dict[str, float]:
    y, p = np.asarray(y, int), np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    both = len(np.unique(y)) == 2
    slope, intercept = calibration_slope_intercept(y, p)
    return {
        "n": float(len(y)),
        "positives": float(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "mean_probability": float(p.mean()),
        "observed_rate": float(y.mean()),
    }


def group_metrics(frame: pd.DataFrame, group_columns: list[str], probability: str = "probability",
                  label: str = "label") -> dict[str, dict[str, dict[str, float]]]:
    """{column: {value: metric_set}} for each grouping column."""
    out = {}
    for column in group_columns:
        out[column] = {str(value): metric_set(part[label], part[probability])
                       for value, part in frame.groupby(column, observed=True)}
    return out
