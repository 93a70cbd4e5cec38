"""Sensitivity to hidden confounding: omitted-variable-bias bounds for the doubly robust estimate.

Chernozhukov, Cinelli, Newey, Sharma & Syrgkanis (2022), "Long story short: omitted variable bias
in causal machine learning". An unmeasured factor A that the evaluation left out shifts the estimate
by at most

    |bias| <= |rho| * sqrt(cf_y * cf_d / (1 - cf_d)) * sqrt(sigma2 * nu2),

where sigma2 = E[(Y - g(D, X))^2] is the outcome's residual variance, nu2 = E[alpha(D, X)^2] the
size of the Riesz representer (for the ATT: alpha = D/p - (1-D) e/((1-e) p)), cf_y the share of the
outcome's residual variance that A would explain, cf_d the relative gain in the Riesz
representer's variance that A would bring (for a binary treatment: how much better A predicts who
is treated), and rho in [-1, 1] how adversarially the two line up (1: worst case).

Everything here is computed from the cross-fitted nuisances the estimate already has (no refit),
per fold assignment and aggregated by the median as the estimate is. Benchmarks ("an unmeasured
factor as strong as the job-search rating") refit the nuisances once without that covariate group
and read cf_y, cf_d and rho off the change, as DoubleML's `sensitivity_benchmark` does.

The formulas follow DoubleML 0.11 (`_sensitivity_element_est`, `_calc_sensitivity_analysis`,
`gain_statistics`) so the two can be compared on the same data (bench/sensitivity.py).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from evaluation.aipw import Nuisances, _cluster_se, cross_fit_repeated

DEFAULT_STRENGTH = 0.03   # cf_y = cf_d = 3%: DoubleML's default scenario


def sensitivity_elements(y: np.ndarray, t: np.ndarray, nuisances: Nuisances, estimand: str = "ATT") -> dict:
    """sigma2, nu2, their per-row contributions, the estimate and its influence values on the
    rows kept after trimming (as `aipw` uses them)."""
    keep = nuisances.kept
    y, t = y[keep].astype(float), t[keep].astype(float)
    e = np.clip(nuisances.propensity[keep], 1e-3, 1 - 1e-3)
    mu0, mu1 = nuisances.mu0[keep], nuisances.mu1[keep]
    residual_sq = np.square(y - t * mu1 - (1 - t) * mu0)
    if estimand == "ATT":
        p = t.mean()
        riesz = t / p - (1 - t) * e / ((1 - e) * p)
        m_alpha = t / (p * p * (1 - e))          # E[m(W, alpha)] with weights d/p and e/p
        residual = y - mu0
        theta = float(np.sum(t * residual - (1 - t) * e / (1 - e) * residual) / np.sum(t))
        influence = (t * (residual - theta) - (1 - t) * e / (1 - e) * residual) / p
    elif estimand == "ATE":
        riesz = t / e - (1 - t) / (1 - e)
        m_alpha = 1 / e + 1 / (1 - e)
        psi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
        theta = float(psi.mean())
        influence = psi - theta
    else:
        raise ValueError(f"estimand {estimand!r}: allowed ATT or ATE")
    nu2_element = 2 * m_alpha - np.square(riesz)
    sigma2, nu2 = float(residual_sq.mean()), float(nu2_element.mean())
    return {"theta": theta, "influence": influence, "sigma2": sigma2, "nu2": nu2,
            "psi_sigma2": residual_sq - sigma2, "psi_nu2": nu2_element - nu2, "var_y": float(np.var(y)),
            "kept": keep}


def _strength(cf_y: float, cf_d: float, rho: float) -> float:
    return abs(rho) * np.sqrt(cf_y * cf_d / (1 - cf_d))


def _bounds_one(elements: dict, clusters: np.ndarray, cf_y: float, cf_d: float, rho: float, z: float) -> dict:
    """One fold assignment's bounds on theta and their confidence bounds (clustered SE)."""
    sigma2, nu2 = max(elements["sigma2"], 0.0), max(elements["nu2"], 0.0)
    max_bias = np.sqrt(sigma2 * nu2)
    psi_max_bias = ((sigma2 * elements["psi_nu2"] + nu2 * elements["psi_sigma2"]) / (2 * max_bias)
                    if max_bias > 0 else np.zeros_like(elements["influence"]))
    strength = _strength(cf_y, cf_d, rho)
    c = clusters[elements["kept"]]
    theta = elements["theta"]
    lower, upper = theta - strength * max_bias, theta + strength * max_bias
    se_lower = _cluster_se(elements["influence"] - strength * psi_max_bias, c)
    se_upper = _cluster_se(elements["influence"] + strength * psi_max_bias, c)
    return {"theta": theta, "lower": lower, "upper": upper, "ci_lower": lower - z * se_lower,
            "ci_upper": upper + z * se_upper, "max_bias": float(max_bias)}


