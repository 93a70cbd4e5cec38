"""Generic mode and the shared estimation core: any table with a 0/1 treatment, an outcome and
covariates -> an effect estimate with diagnostics, written as evaluation.json and report.html."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bip.config import Settings, get_settings
from evaluation.aipw import (
    Z95,
    aipw_repeated,
    balancing_weights,
    cluster_codes,
    cross_fit_repeated,
    naive_difference,
    standardized_mean_differences,
)

DESIGNS = ("observational", "randomized")
_ID_NAME = re.compile(r"(^|_)id$|^id_", re.IGNORECASE)


class EvaluationInputError(ValueError):
    def __init__(self, field: str, value, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: value {value!r}; allowed: {allowed}")

    def to_dict(self) -> dict:
        return {"field": self.field, "value": self.value, "allowed": self.allowed}


def cohort_csv_options(file_format: dict | None = None) -> dict:
    """pd.read_csv's sep and encoding for a generic cohort: the declared format (a request's sep and
    encoding fields, else `bip --sep/--encoding`), otherwise comma and UTF-8."""
    from features.tables import ENCODINGS, FileFormat, format_in_force
    fmt = format_in_force(FileFormat.declared(**file_format) if file_format else None)
    return {"sep": fmt.sep, "encoding": ENCODINGS[fmt.encoding]}


def read_cohort(path: str | Path, file_format: dict | None = None) -> pd.DataFrame:
    """A generic cohort from Parquet or CSV (in the declared format, see cohort_csv_options)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, **cohort_csv_options(file_format))
    raise EvaluationInputError("cohort", str(path), "a .csv or .parquet file")


def id_like_columns(frame: pd.DataFrame, candidates: list[str]) -> list[dict]:
    """Columns that identify rows rather than describe them: named id / *_id / id_*, or text or
    integer values unique in every row (a continuous measurement is unique too, so floats count
    only by name). Such a column as a covariate lets the models memorise rows and costs minutes."""
    out = []
    for column in candidates:
        values = frame[column]
        if _ID_NAME.search(str(column)):
            out.append({"column": column, "reason": "named like an identifier"})
        elif (not pd.api.types.is_float_dtype(values) and len(frame) > 1
              and values.nunique(dropna=False) == len(frame)):
            out.append({"column": column, "reason": "a different value in every row"})
    return out


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


def check_inputs(frame: pd.DataFrame, treatment: str, outcome: str, covariates: list[str],
                 min_arm: int = 20) -> None:
    """Refuse what cannot give an honest estimate, naming the field, the value and what is allowed."""
    for role, column in [("treatment", treatment), ("outcome", outcome)] + [("covariates", c) for c in covariates]:
        if column not in frame.columns:
            raise EvaluationInputError(role, column, f"a column of the cohort: {list(frame.columns)[:30]}")
    if outcome == treatment:
        raise EvaluationInputError("outcome", outcome, "a column other than the treatment column")
    for column in covariates:
        if column in (treatment, outcome):
            raise EvaluationInputError("covariates", column, "columns other than the treatment and the outcome")
    values = set(pd.unique(frame[treatment].dropna()))
    if not values <= {0, 1, True, False} or frame[treatment].isna().any():
        raise EvaluationInputError("treatment", sorted(map(str, values))[:10], "0 or 1 in every row")
    if frame[outcome].isna().any() or not pd.api.types.is_numeric_dtype(frame[outcome]):
        raise EvaluationInputError("outcome", outcome, "a numeric column (0/1 for a binary outcome) with no empty rows")
    if frame[outcome].nunique() < 2:
        raise EvaluationInputError("outcome", {"column": outcome, "only_value": float(frame[outcome].iloc[0])},
                                   "an outcome that varies between rows")
    if np.array_equal(frame[outcome].astype(float).to_numpy(), frame[treatment].astype(float).to_numpy()):
        raise EvaluationInputError("outcome", outcome, "an outcome that is not a copy of the treatment column")
    treated = int((frame[treatment] == 1).sum())
    control = len(frame) - treated
    if treated < min_arm or control < min_arm:
        raise EvaluationInputError("treatment", {"treated": treated, "control": control},
                                   f"at least {min_arm} treated and {min_arm} control rows")
    if not covariates:
        raise EvaluationInputError("covariates", [], "at least one covariate column")


