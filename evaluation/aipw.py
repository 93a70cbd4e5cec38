"""Augmented inverse propensity weighting with cross-fitting, trimming and influence-function
intervals, clustered by person (one person can contribute several occasions).

References: Robins, Rotnitzky & Zhao (1994); Chernozhukov et al. (2018) double/debiased ML; the
ATT score follows their Section 5.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

Z95 = 1.959963984540054


@dataclass
class Nuisances:
    propensity: np.ndarray   # e(x) = P(T=1 | x), cross-fitted
    mu0: np.ndarray          # E[Y | T=0, x], cross-fitted
    mu1: np.ndarray          # E[Y | T=1, x], cross-fitted
    kept: np.ndarray         # bool: inside the trimming bounds


@dataclass
class Estimate:
    estimand: str
    estimate: float
    se: float
    n_treated: int
    n_control: int
    influence: np.ndarray = field(repr=False)

    @property
    def ci(self) -> tuple[float, float]:
        return self.estimate - Z95 * self.se, self.estimate + Z95 * self.se


def _propensity_model(seed: int):
    # boosted trees for flexibility, averaged with a logistic model for stable tails
    return (HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=200, l2_regularization=1.0,
                                           min_samples_leaf=40, random_state=seed),
            make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)))


def _outcome_model(binary: bool, seed: int):
    if binary:
        return HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=200, l2_regularization=1.0,
                                              min_samples_leaf=40, random_state=seed)
    return HistGradientBoostingRegressor(max_depth=3, learning_rate=0.05, max_iter=200, l2_regularization=1.0,
                                         min_samples_leaf=40, random_state=seed)


def _predict(model, X, binary: bool) -> np.ndarray:
    return model.predict_proba(X)[:, 1] if binary else model.predict(X)


def fold_of(clusters: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Cross-fitting folds that keep a cluster (person) together."""
    unique, inverse = np.unique(clusters, return_inverse=True)
    assignment = np.random.default_rng(seed).permutation(len(unique)) % folds
    return assignment[inverse]


def cross_fit(X: np.ndarray, t: np.ndarray, y: np.ndarray, clusters: np.ndarray, seed: int = 0,
              folds: int = 5, trim: float = 0.02, estimand: str = "ATT") -> Nuisances:
    """Out-of-fold propensity and outcome predictions, with units flagged for trimming: for the
    ATE those with e outside [trim, 1 - trim]; for the ATT only those with e above 1 - trim
    (comparison units with small e get small weights anyway, and dropping treated units would
    change the estimand)."""
    binary = set(np.unique(y)) <= {0, 1}
    fold = fold_of(clusters, folds, seed)
    e, mu0, mu1 = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
    for k in range(folds):
        train, test = fold != k, fold == k
        boosted, logistic = _propensity_model(seed + k)
        boosted.fit(X[train], t[train])
        logistic.fit(X[train], t[train])
        e[test] = 0.5 * (boosted.predict_proba(X[test])[:, 1] + logistic.predict_proba(X[test])[:, 1])
        for arm, target in ((0, mu0), (1, mu1)):
            rows = train & (t == arm)
            if len(np.unique(y[rows])) < 2 and binary:
                target[test] = y[rows].mean() if rows.any() else 0.0
                continue
            model = _outcome_model(binary, seed + k)
            model.fit(X[rows], y[rows])
            target[test] = _predict(model, X[test], binary)
    kept = (e <= 1 - trim) if estimand == "ATT" else (e >= trim) & (e <= 1 - trim)
    return Nuisances(e, mu0, mu1, kept)


def _cluster_se(influence: np.ndarray, clusters: np.ndarray) -> float:
    """Standard error of a mean of influence values, summed within clusters first."""
    n = len(influence)
    _, inverse = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inverse, weights=influence)
    return float(np.sqrt(np.sum(sums ** 2)) / n)


def aipw(y: np.ndarray, t: np.ndarray, nuisances: Nuisances, clusters: np.ndarray, estimand: str = "ATT",
         subset: np.ndarray | None = None) -> Estimate:
    """The doubly robust estimate on the kept units (optionally a subset of them)."""
    keep = nuisances.kept if subset is None else nuisances.kept & subset
    y, t, c = y[keep], t[keep].astype(float), clusters[keep]
    e, mu0, mu1 = nuisances.propensity[keep], nuisances.mu0[keep], nuisances.mu1[keep]
    e = np.clip(e, 1e-3, 1 - 1e-3)  # ATT keeps small propensities: guard the ATE ratio only
    if estimand == "ATE":
        psi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
        tau = float(psi.mean())
        influence = psi - tau
    elif estimand == "ATT":
        share = t.mean()
        residual = y - mu0
        tau = float(np.sum(t * residual - (1 - t) * e / (1 - e) * residual) / np.sum(t))
        influence = (t * (residual - tau) - (1 - t) * e / (1 - e) * residual) / share
    else:
        raise ValueError(f"estimand {estimand!r}: allowed ATT or ATE")
    return Estimate(estimand, tau, _cluster_se(influence, c), int(t.sum()), int((1 - t).sum()), influence)


def naive_difference(y: np.ndarray, t: np.ndarray, clusters: np.ndarray) -> Estimate:
    treated, control = t == 1, t == 0
    tau = float(y[treated].mean() - y[control].mean())
    influence = np.where(treated, (y - y[treated].mean()) / treated.mean(), -(y - y[control].mean()) / control.mean())
    return Estimate("naive", tau, _cluster_se(influence, clusters), int(treated.sum()), int(control.sum()), influence)


def standardized_mean_differences(X: np.ndarray, t: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """SMD per column: (weighted) treated mean minus control mean over the pooled unweighted SD."""
    w = np.ones(len(t)) if weights is None else weights
    treated, control = t == 1, t == 0
    mean_t = np.average(X[treated], axis=0, weights=w[treated])
    mean_c = np.average(X[control], axis=0, weights=w[control])
    pooled = np.sqrt((X[treated].var(axis=0) + X[control].var(axis=0)) / 2)
    return np.where(pooled > 0, (mean_t - mean_c) / np.where(pooled > 0, pooled, 1), 0.0)


def balancing_weights(t: np.ndarray, e: np.ndarray, estimand: str) -> np.ndarray:
    if estimand == "ATT":
        return np.where(t == 1, 1.0, e / (1 - e))
    return np.where(t == 1, 1 / e, 1 / (1 - e))


def cross_fit_linear_outcome(X: np.ndarray, t: np.ndarray, y: np.ndarray, clusters: np.ndarray,
                             seed: int = 0, folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted per-arm ridge regressions: a fast outcome model for the many progression
    outcomes (the propensity model stays the flexible one, so the estimate stays doubly robust)."""
    from sklearn.linear_model import Ridge
    fold = fold_of(clusters, folds, seed)
    mu0, mu1 = np.zeros(len(y)), np.zeros(len(y))
    for k in range(folds):
        train, test = fold != k, fold == k
        for arm, target in ((0, mu0), (1, mu1)):
            rows = train & (t == arm)
            model = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(X[rows], y[rows])
            target[test] = model.predict(X[test])
    return mu0, mu1
