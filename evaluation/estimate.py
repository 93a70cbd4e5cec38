"""Generic mode: any table with a 0/1 treatment, an outcome and covariates -> an effect estimate
with diagnostics, written as evaluation.json and report.html."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.aipw import aipw, balancing_weights, cross_fit, naive_difference, standardized_mean_differences

MIN_ARM = 20          # fewer treated or controls than this: no estimate
SMD_WARNING = 0.1     # the usual threshold for a covariate left unbalanced
TRIM = 0.02


class EvaluationInputError(ValueError):
    def __init__(self, field: str, value, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: value {value!r}; allowed: {allowed}")

    def to_dict(self) -> dict:
        return {"field": self.field, "value": self.value, "allowed": self.allowed}


def read_cohort(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise EvaluationInputError("cohort", str(path), "a .csv or .parquet file")


def encode_covariates(frame: pd.DataFrame, covariates: list[str]) -> tuple[np.ndarray, list[str]]:
    """Numeric columns as they are (median-filled, with a missing flag when needed);
    categorical columns one-hot."""
    parts, names = [], []
    for column in covariates:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            numeric = values.astype(float)
            if numeric.isna().any():
                parts.append(numeric.isna().astype(float).to_numpy()[:, None])
                names.append(f"{column}__missing")
                numeric = numeric.fillna(numeric.median() if numeric.notna().any() else 0.0)
            parts.append(numeric.to_numpy()[:, None])
            names.append(column)
        else:
            dummies = pd.get_dummies(values.astype("string").fillna("(missing)"), prefix=column, prefix_sep="=")
            parts.append(dummies.to_numpy(dtype=float))
            names += list(dummies.columns)
    return np.hstack(parts), names


def check_inputs(frame: pd.DataFrame, treatment: str, outcome: str, covariates: list[str]) -> None:
    for role, column in [("treatment", treatment), ("outcome", outcome)] + [("covariates", c) for c in covariates]:
        if column not in frame.columns:
            raise EvaluationInputError(role, column, f"a column of the cohort: {list(frame.columns)[:30]}")
    values = set(pd.unique(frame[treatment].dropna()))
    if not values <= {0, 1, True, False} or frame[treatment].isna().any():
        raise EvaluationInputError("treatment", sorted(map(str, values))[:10], "0 or 1 in every row")
    if frame[outcome].isna().any() or not pd.api.types.is_numeric_dtype(frame[outcome]):
        raise EvaluationInputError("outcome", outcome, "a numeric column (0/1 for a binary outcome) with no empty rows")
    treated = int((frame[treatment] == 1).sum())
    control = len(frame) - treated
    if treated < MIN_ARM or control < MIN_ARM:
        raise EvaluationInputError("treatment", {"treated": treated, "control": control},
                                   f"at least {MIN_ARM} treated and {MIN_ARM} control rows")
    if not covariates:
        raise EvaluationInputError("covariates", [], "at least one covariate column")


def estimate_effect(frame: pd.DataFrame, treatment: str, outcome: str, covariates: list[str],
                    estimand: str = "ATT", seed: int = 0, cluster: str | None = None,
                    subgroups: list[str] | None = None) -> dict:
    """The doubly robust estimate with its 95% interval, the naive difference beside it,
    diagnostics and subgroup effects."""
    if estimand not in ("ATT", "ATE"):
        raise EvaluationInputError("estimand", estimand, "ATT or ATE")
    check_inputs(frame, treatment, outcome, covariates)
    frame = frame.reset_index(drop=True)
    X, names = encode_covariates(frame, covariates)
    t = frame[treatment].astype(int).to_numpy()
    y = frame[outcome].astype(float).to_numpy()
    clusters = frame[cluster].astype(str).to_numpy() if cluster else np.arange(len(frame)).astype(str)
    nuisances = cross_fit(X, t, y, clusters, seed=seed, trim=TRIM, estimand=estimand)
    kept = nuisances.kept
    e = nuisances.propensity
    no_common_support = np.quantile(e[t == 1], 0.05) > np.quantile(e[t == 0], 0.95)
    if kept.mean() < 0.5 or no_common_support:
        raise EvaluationInputError("treatment", {"share_trimmed": round(float(1 - kept.mean()), 3)},
                                   "overlap: treated and comparison rows with similar covariates (here the "
                                   "covariates all but determine who is treated, so no comparison is possible)")
    if t[kept].sum() < MIN_ARM or (1 - t[kept]).sum() < MIN_ARM:
        raise EvaluationInputError("treatment", {"treated_after_trimming": int(t[kept].sum()),
                                                 "control_after_trimming": int((1 - t[kept]).sum())},
                                   f"overlap: at least {MIN_ARM} of each arm left after trimming extreme propensities")
    result = aipw(y, t, nuisances, clusters, estimand)
    naive = naive_difference(y, t, clusters)
    diagnostics = _diagnostics(X, names, t, nuisances, estimand)
    low, high = result.ci
    out = {
        "estimand": estimand, "estimate": result.estimate, "ci_low": low, "ci_high": high, "se": result.se,
        "n_treated": result.n_treated, "n_control": result.n_control,
        "method": ("AIPW (doubly robust), 5-fold cross-fitting grouped by "
                   f"{cluster or 'row'}; propensity: boosted trees averaged with logistic regression; "
                   "outcome: boosted trees per arm; trimming of propensities "
                   f"{'above ' + str(1 - TRIM) if estimand == 'ATT' else f'outside [{TRIM}, {1 - TRIM}]'}; "
                   "95% interval from the influence function, clustered"),
        "naive": {"estimate": naive.estimate, "ci_low": naive.ci[0], "ci_high": naive.ci[1]},
        "diagnostics": diagnostics,
        "subgroups": _subgroups(frame, subgroups or [], y, t, nuisances, clusters, estimand),
        "treatment": treatment, "outcome": outcome, "covariates": covariates, "seed": seed,
    }
    return out


def _diagnostics(X, names, t, nuisances, estimand) -> dict:
    kept, e = nuisances.kept, nuisances.propensity
    before = standardized_mean_differences(X, t)
    weights = balancing_weights(t[kept], e[kept], estimand)
    after = standardized_mean_differences(X[kept], t[kept], weights)
    warnings = []
    share_trimmed = float(1 - kept.mean())
    if share_trimmed > 0.10:
        warnings.append(f"{100 * share_trimmed:.0f}% of rows trimmed for extreme propensities: "
                        "the estimate describes the rows with overlap only")
    unbalanced = [n for n, s in zip(names, after) if abs(s) > SMD_WARNING]
    if unbalanced:
        warnings.append(f"{len(unbalanced)} covariate(s) still differ by more than {SMD_WARNING} SD after "
                        f"weighting: {unbalanced[:8]}")
    control_weights = weights[t[kept] == 0]
    top_share = float(np.sort(control_weights)[-max(1, len(control_weights) // 100):].sum() / control_weights.sum())
    if top_share > 0.2:
        warnings.append(f"the heaviest 1% of comparison rows carry {100 * top_share:.0f}% of the weight: "
                        "the estimate leans on few people")
    quantiles = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    return {
        "propensity_overlap": {arm: dict(zip([f"q{int(100 * q):02d}" for q in quantiles],
                                             np.quantile(e[t == value], quantiles).round(4).tolist()))
                               for arm, value in (("treated", 1), ("control", 0))},
        "share_trimmed": share_trimmed,
        "balance": [{"covariate": n, "smd_before": float(b), "smd_after": float(a)}
                    for n, b, a in zip(names, before, after)],
        "max_abs_smd_before": float(np.max(np.abs(before))),
        "max_abs_smd_after": float(np.max(np.abs(after))),
        "warnings": warnings,
        "_propensity": e.tolist(), "_treated": t.tolist(),   # for the report's plot; dropped from JSON
    }


def _subgroups(frame, columns, y, t, nuisances, clusters, estimand) -> list[dict]:
    out = []
    for column in columns:
        for value, index in frame.groupby(column, observed=True).groups.items():
            subset = np.zeros(len(frame), dtype=bool)
            subset[np.asarray(index)] = True
            kept = subset & nuisances.kept
            if t[kept].sum() < 10 or (1 - t[kept]).sum() < 10:
                out.append({"group": column, "value": str(value), "estimate": None, "ci_low": None, "ci_high": None,
                            "n_treated": int(t[kept].sum()), "n_control": int((1 - t[kept]).sum()),
                            "note": "too few rows for an estimate"})
                continue
            est = aipw(y, t, nuisances, clusters, estimand, subset=subset)
            out.append({"group": column, "value": str(value), "estimate": est.estimate,
                        "ci_low": est.ci[0], "ci_high": est.ci[1],
                        "n_treated": est.n_treated, "n_control": est.n_control})
    return out


def write_outputs(result: dict, out: str | Path, title: str) -> dict:
    """DIR/evaluation.json and DIR/report.html."""
    from evaluation.report import render_report
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    public = public_result(result)
    (out / "evaluation.json").write_text(json.dumps(public, indent=2, ensure_ascii=False))
    (out / "report.html").write_text(render_report(result, title), encoding="utf-8")
    return public


def public_result(result: dict) -> dict:
    public = json.loads(json.dumps(result, default=float))
    for key in ("_propensity", "_treated"):
        public["diagnostics"].pop(key, None)
    return public

