"""The sensitivity analysis (evaluation/sensitivity.py) against DoubleML and against a known hidden
confounder.

    .venv/bin/python -m bench.sensitivity --hidden 10            # hide a confounder, 10 cohorts
    PYTHONPATH=/path/to/doubleml-target .venv/bin/python -m bench.sensitivity --doubleml

--hidden N: N simulated observational cohorts (4,000 rows each) in which two confounders, A and U,
enter who is treated and the outcome with the same strength; U is hidden from the evaluation, A is
observed. The evaluation (generic mode, `estimate_effect`) is biased by U; the bounds at the
strength benchmarked from A ("a hidden factor as strong as A") should bracket the true effect.
Printed: per cohort the truth, the estimate, the benchmarked bounds and whether they bracket it.

--doubleml: one cohort; DoubleML 0.11's IRM (score ATTE) given our cross-fitted predictions and our
folds (external predictions) computes its sensitivity analysis, robustness values and gain
statistics; ours are printed beside them. The same nuisances make the two comparable to the
formulas (DoubleML's own learners would add their own fitting noise). DoubleML is not in
requirements.lock: install requirements-compare.lock with pip --target and put it on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from evaluation.synthetic import CONFOUNDED_OBSERVED as OBSERVED
from evaluation.synthetic import draw_confounded as draw_cohort


def hidden(cohorts: int, rows: int) -> pd.DataFrame:
    from bip.config import get_settings
    from evaluation.aipw import cross_fit_repeated
    from evaluation.estimate import encode_covariates
    from evaluation.sensitivity import benchmark_nuisances, covariate_group, sensitivity_bounds
    settings = get_settings()
    out = []
    for seed in range(cohorts):
        frame, truth = draw_cohort(rows, seed)
        start = time.perf_counter()
        X, names = encode_covariates(frame, OBSERVED)
        t, y = frame["treated"].to_numpy(), frame["job"].to_numpy(float)
        clusters = np.arange(rows).astype(str)
        repeats = cross_fit_repeated(X, t, y, clusters, seed=seed, folds=settings.evaluation_folds,
                                     repeats=settings.evaluation_repeats, trim=settings.trim)
        short = benchmark_nuisances(X, t, y, clusters, covariate_group(names, "a"), seed, settings.evaluation_folds,
                                    1, settings.trim)
        s = sensitivity_bounds(y, t, repeats, clusters, benchmarks={"a": short})
        m = s["benchmarks"]["a"]
        out.append({"seed": seed, "truth": truth, "estimate": s["estimate"], "lower": m["lower"], "upper": m["upper"],
                    "ci_lower": m["ci_lower"], "ci_upper": m["ci_upper"], "cf_y": m["cf_y"], "cf_d": m["cf_d"],
                    "rho": m["rho"], "rv": s["robustness_value"],
                    "bracketed": m["lower"] <= truth <= m["upper"],
                    "bracketed_ci": m["ci_lower"] <= truth <= m["ci_upper"],
                    "bracketed_benchmarked_rho": (m["at_benchmarked_rho"]["lower"] <= truth
                                                  <= m["at_benchmarked_rho"]["upper"]),
                    "seconds": time.perf_counter() - start})
    return pd.DataFrame(out)


def against_doubleml(rows: int, seed: int = 0) -> dict:
    """Ours and DoubleML's sensitivity figures from the same predictions and folds."""
    import doubleml
    from doubleml.utils.gain_statistics import gain_statistics
    from sklearn.linear_model import LogisticRegression

    from bip.config import get_settings
    from evaluation.aipw import cross_fit, fold_of
    from evaluation.estimate import encode_covariates
    from evaluation.sensitivity import covariate_group, sensitivity_bounds
    settings = get_settings()
    frame, truth = draw_cohort(rows, seed)
    X, names = encode_covariates(frame, OBSERVED)
    t, y = frame["treated"].to_numpy(), frame["job"].to_numpy(float)
    clusters = np.arange(rows).astype(str)
    folds = settings.evaluation_folds
    fold = fold_of(clusters, folds, seed)
    long = cross_fit(X, t, y, clusters, seed=seed, folds=folds, fold=fold)
    mask = covariate_group(names, "a")
    short = cross_fit(X[:, ~mask], t, y, clusters, seed=seed, folds=folds, fold=fold)
    # DoubleML on the rows both fits kept (ours drops treated propensities above 1 - trim), same folds
    keep = long.kept & short.kept
    ours = sensitivity_bounds(y[keep], t[keep], [_subset(long, keep)], clusters[keep],
                              benchmarks={"a": [_subset(short, keep)]})
    smpls = [[(np.flatnonzero(fold[keep] != k), np.flatnonzero(fold[keep] == k)) for k in range(folds)]]

    def fitted(nuisances, columns):
        data = pd.DataFrame(X[keep][:, columns], columns=[f"c{i}" for i in range(int(columns.sum()))])
        data = data.assign(y=y[keep], d=t[keep])
        model = doubleml.DoubleMLIRM(doubleml.DoubleMLData(data, "y", "d"), ml_g=LogisticRegression(),
                                     ml_m=LogisticRegression(), n_folds=folds, score="ATTE",
                                     trimming_threshold=1e-3, draw_sample_splitting=False)
        model.set_sample_splitting(smpls)
        n = nuisances
        model.fit(external_predictions={"d": {"ml_m": n.propensity[keep][:, None], "ml_g0": n.mu0[keep][:, None],
                                              "ml_g1": n.mu1[keep][:, None]}})
        return model

    everything = np.ones(X.shape[1], dtype=bool)
    dml_long, dml_short = fitted(long, everything), fitted(short, ~mask)
    dml_long.sensitivity_analysis(cf_y=0.03, cf_d=0.03, rho=1.0)
    params = dml_long.sensitivity_params
    gains = gain_statistics(dml_long, dml_short)
    b = ours["bounds"]
    m = ours["benchmarks"]["a"]
    return {
        "truth": truth,
        "theta": (ours["estimate"], float(dml_long.coef[0])),
        "bound_lower_3pct": (b["lower"], float(params["theta"]["lower"][0])),
        "bound_upper_3pct": (b["upper"], float(params["theta"]["upper"][0])),
        "ci_lower_3pct": (b["ci_lower"], float(params["ci"]["lower"][0])),
        "ci_upper_3pct": (b["ci_upper"], float(params["ci"]["upper"][0])),
        "robustness_value": (ours["robustness_value"], float(params["rv"][0])),
        "robustness_value_ci": (ours["robustness_value_ci"], float(params["rva"][0])),
        "benchmark_cf_y": (m["cf_y"], float(np.ravel(gains["cf_y"])[0])),
        "benchmark_cf_d": (m["cf_d"], float(np.ravel(gains["cf_d"])[0])),
        "benchmark_rho": (m["rho"], float(np.ravel(gains["rho"])[0])),
        "benchmark_delta_theta": (m["delta_theta"], float(np.ravel(gains["delta_theta"])[0])),
    }