def estimate_effect(frame: pd.DataFrame, treatment: str, outcome: str, covariates: list[str],
                    estimand: str = "ATT", seed: int = 0, cluster: str | None = None,
                    subgroups: list[str] | None = None, design: str = "observational",
                    settings: Settings | None = None) -> dict:
    """The doubly robust estimate with its 95% interval, the naive difference beside it,
    diagnostics and subgroup effects, for a table with named columns."""
    settings = settings or get_settings()
    if estimand not in ("ATT", "ATE"):
        raise EvaluationInputError("estimand", estimand, "ATT or ATE")
    if design not in DESIGNS:
        raise EvaluationInputError("design", design, f"one of {list(DESIGNS)}")
    check_inputs(frame, treatment, outcome, covariates, settings.min_arm)
    frame = frame.reset_index(drop=True)
    X, names = encode_covariates(frame, covariates)
    t = frame[treatment].astype(int).to_numpy()
    y = frame[outcome].astype(float).to_numpy()
    clusters = cluster_codes(frame[cluster].astype(str).to_numpy() if cluster else np.arange(len(frame)).astype(str))
    result = estimate_arrays(X, names, t, y, clusters, frame, subgroups or [], estimand, seed, settings, design,
                             unit=cluster or "row")
    result.update({"treatment": treatment, "outcome": outcome, "covariates": covariates})
    return result


def estimate_arrays(X: np.ndarray, names: list[str], t: np.ndarray, y: np.ndarray, clusters: np.ndarray,
                    frame: pd.DataFrame, subgroups: list[str], estimand: str, seed: int, settings: Settings,
                    design: str = "observational", unit: str = "row", repeats=None,
                    benchmark_groups: list[str] | None = None) -> dict:
    """The estimation core on an encoded matrix (rows aligned with `frame`, used for subgroups).

    Observational: propensity and outcome models cross-fitted by cluster; randomized: the
    propensity is the known share treated (no model), so the estimate is the experiment's
    difference adjusted for covariates only for precision. Either way the cross-fit is repeated
    over `settings.evaluation_repeats` fold assignments (`repeats`: such a list, already fitted)
    and aggregated by the median (`aipw_repeated`); the interval is the person-clustered
    influence-function SE widened by the spread over the repetitions.

    Observational estimates also get a sensitivity analysis (`evaluation.sensitivity`): bounds for
    a hidden confounder, the robustness value, and benchmarks refitted without each covariate
    group in `benchmark_groups` (None: the most imbalanced covariate).
    """
    randomized = design == "randomized"
    share = float(t.mean()) if randomized else None
    if repeats is None:
        repeats = cross_fit_repeated(X, t, y, clusters, seed=seed, folds=settings.evaluation_folds,
                                     repeats=settings.evaluation_repeats, trim=settings.trim, estimand=estimand,
                                     propensity=share, treated_outcome=settings.sensitivity and not randomized)
    nuisances = repeats[0]
    kept, e = nuisances.kept, nuisances.propensity
    if not randomized:
        no_common_support = np.quantile(e[t == 1], 0.05) > np.quantile(e[t == 0], 0.95)
        if kept.mean() < 0.5 or no_common_support:
            raise EvaluationInputError("treatment", {"share_trimmed": round(float(1 - kept.mean()), 3)},
                                       "overlap: treated and comparison rows with similar covariates (here the "
                                       "covariates all but determine who is treated, so no comparison is possible)")
        if t[kept].sum() < settings.min_arm or (1 - t[kept]).sum() < settings.min_arm:
            raise EvaluationInputError("treatment", {"treated_after_trimming": int(t[kept].sum()),
                                                     "control_after_trimming": int((1 - t[kept]).sum())},
                                       f"overlap: at least {settings.min_arm} of each arm left after trimming "
                                       "extreme propensities")
    result = aipw_repeated(y, t, repeats, clusters, estimand)
    naive = naive_difference(y, t, clusters)
    diagnostics = _diagnostics(X, names, t, nuisances, estimand, settings, randomized)
    sensitivity = None
    if not randomized and settings.sensitivity:
        sensitivity = _sensitivity(X, names, t, y, clusters, repeats, estimand, seed, settings, diagnostics,
                                   benchmark_groups)
    low, high = result.ci
    trimming = (f"above {1 - settings.trim}" if estimand == "ATT"
                else f"outside [{settings.trim}, {1 - settings.trim}]")
    if randomized:
        method = (f"randomized design: the known share treated ({share:.3f}) as propensity; outcome models "
                  f"(XGBoost trees) cross-fitted in {settings.evaluation_folds} folds by {unit} "
                  "for precision only")
    else:
        method = (f"AIPW (doubly robust), {settings.evaluation_folds}-fold cross-fitting grouped by {unit}; "
                  "propensity: XGBoost trees averaged with logistic regression; outcome: XGBoost trees; "
                  f"propensities {trimming} trimmed")
    method += (f"; cross-fitting repeated over {len(repeats)} random fold assignments, estimate = their median; "
               f"95% interval from the influence function clustered by {unit}, widened by the spread over the "
               "assignments (median of se_s^2 + (theta_s - theta)^2, Chernozhukov et al. 2018)")
    return {
        "estimand": estimand, "design": design, "estimate": result.estimate, "ci_low": low, "ci_high": high,
        "se": result.se, "se_influence": result.se_influence, "repeats": len(repeats),
        "estimates_by_fold_assignment": result.repeats,
        "n_treated": result.n_treated, "n_control": result.n_control, "unit": unit,
        "binary_outcome": bool(set(np.unique(y)) <= {0, 1}),
        "method": method,
        "naive": {"estimate": naive.estimate, "ci_low": naive.ci[0], "ci_high": naive.ci[1]},
        "diagnostics": diagnostics,
        "sensitivity": sensitivity,
        "subgroups": subgroup_effects(frame, subgroups, y, t, repeats, clusters, estimand, settings),
        "seed": seed,
        "_nuisances": nuisances,     # the first cross-fit, reused by progression effects; dropped from JSON
        "_repeats": repeats,         # every cross-fit, for the sensitivity analysis; dropped from JSON
    }


