"""The one entry point for every evaluation: `evaluate(...)`, used by `bip evaluate`, the
evaluation job behind the API, the truth check and the benchmark.

BIP mode (`tables`): the occasions, their features and progression outcomes are built once,
encoded into one matrix, and every kind is evaluated from row selections of it. Generic mode
(`cohort`): one table with a 0/1 treatment, an outcome and covariates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bip.config import Settings, get_settings
from evaluation.aipw import Nuisances, aipw, cluster_codes, cross_fit_linear_outcome
from evaluation.bip_mode import (
    BANDS,
    build_intervention_cohort,  # noqa: F401  (re-exported for callers of the old path)
    build_occasion_table,
    check_kinds,
    covariate_names,
)
from evaluation.limits import band_interval_check
from evaluation.policy import check_policy_parameters, decision_point_count, learn_policy
from evaluation.estimate import (
    DESIGNS,
    EvaluationInputError,
    encode_covariates,
    estimate_arrays,
    estimate_effect,
    id_like_columns,
)
from features.schema import IndicatorSchema, load_schema

BIP_SUBGROUPS = ["jobcenter", "age_band", "readiness_band"]
Progress = Callable[[float, str], None]


def evaluate(tables: dict[str, pd.DataFrame] | None = None, *, cohort: pd.DataFrame | None = None,
             kind: str = "all", treatment: str | None = None, outcome: str | None = None,
             covariates: list[str] | None = None, subgroups: list[str] | None = None,
             design: str = "observational", horizon: int | None = None, estimand: str = "ATT", seed: int = 0,
             model=None, schema: IndicatorSchema | None = None, progression: bool = True,
             settings: Settings | None = None, progress: Progress | None = None,
             policy: dict | None = None) -> dict:
    """Estimate intervention effects, with diagnostics, subgroup and progression effects.

    Parameters
    ----------
    tables : BIP mode: the four validated tables (persons, measurements, activities, outcomes).
    cohort : generic mode instead: one row per unit, with `treatment`, `outcome` and covariates
        (default: every other column except id-like ones, which are listed in the result).
    kind : BIP mode: 'all' (every kind from one build of the occasions) or one kind.
    design : 'observational' (AIPW) or 'randomized' (generic mode: the known share treated as
        propensity; the effect is the experiment's).
    model : BIP mode: a scoring model whose probability becomes the readiness score and band
        (and a covariate); without one the bands use the mean caseworker rating.
    progress : called as progress(fraction in [0, 1], message) as the work advances.
    policy : BIP mode: also learn which intervention for whom (evaluation.policy), e.g.
        {"capacity": {"mentor": 300}, "depth": 2}; the result gets a "policy" entry.

    Returns
    -------
    Generic mode: one result (estimate, ci_low, ci_high, diagnostics, subgroups, ...).
    BIP mode: {"mode": "bip", "kinds": {kind: result}, "band_effects": {...}, design and counts}.
    Keys starting with "_" hold working arrays for the report; `public_result` drops them.
    """
    settings = settings or get_settings()
    progress = progress or (lambda fraction, message: None)
    if estimand not in ("ATT", "ATE"):
        raise EvaluationInputError("estimand", estimand, "ATT or ATE")
    if design not in DESIGNS:
        raise EvaluationInputError("design", design, f"one of {list(DESIGNS)}")
    with threadpool_limits(settings.evaluation_threads), _folds_on_cluster(settings.dask_address):
        if cohort is not None:
            result = _evaluate_generic(cohort, treatment, outcome, covariates, subgroups, design, estimand, seed,
                                       settings, progress)
        elif tables is not None:
            if design != "observational":
                raise EvaluationInputError("design", design, "observational in BIP mode (interventions there "
                                           "are assigned by caseworkers, never at random)")
            if policy is not None:
                check_policy_parameters(check_kinds(kind), policy.get("capacity"), policy.get("depth", 2))
            result = _evaluate_bip(tables, schema or load_schema(), kind, horizon or settings.horizon_months,
                                   estimand, seed, model, progression, settings, progress, policy)
        else:
            raise EvaluationInputError("cohort", None, "a cohort table (generic mode) or the four tables (BIP mode)")
    progress(1.0, "done")
    return result


@contextmanager
def _folds_on_cluster(address: str | None):
    """With a Dask scheduler address, every cross-fit's folds run as parallel tasks there."""
    if not address:
        yield
        return
    from distributed import Client

    from evaluation.aipw import FOLD_MAP, dask_fold_map
    with Client(address) as client:
        token = FOLD_MAP.set(dask_fold_map(client))
        try:
            yield
        finally:
            FOLD_MAP.reset(token)


def _evaluate_generic(cohort, treatment, outcome, covariates, subgroups, design, estimand, seed, settings,
                      progress) -> dict:
    if not treatment or not outcome:
        raise EvaluationInputError("treatment" if not treatment else "outcome", None,
                                   "the name of the treatment and the outcome column")
    excluded = []
    if covariates is None:
        candidates = [c for c in cohort.columns if c not in (treatment, outcome)]
        excluded = id_like_columns(cohort, candidates)
        covariates = [c for c in candidates if c not in {e["column"] for e in excluded}]
    progress(0.05, "estimating")
    start = time.perf_counter()
    result = estimate_effect(cohort, treatment, outcome, covariates, estimand, seed, subgroups=subgroups,
                             design=design, settings=settings)
    result.update({"mode": "generic", "excluded_covariates": excluded, "seconds": time.perf_counter() - start})
    return result


def occasions_and_covariates(tables, schema, kinds: list[str], horizon: int, model, settings: Settings,
                             progression: bool):
    """The occasion table of BIP mode and its encoded covariates: (table, X, names, covariates)."""
    table = build_occasion_table(tables, schema, kinds, horizon, settings.treatment_window_days, model,
                                 {"3m": tuple(settings.follow_up_3m_days), "6m": tuple(settings.follow_up_6m_days)},
                                 settings.score_bands if model is not None else settings.rating_bands, progression)
    covariates = covariate_names(schema) + (["readiness"] if model is not None else [])
    X, names = encode_covariates(table, covariates)
    return table, X.astype(np.float32), names, covariates   # float32: half the memory; the trees bin values anyway


def _evaluate_bip(tables, schema, kind, horizon, estimand, seed, model, progression, settings, progress,
                  policy: dict | None = None) -> dict:
    kinds = check_kinds(kind)
    start = time.perf_counter()
    progress(0.02, "building occasions and features")
    table, X, names, covariates = occasions_and_covariates(tables, schema, kinds, horizon, model, settings, progression)
    if policy is not None:   # places above the cohort's decision points: refused before any model is fitted
        check_policy_parameters(kinds, policy.get("capacity"), policy.get("depth", 2),
                                decision_point_count(table, kinds))
    outcome = f"job_{horizon}m"
    y_all = table[outcome].to_numpy(dtype=float)
    clusters_all = cluster_codes(table["person_id"].astype(str).to_numpy())
    timing = {"occasions_and_features_s": time.perf_counter() - start}
    results = {}
    for i, k in enumerate(kinds):
        progress(0.1 + 0.88 * i / len(kinds), f"{k}: fitting propensity and outcome models")
        kind_start = time.perf_counter()
        rows, sampling = _select_rows(table, k, estimand, seed, settings)
        sub = table.iloc[rows].reset_index(drop=True)
        t = sub[f"treated__{k}"].to_numpy()
        if t.sum() < settings.min_arm or (1 - t).sum() < settings.min_arm:
            results[k] = {"kind": k, "estimate": None, "n_treated": int(t.sum()), "n_control": int((1 - t).sum()),
                          "note": f"fewer than {settings.min_arm} treated or comparison occasions: no estimate"}
            continue
        result = estimate_arrays(X[rows], names, t, y_all[rows], clusters_all[rows], sub, BIP_SUBGROUPS, estimand,
                                 seed, settings, unit="person", benchmark_groups=list(settings.sensitivity_benchmarks))
        result.update({"kind": k, "outcome": outcome, "treatment": f"{k} starts within "
                       f"{settings.treatment_window_days} days", "sampling": sampling})
        if progression:
            progress(0.1 + 0.88 * (i + 0.8) / len(kinds), f"{k}: progression effects")
            result["progression"] = _progression_effects(sub, X[rows], t, clusters_all[rows], result["_nuisances"],
                                                         estimand, seed, settings)
        result["seconds"] = time.perf_counter() - kind_start
        results[k] = result
    targeting = None
    if policy is not None:
        progress(0.9, "which intervention for whom")
        targeting = learn_policy(table, X, outcome, kinds, policy.get("capacity"), policy.get("depth", 2), seed,
                                 settings, progress=lambda f, message: progress(0.9 + 0.09 * f, message),
                                 horizon=horizon)
    timing["total_s"] = time.perf_counter() - start
    return {
        "mode": "bip", "estimand": estimand, "horizon": horizon, "seed": seed, "kinds": results,
        **({"policy": targeting} if targeting is not None else {}),
        "design": {"unit": "measurement occasion (a person contributes several; intervals are clustered by person)",
                   "window_days": settings.treatment_window_days, "horizon_months": horizon,
                   "follow_ups": {"3m": list(settings.follow_up_3m_days), "6m": list(settings.follow_up_6m_days)},
                   "bands": {"by": "score" if model is not None else "mean caseworker rating",
                             "cuts": list(settings.score_bands if model is not None else settings.rating_bands),
                             "labels": BANDS}},
        "covariates": covariates, "score_included": model is not None,
        "persons": int(table["person_id"].nunique()), "occasions": int(len(table)),
        "band_effects": band_effects(results, horizon, model is not None),
        "timing": timing,
        # which band and jobcentre each occasion fell in, per kind the rows treated: for checks
        # against a simulator's per-occasion truth (evaluation.check); dropped from JSON
        "_occasions": table[["person_id", "as_of", "readiness_band", "jobcenter"]
                            + [f"treated__{k}" for k in kinds] + [f"eligible__{k}" for k in kinds]],
    }


def _select_rows(table: pd.DataFrame, kind: str, estimand: str, seed: int, settings: Settings):
    """The kind's eligible occasions, with comparison (and, beyond `max_treated`, treated)
    occasions subsampled at known rates for the ATT.

    Keeping comparison occasions with probability q multiplies every propensity's odds by 1/q,
    and the ATT's comparison weights e/(1-e) then carry exactly the 1/q that undoes the
    sampling: the ATT estimator keeps its form on the subsample. A uniform sample of treated
    occasions estimates the same ATT with fewer rows. The ATE is never subsampled."""
    eligible = np.flatnonzero(table[f"eligible__{kind}"].to_numpy())
    treated = table[f"treated__{kind}"].to_numpy()[eligible] == 1
    n1, n0 = int(treated.sum()), int((~treated).sum())
    rng = np.random.default_rng(seed + 104729)
    keep_treated = keep_control = 1.0
    if estimand == "ATT":
        keep_treated = min(1.0, settings.max_treated / max(n1, 1))
        kept1 = max(1, round(n1 * keep_treated))
        keep_control = min(1.0, max(settings.comparison_per_treated * kept1, settings.comparison_min) / max(n0, 1))
    draw = rng.random(len(eligible))
    keep = np.where(treated, draw < keep_treated, draw < keep_control)
    rows = eligible[keep]
    return rows, {"treated_kept_share": keep_treated, "comparison_kept_share": keep_control,
                  "eligible_treated": n1, "eligible_comparison": n0}


def _progression_effects(cohort, X, t, clusters, nuisances: Nuisances, estimand, seed, settings) -> dict:
    """Effects on the change in each indicator (and the score) at each follow-up, among occasions
    with a follow-up measurement, reusing the kind's cross-fitted propensity. People who leave
    the series for a job have no follow-up, so these describe those still measured."""
    out = {}
    columns = [c for c in cohort.columns if c.startswith("change_")]
    observed_all = cohort[columns].notna().to_numpy()
    # the outcomes of one follow-up are observed on the same occasions: one ridge fit serves them all
    masks: dict[bytes, list[int]] = {}
    for j in range(len(columns)):
        masks.setdefault(np.packbits(observed_all[:, j]).tobytes(), []).append(j)
    for group in masks.values():
        observed = observed_all[:, group[0]]
        if t[observed].sum() < settings.min_arm or (1 - t[observed]).sum() < settings.min_arm:
            continue
        Y = cohort[[columns[j] for j in group]].to_numpy(dtype=float)[observed]
        mu0, mu1 = cross_fit_linear_outcome(X[observed], t[observed], Y, clusters[observed], seed,
                                            settings.evaluation_folds)
        for i, j in enumerate(group):
            y = Y[:, i]
            part = Nuisances(nuisances.propensity[observed], mu0[:, i], mu1[:, i], nuisances.kept[observed])
            est = aipw(y, t[observed], part, clusters[observed], estimand)
            naive = float(y[t[observed] == 1].mean() - y[t[observed] == 0].mean())
            out[columns[j]] = {"estimate": est.estimate, "ci_low": est.ci[0], "ci_high": est.ci[1],
                               "naive": naive, "n_treated": est.n_treated, "n_control": est.n_control}
    return dict(sorted(out.items(), key=lambda item: columns.index(item[0])))


def band_effects(results: dict, horizon: int, by_score: bool) -> dict:
    """Per kind, the effect on the treated by readiness band (and by jobcentre) with intervals:
    the small artifact the caseworker page shows as "for citizens like this one". Each kind says
    whether its band intervals passed the last truth check (`band_intervals_checked`, from
    evaluation/known_limits.json); the caseworker page shows band effects only when they did."""
    out = {}
    for kind, result in results.items():
        if result.get("estimate") is None:
            continue
        rows = {"readiness_band": {}, "jobcenter": {}}
        for s in result["subgroups"]:
            if s["group"] in rows and s["estimate"] is not None:
                rows[s["group"]][s["value"]] = {
                    "effect_points": 100 * s["estimate"], "ci_low_points": 100 * s["ci_low"],
                    "ci_high_points": 100 * s["ci_high"], "n_treated": s["n_treated"]}
        out[kind] = {"overall": {"effect_points": 100 * result["estimate"], "ci_low_points": 100 * result["ci_low"],
                                 "ci_high_points": 100 * result["ci_high"], "n_treated": result["n_treated"]},
                     "by_band": rows["readiness_band"], "by_jobcenter": rows["jobcenter"],
                     "band_intervals_checked": band_interval_check(kind)["checked"],
                     "interval": f"95%, median over {result.get('repeats', 1)} cross-fits, clustered by person"}
    return out


def evaluate_intervention(tables: dict, schema: IndicatorSchema, kind: str, horizon: int = 12,
                          estimand: str = "ATT", seed: int = 0, model=None, window_days: int | None = None,
                          progression: bool = True, settings: Settings | None = None) -> dict:
    """One kind's result from `evaluate` (the shape of a generic result, plus kind and design)."""
    settings = settings or get_settings()
    if window_days is not None:
        settings = settings.model_copy(update={"treatment_window_days": window_days})
    evaluation = evaluate(tables, kind=kind, horizon=horizon, estimand=estimand, seed=seed, model=model,
                          schema=schema, progression=progression, settings=settings)
    result = evaluation["kinds"][kind]
    if result.get("estimate") is None:
        raise EvaluationInputError("kind", kind, result["note"])
    return {**result, "design": evaluation["design"], "covariates": evaluation["covariates"]}


def evaluate_generic(cohort: pd.DataFrame, treatment: str, outcome: str, covariates: list[str] | None,
                     estimand: str = "ATT", seed: int = 0, subgroups: list[str] | None = None,
                     design: str = "observational") -> dict:
    """Generic mode through `evaluate`."""
    return evaluate(cohort=cohort, treatment=treatment, outcome=outcome, covariates=covariates,
                    subgroups=subgroups, design=design, estimand=estimand, seed=seed)


def compare_with_truth(result: dict, truth_path: Path, horizon: int) -> dict | None:
    """The simulator's true effect beside one kind's estimate, when truth.json is present."""
    if not truth_path.exists() or horizon != 12 or "kind" not in result or result.get("estimate") is None:
        return None
    truth = json.loads(truth_path.read_text())["intervention_effects"].get(result["kind"], {})
    if truth.get("att_12m") is None:
        return None
    true = truth["att_12m"]
    return {"true_att_12m": true, "covered": bool(result["ci_low"] <= true <= result["ci_high"]),
            "error": result["estimate"] - true, "naive_error": result["naive"]["estimate"] - true}