def _aggregate(parts: list[dict]) -> dict:
    """Median over fold assignments, key by key (DoubleML aggregates its repetitions the same way)."""
    return {key: float(np.median([p[key] for p in parts])) for key in parts[0]}


def bounds(all_elements: list[dict], clusters: np.ndarray, cf_y: float, cf_d: float, rho: float = 1.0,
           level: float = 0.95) -> dict:
    """Bounds on the effect for a hidden confounder of strength (cf_y, cf_d, rho)."""
    for name, value, upper_open in (("cf_y", cf_y, True), ("cf_d", cf_d, True), ("rho", abs(rho), False)):
        if not (0 <= value < 1 if upper_open else 0 <= value <= 1):
            raise ValueError(f"{name}: value {value!r}; allowed: {'[0, 1)' if upper_open else '|rho| in [0, 1]'}")
    z = float(stats.norm.ppf(level))   # one-sided per bound, as DoubleML's sensitivity_analysis
    return _aggregate([_bounds_one(e, clusters, cf_y, cf_d, rho, z) for e in all_elements])


def robustness_values(all_elements: list[dict], clusters: np.ndarray, null: float = 0.0, rho: float = 1.0,
                      level: float = 0.95) -> dict:
    """The robustness value RV: the strength cf_y = cf_d at which the bound reaches `null` (the
    effect is explained away), and RVa: the strength at which the confidence bound reaches it
    (the effect is no longer significant). 0 when it already is; 1 when no strength below 1 does."""
    theta = float(np.median([e["theta"] for e in all_elements]))
    side = "lower" if null < theta else "upper"

    def gap(value: float, key: str) -> float:
        b = bounds(all_elements, clusters, value, value, rho, level)
        return (b[key] - null) if side == "lower" else (null - b[key])

    out = {}
    for name, key in (("rv", side), ("rva", f"ci_{side}")):
        if gap(0.0, key) <= 0:
            out[name] = 0.0
        elif gap(0.9999, key) > 0:
            out[name] = 1.0
        else:
            out[name] = float(optimize.brentq(gap, 0.0, 0.9999, args=(key,), xtol=1e-6))
    return out


def benchmark(long: list[dict], short: list[dict]) -> dict:
    """cf_y, cf_d, rho and the change in the estimate when a covariate group is left out: the
    strength of a hidden confounder "as strong as" that group (DoubleML's gain statistics)."""
    cf_y, cf_d, rho, delta = [], [], [], []
    for lo, sh in zip(long, short):
        r2_long, r2_short = 1 - lo["sigma2"] / lo["var_y"], 1 - sh["sigma2"] / lo["var_y"]
        r2_riesz = sh["nu2"] / lo["nu2"]
        cf_y.append(float(np.clip((r2_long - r2_short) / (1 - r2_long), 0, 1)))
        cf_d.append(float(np.clip((1 - r2_riesz) / r2_riesz, 0, 1)))
        change = sh["theta"] - lo["theta"]
        var_g, var_riesz = sh["sigma2"] - lo["sigma2"], lo["nu2"] - sh["nu2"]
        denom = np.sqrt(var_g * var_riesz) if var_g > 0 and var_riesz > 0 else 0.0
        rho.append(float(np.sign(change) * (np.clip(abs(change) / denom, 0, 1) if denom else 1.0)))
        delta.append(change)
    return {"cf_y": float(np.median(cf_y)), "cf_d": float(np.median(cf_d)), "rho": float(np.median(rho)),
            "delta_theta": float(np.median(delta))}