def _source_column(name: str) -> str:
    """The covariate an encoded column came from (`col=level` one-hot, `col__missing` flag)."""
    return name.split("=", 1)[0].removesuffix("__missing")


def _sensitivity(X, names, t, y, clusters, repeats, estimand, seed, settings: Settings, diagnostics: dict,
                 groups: list[str] | None) -> dict:
    """The sensitivity analysis of an observational estimate, with its benchmarks refitted on the
    first fold assignment (one cross-fit each)."""
    from evaluation.sensitivity import benchmark_nuisances, covariate_group, sensitivity_bounds
    if groups is None:   # generic mode: the observed covariate that differs most between the arms
        smd = {_source_column(b["covariate"]): abs(b["smd_before"]) for b in diagnostics["balance"]}
        groups = [max(smd, key=smd.get)] if smd else []
    benchmarks = {}
    for group in groups:
        mask = covariate_group(names, group)
        if mask.any() and not mask.all():
            benchmarks[group] = benchmark_nuisances(X, t, y, clusters, mask, seed, settings.evaluation_folds, 1,
                                                    settings.trim, estimand)
    return sensitivity_bounds(y, t, repeats, clusters, estimand, benchmarks=benchmarks)


def balance_test(X: np.ndarray, names: list[str], t: np.ndarray) -> dict:
    """Welch t-test per covariate (treated against comparison), Holm-adjusted over covariates:
    under randomization no covariate should differ more than chance allows."""
    treated, control = X[t == 1], X[t == 0]
    varying = (X.std(axis=0) > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = stats.ttest_ind(treated[:, varying], control[:, varying], equal_var=False).pvalue
    p = np.nan_to_num(np.atleast_1d(p), nan=1.0)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    tested = [n for n, v in zip(names, varying) if v]
    imbalanced = [n for n, a in zip(tested, adjusted) if a < 0.05]
    return {"test": "Welch t-test per covariate, Holm-adjusted", "covariates_tested": m,
            "smallest_adjusted_p": float(adjusted.min()) if m else 1.0, "imbalanced": imbalanced[:20],
            "threshold": 0.05}


def _diagnostics(X, names, t, nuisances, estimand, settings: Settings, randomized: bool) -> dict:
    kept, e = nuisances.kept, nuisances.propensity
    before = standardized_mean_differences(X, t)
    weights = balancing_weights(t[kept], np.clip(e[kept], 1e-3, 1 - 1e-3), estimand)
    after = standardized_mean_differences(X[kept], t[kept], weights)
    warnings = []
    share_trimmed = float(1 - kept.mean())
    if share_trimmed > 0.10:
        warnings.append(f"{100 * share_trimmed:.0f}% of rows trimmed for extreme propensities: "
                        "the estimate describes the rows with overlap only")
    unbalanced = [n for n, s in zip(names, after) if abs(s) > settings.smd_warning]
    if unbalanced and not randomized:
        warnings.append(f"{len(unbalanced)} covariate(s) still differ by more than {settings.smd_warning} SD after "
                        f"weighting: {unbalanced[:8]}")
    control_weights = weights[t[kept] == 0]
    top_share = float(np.sort(control_weights)[-max(1, len(control_weights) // 100):].sum() / control_weights.sum())
    if top_share > 0.2 and not randomized:
        warnings.append(f"the heaviest 1% of comparison rows carry {100 * top_share:.0f}% of the weight: "
                        "the estimate leans on few people")
    balance = balance_test(X, names, t)
    if randomized and balance["imbalanced"]:
        warnings.append(f"declared randomized, but {len(balance['imbalanced'])} covariate(s) differ between the arms "
                        f"more than chance allows (Holm-adjusted p < 0.05): {balance['imbalanced'][:8]}; "
                        "check how assignment was done")
    quantiles = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    return {
        "propensity_overlap": {arm: dict(zip([f"q{int(100 * q):02d}" for q in quantiles],
                                             np.quantile(e[t == value], quantiles).round(4).tolist()))
                               for arm, value in (("treated", 1), ("control", 0))},
        "share_trimmed": share_trimmed,
        "top_share": top_share,
        "balance": [{"covariate": n, "smd_before": float(b), "smd_after": float(a)}
                    for n, b, a in zip(names, before, after)],
        "max_abs_smd_before": float(np.max(np.abs(before))),
        "max_abs_smd_after": float(np.max(np.abs(after))),
        "balance_test": balance,
        "looks_randomized": bool(not balance["imbalanced"] and np.max(np.abs(before)) <= settings.smd_warning),
        "thresholds": {"smd": settings.smd_warning, "share_trimmed": 0.10, "top_1pct_weight_share": 0.2,
                       "trim": settings.trim, "balance_test_adjusted_p": 0.05},
        "warnings": warnings,
        "_propensity": e, "_treated": t,   # for the report's plot; dropped from JSON
    }


def subgroup_effects(frame, columns, y, t, repeats, clusters, estimand, settings: Settings) -> list[dict]:
    """Effects within subgroups from the cross-fitted nuisances (median over the fold assignments,
    as for the overall estimate), each with its 95% interval and
    a Bonferroni-adjusted interval over all subgroup estimates (so that all of them together
    cover their truths at least 95% of the time)."""
    out = []
    nuisances = repeats[0]
    for column in columns:
        for value, index in frame.groupby(column, observed=True).groups.items():
            subset = np.zeros(len(frame), dtype=bool)
            subset[np.asarray(index)] = True
            kept = subset & nuisances.kept
            row = {"group": column, "value": str(value), "n_treated": int(t[kept].sum()),
                   "n_control": int((1 - t[kept]).sum())}
            if t[kept].sum() < 10 or (1 - t[kept]).sum() < 10:
                out.append({**row, "estimate": None, "ci_low": None, "ci_high": None,
                            "note": "too few rows for an estimate"})
                continue
            est = aipw_repeated(y, t, repeats, clusters, estimand, subset=subset)
            out.append({**row, "estimate": est.estimate, "se": est.se, "se_influence": est.se_influence,
                        "ci_low": est.ci[0], "ci_high": est.ci[1]})
    estimated = [s for s in out if s["estimate"] is not None]
    if estimated:
        z = float(stats.norm.ppf(1 - 0.05 / (2 * len(estimated))))
        for s in estimated:
            s["ci_low_adjusted"], s["ci_high_adjusted"] = s["estimate"] - z * s["se"], s["estimate"] + z * s["se"]
            s["adjustment"] = f"Bonferroni over {len(estimated)} subgroup estimates (z = {z:.2f} instead of {Z95:.2f})"
    return out


def write_outputs(result: dict, out: str | Path, title: str | None = None, language: str = "da") -> dict:
    """DIR/evaluation.json and DIR/report.html (and DIR/band_effects.json in BIP mode)."""
    from evaluation.report import render_report
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    public = public_result(result)
    (out / "evaluation.json").write_text(json.dumps(public, indent=2, ensure_ascii=False))
    (out / "report.html").write_text(render_report(result, title, language), encoding="utf-8")
    if public.get("band_effects"):
        (out / "band_effects.json").write_text(json.dumps(public["band_effects"], indent=2, ensure_ascii=False))
    return public


def _strip_private(value):
    if isinstance(value, dict):
        return {k: _strip_private(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_strip_private(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def public_result(result: dict) -> dict:
    """The result as plain JSON: private working arrays (keys starting with _) dropped."""
    return json.loads(json.dumps(_strip_private(result), default=float))
