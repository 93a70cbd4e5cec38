"""Augmented inverse propensity weighting with cross-fitting, trimming and influence-function
intervals, clustered by person (one person can contribute several occasions), repeated over
several fold assignments and aggregated by the median (so the interval also sees how much the
estimate moves with the split).

References: Robins, Rotnitzky & Zhao (1994); Chernozhukov et al. (2018) double/debiased ML; the
ATT score follows their Section 5.1, the median aggregation over repeated splits their Section 3.4.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

Z95 = 1.959963984540054

# How the folds of a cross-fit run: None = one after another here; evaluate() sets a Dask map
# when BIP_DASK_ADDRESS names a cluster (a context variable, so the estimators keep their signatures).
FOLD_MAP: ContextVar = ContextVar("fold_map", default=None)


@dataclass
class Nuisances:
    propensity: np.ndarray   # e(x) = P(T=1 | x), cross-fitted
    mu0: np.ndarray          # E[Y | T=0, x], cross-fitted
    mu1: np.ndarray          # E[Y | T=1, x], cross-fitted (the ATT's estimate does not use it; its
                             # sensitivity analysis does, for the outcome's residual variance)
    kept: np.ndarray         # bool: inside the trimming bounds


@dataclass
class Estimate:
    estimand: str
    estimate: float
    se: float
    n_treated: int
    n_control: int
    influence: np.ndarray = field(repr=False)
    se_influence: float | None = None     # the clustered influence-function SE of the first fold assignment
    repeats: list[float] = field(default_factory=list, repr=False)   # theta_s per fold assignment

    @property
    def ci(self) -> tuple[float, float]:
        return self.estimate - Z95 * self.se, self.estimate + Z95 * self.se


def boosted(binary: bool, seed: int):
    """Boosted trees of fixed size (200 trees of depth 3 at rate 0.05, L2 1.0), XGBoost's
    histogram method on one thread: the configuration of the 20-seed truth check in the README.
    It replaced scikit-learn's HistGradientBoosting of the same size for speed (one fit on
    27,830 x 107: 0.8 s against 2.6 s). Leaves need a hessian weight of 2 (about 40 rows at a 5%
    rate) for a 0/1 target and 40 rows for a continuous one, like the former min_samples_leaf=40."""
    common = dict(n_estimators=200, max_depth=3, learning_rate=0.05, reg_lambda=1.0, tree_method="hist",
                  max_bin=64, n_jobs=1, random_state=seed)
    if binary:
        return XGBClassifier(min_child_weight=2.0, **common)
    return XGBRegressor(min_child_weight=40.0, **common)


def _propensity(X_train, t_train, X_test, seed: int) -> np.ndarray:
    """Boosted trees for flexibility, averaged with a logistic regression for stable tails."""
    trees = boosted(True, seed).fit(X_train, t_train).predict_proba(X_test)[:, 1]
    logistic = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(X_train, t_train)
    return 0.5 * (trees + logistic.predict_proba(X_test)[:, 1])


def _predict(model, X, binary: bool) -> np.ndarray:
    return model.predict_proba(X)[:, 1] if binary else model.predict(X)


def cluster_codes(ids) -> np.ndarray:
    """Cluster ids (person ids, as strings) as integer codes numbered in the ids' sorted order.
    Folds (`fold_of`) and clustered SEs are exactly those of the ids themselves, but every later
    `np.unique` sorts integers instead of strings (43 s a kind in the national job)."""
    return np.unique(np.asarray(ids).astype(str), return_inverse=True)[1].astype(np.int64)


def fold_of(clusters: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Cross-fitting folds that keep a cluster (person) together."""
    unique, inverse = np.unique(clusters, return_inverse=True)
    assignment = np.random.default_rng(seed).permutation(len(unique)) % folds
    return assignment[inverse]


def _fit_arm(X, y, rows, binary, seed):
    """A fitted outcome model for the rows, or the constant when there is nothing to learn."""
    if not rows.any():
        return 0.0
    if len(np.unique(y[rows])) < 2 or rows.sum() < 50:
        return float(y[rows].mean())
    return boosted(binary, seed).fit(X[rows], y[rows])


def _apply(model, X, binary):
    return np.full(len(X), model) if isinstance(model, float) else _predict(model, X, binary)


def cross_fit(X: np.ndarray, t: np.ndarray, y: np.ndarray | None, clusters: np.ndarray, seed: int = 0,
              folds: int = 5, trim: float = 0.02, estimand: str = "ATT", fold: np.ndarray | None = None,
              propensity: float | None = None, treated_outcome: bool = True) -> Nuisances:
    """Out-of-fold propensity and outcome predictions, with units flagged for trimming: for the
    ATE those with e outside [trim, 1 - trim]; for the ATT only those with e above 1 - trim
    (comparison units with small e get small weights anyway, and dropping treated units would
    change the estimand). The ATT's estimate needs only the comparison arm's outcome model; the
    treated arm's (a fit on the few treated rows) serves its sensitivity analysis.

    `propensity` given (a randomized design): that constant, no propensity model. `y` None:
    propensity only. `treated_outcome` False: no treated-arm model for the ATT (mu1 stays zero;
    only the sensitivity analysis reads it).
    """
    n = len(t)
    binary = y is not None and set(np.unique(y)) <= {0, 1}
    fold = fold_of(clusters, folds, seed) if fold is None else fold
    e, mu0, mu1 = np.full(n, propensity if propensity is not None else 0.0), np.zeros(n), np.zeros(n)
    ks = [int(k) for k in np.unique(fold)]
    options = dict(seed=seed, binary=binary, estimand=estimand, propensity=propensity,
                   treated_outcome=treated_outcome or estimand == "ATE")
    mapper = FOLD_MAP.get()
    if mapper is None:
        parts = [fit_fold(X, t, y, fold, k, **options) for k in ks]
    else:
        parts = mapper(fit_fold, X, t, y, fold, ks, options)
    for k, (e_k, mu0_k, mu1_k) in zip(ks, parts):
        test = fold == k
        if e_k is not None:
            e[test] = e_k
        mu0[test], mu1[test] = mu0_k, mu1_k
    kept = (e <= 1 - trim) if estimand == "ATT" else (e >= trim) & (e <= 1 - trim)
    return Nuisances(e, mu0, mu1, kept)


