"""Small generic-mode cohorts with a known effect, for checking intervals and the sensitivity
analysis against a truth (bench/randomized.py, bench/sensitivity.py and their tests).

`draw_trial`: a randomized trial like JOBS II (binary re-employment, 10 covariates, about two in
three treated). `draw_confounded`: an observational cohort whose confounders a (observed) and u
(to hide from the evaluation) enter who is treated and the outcome with the same strength.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TRIAL_COVARIATES = [f"x{i}" for i in range(10)]
CONFOUNDED_OBSERVED = ["x1", "x2", "x3", "x4", "a"]   # u is left out


def draw_trial(rows: int, seed: int, share_treated: float = 0.65, log_odds_effect: float = 0.35
               ) -> tuple[pd.DataFrame, float]:
    """One trial: the table (treated, job, x0..x9) and its true effect on the treated, the mean
    over its treated rows of p1(x) - p0(x)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(TRIAL_COVARIATES)))
    X[:, 5:] = (X[:, 5:] > 0).astype(float)                  # half the covariates binary, as in a register
    coefficients = np.array([0.6, -0.4, 0.3, 0.0, 0.2, 0.5, -0.3, 0.0, 0.2, 0.1])
    base = -0.2 + X @ coefficients
    treated = (rng.random(rows) < share_treated).astype(int)
    p0 = 1 / (1 + np.exp(-base))
    p1 = 1 / (1 + np.exp(-(base + log_odds_effect)))
    job = (rng.random(rows) < np.where(treated == 1, p1, p0)).astype(int)
    frame = pd.DataFrame(X, columns=TRIAL_COVARIATES).assign(treated=treated, job=job)
    return frame, float((p1 - p0)[treated == 1].mean())


def draw_confounded(rows: int, seed: int, strength: float = 0.6) -> tuple[pd.DataFrame, float]:
    """Observational cohort with confounders a and u of equal strength (hide u); the true effect
    on the treated (mean of p1 - p0 over the treated rows)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    a, u = rng.normal(size=rows), rng.normal(size=rows)
    logit_t = -1.3 + 0.5 * x[:, 0] - 0.3 * x[:, 1] + strength * a + strength * u
    treated = (rng.random(rows) < 1 / (1 + np.exp(-logit_t))).astype(int)
    base = -0.4 + 0.4 * x[:, 1] + 0.3 * x[:, 2] + 0.2 * x[:, 0] + strength * a + strength * u
    p0, p1 = 1 / (1 + np.exp(-base)), 1 / (1 + np.exp(-(base + 0.4)))
    y = (rng.random(rows) < np.where(treated == 1, p1, p0)).astype(int)
    frame = pd.DataFrame(x, columns=["x1", "x2", "x3", "x4"]).assign(a=a, u=u, treated=treated, job=y)
    return frame, float((p1 - p0)[treated == 1].mean())