def sensitivity_bounds(y: np.ndarray, t: np.ndarray, repeats: list[Nuisances], clusters: np.ndarray,
                       estimand: str = "ATT", cf_y: float = DEFAULT_STRENGTH, cf_d: float = DEFAULT_STRENGTH,
                       rho: float = 1.0, level: float = 0.95, null: float = 0.0,
                       benchmarks: dict[str, list[Nuisances]] | None = None) -> dict:
    """The sensitivity analysis of one estimate, as a plain dict.

    y, t, clusters : the estimate's outcome, 0/1 treatment and clusters (persons).
    repeats : its cross-fitted nuisances, one per fold assignment (`cross_fit_repeated`).
    cf_y, cf_d, rho : the scenario for `bounds` (default: 3%, 3%, worst case rho = 1).
    benchmarks : {name: nuisances refitted without that covariate group} (see
        `benchmark_nuisances`); each gives the strength (cf_y, cf_d, rho) of a confounder as strong
        as that group and the bounds at that cf_y and cf_d with the scenario's rho (default 1, the
        worst case), and under "at_benchmarked_rho" with the group's own rho. The benchmarked rho
        understated a hidden confounder's alignment in bench/sensitivity.py --hidden, so the
        worst case is the headline.

    Returns {"estimate", "scenario": {cf_y, cf_d, rho}, "bounds": {lower, upper, ci_lower,
    ci_upper, max_bias}, "robustness_value", "robustness_value_ci", "null", "level",
    "sigma2", "nu2", "benchmarks": {name: {cf_y, cf_d, rho, delta_theta, lower, upper, ci_lower,
    ci_upper, max_bias, at_benchmarked_rho: {lower, upper, ci_lower, ci_upper, max_bias}}}};
    theta and bounds are medians over the fold assignments.
    """
    elements = [sensitivity_elements(y, t, n, estimand) for n in repeats]
    at = bounds(elements, clusters, cf_y, cf_d, rho, level)
    rv = robustness_values(elements, clusters, null, 1.0, level)
    out = {"estimate": at.pop("theta"), "scenario": {"cf_y": cf_y, "cf_d": cf_d, "rho": rho}, "bounds": at,
           "robustness_value": rv["rv"], "robustness_value_ci": rv["rva"], "null": null, "level": level,
           "sigma2": float(np.median([e["sigma2"] for e in elements])),
           "nu2": float(np.median([e["nu2"] for e in elements])), "benchmarks": {}}
    for name, short_repeats in (benchmarks or {}).items():
        short = [sensitivity_elements(y, t, n, estimand) for n in short_repeats]
        strength = benchmark(elements[:len(short)], short)
        cf = (min(strength["cf_y"], 0.9999), min(strength["cf_d"], 0.9999))
        worst = bounds(elements, clusters, *cf, rho, level)
        worst.pop("theta")
        at_rho = bounds(elements, clusters, *cf, float(np.clip(abs(strength["rho"]), 0, 1)), level)
        at_rho.pop("theta")
        out["benchmarks"][name] = {**strength, **worst, "at_benchmarked_rho": at_rho}
    return out


def benchmark_nuisances(X: np.ndarray, t: np.ndarray, y: np.ndarray, clusters: np.ndarray, left_out: np.ndarray,
                        seed: int, folds: int, repeats: int, trim: float, estimand: str = "ATT") -> list[Nuisances]:
    """The nuisances refitted without the columns `left_out` (a bool mask over X's columns), on
    the same fold assignments and seeds as the estimate's first `repeats`."""
    return cross_fit_repeated(X[:, ~left_out], t, y, clusters, seed=seed, folds=folds, repeats=repeats, trim=trim,
                              estimand=estimand)


def covariate_group(names: list[str], prefix: str) -> np.ndarray:
    """A bool mask of the encoded columns that belong to a covariate group: name == prefix or
    name starting with prefix + '__' or prefix + '=' (one-hot levels)."""
    return np.array([n == prefix or n.startswith(prefix + "__") or n.startswith(prefix + "=") for n in names])