def fit_fold(X, t, y, fold, k: int, seed: int, binary: bool, estimand: str, propensity: float | None,
             treated_outcome: bool = True):
    """One fold of the cross-fit: models fitted on the other folds, predictions for fold k
    (propensity or None when it is known, mu0, mu1). A pure function of its inputs, so folds can
    run anywhere (see FOLD_MAP)."""
    train, test = fold != k, fold == k
    e = _propensity(X[train], t[train], X[test], seed + k) if propensity is None else None
    mu0 = mu1 = np.zeros(int(test.sum()))
    if y is not None:
        mu0 = _apply(_fit_arm(X, y, train & (t == 0), binary, seed + k), X[test], binary)
        if treated_outcome:
            mu1 = _apply(_fit_arm(X, y, train & (t == 1), binary, seed + k), X[test], binary)
    return e, mu0, mu1


def dask_fold_map(client):
    """A FOLD_MAP that fits the folds in parallel on a Dask cluster: the arrays are sent to the
    workers once per cross-fit, each fold is one task, and the results equal the local loop's."""
    def run(function, X, t, y, fold, ks, options):
        arrays = [X, t, fold] + ([y] if y is not None else [])
        shared = client.scatter(arrays, broadcast=True, hash=False)   # fresh keys: no clash between cross-fits
        X_, t_, fold_ = shared[:3]
        y_ = shared[3] if y is not None else None
        tasks = [client.submit(function, X_, t_, y_, fold_, k, pure=False, **options) for k in ks]
        return client.gather(tasks)
    return run


def _cluster_se(influence: np.ndarray, clusters: np.ndarray) -> float:
    """Standard error of a mean of influence values, summed within clusters first, with the
    small-sample factor G/(G-1) for G clusters."""
    n = len(influence)
    _, inverse = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inverse, weights=influence)
    g = len(sums)
    return float(np.sqrt(np.sum(sums ** 2) * g / max(g - 1, 1)) / n)


def aipw(y: np.ndarray, t: np.ndarray, nuisances: Nuisances, clusters: np.ndarray, estimand: str = "ATT",
         subset: np.ndarray | None = None, z: float = Z95) -> Estimate:
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
    se = _cluster_se(influence, c)
    return Estimate(estimand, tau, se, int(t.sum()), int((1 - t).sum()), influence, se_influence=se)


def repeat_seed(seed: int, s: int) -> int:
    """The seed of the s-th fold assignment; the first is `seed` itself (so one repetition is the
    single cross-fit of before)."""
    return seed + 7919 * s


def cross_fit_repeated(X: np.ndarray, t: np.ndarray, y: np.ndarray | None, clusters: np.ndarray, seed: int = 0,
                       folds: int = 5, repeats: int = 1, trim: float = 0.02, estimand: str = "ATT",
                       propensity: float | None = None, treated_outcome: bool = True) -> list[Nuisances]:
    """`repeats` cross-fits, each on its own random assignment of persons to folds (and its own
    model seeds): the input of the median aggregation in `aipw_repeated`."""
    return [cross_fit(X, t, y, clusters, seed=repeat_seed(seed, s), folds=folds, trim=trim, estimand=estimand,
                      propensity=propensity, treated_outcome=treated_outcome) for s in range(repeats)]


def aipw_repeated(y: np.ndarray, t: np.ndarray, repeats: list[Nuisances], clusters: np.ndarray,
                  estimand: str = "ATT", subset: np.ndarray | None = None) -> Estimate:
    """The estimate over several cross-fits, aggregated as in Chernozhukov et al. (2018, eq. 3.7
    and the variance after it): theta = median of theta_s, variance = median of
    se_s^2 + (theta_s - theta)^2, so the spread that comes from the random split itself enters the
    interval instead of being ignored (one split) or guessed from two halves. Each se_s is the
    person-clustered influence-function SE with G/(G-1). Counts are the first cross-fit's."""
    estimates = [aipw(y, t, n, clusters, estimand, subset=subset) for n in repeats]
    thetas = np.array([e.estimate for e in estimates])
    theta = float(np.median(thetas))
    variance = float(np.median(np.square([e.se for e in estimates]) + np.square(thetas - theta)))
    first = estimates[0]
    return Estimate(first.estimand, theta, float(np.sqrt(variance)), first.n_treated, first.n_control,
                    first.influence, se_influence=first.se, repeats=thetas.tolist())


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
    outcomes (the propensity model stays the flexible one, so the estimate stays doubly robust).
    `y` may hold several outcomes as columns: one fit per fold and arm serves them all."""
    fold = fold_of(clusters, folds, seed)
    mu0, mu1 = np.zeros(y.shape), np.zeros(y.shape)
    for k in range(folds):
        train, test = fold != k, fold == k
        for arm, target in ((0, mu0), (1, mu1)):
            rows = train & (t == arm)
            model = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(X[rows], y[rows])
            # scikit-learn answers a single target column with 1-D predictions: keep y's shape
            target[test] = model.predict(X[test]).reshape(target[test].shape)
    return mu0, mu1