def _subset(nuisances, keep):
    from evaluation.aipw import Nuisances
    return Nuisances(nuisances.propensity[keep], nuisances.mu0[keep], nuisances.mu1[keep],
                     np.ones(int(keep.sum()), dtype=bool))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=0, help="cohorts with a hidden confounder")
    parser.add_argument("--doubleml", action="store_true", help="compare with DoubleML's sensitivity_analysis")
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args()
    if args.doubleml:
        print(f"{'figure':>24} {'ours':>10} {'DoubleML':>10}")
        for key, value in against_doubleml(args.rows).items():
            if isinstance(value, tuple):
                print(f"{key:>24} {value[0]:>10.5f} {value[1]:>10.5f}")
            else:
                print(f"{key:>24} {value:>10.5f}")
    if args.hidden:
        frame = hidden(args.hidden, args.rows)
        with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
            print(frame)
        print(f"bounds at the strength benchmarked from a (rho = 1) bracket the truth in {int(frame['bracketed'].sum())} "
              f"of {len(frame)} cohorts ({int(frame['bracketed_ci'].sum())} with the bounds' confidence limits; "
              f"{int(frame['bracketed_benchmarked_rho'].sum())} with a's own rho instead of 1); the point estimate "
              f"misses by {(frame['estimate'] - frame['truth']).mean():+.4f} on average")


if __name__ == "__main__":
    main()
