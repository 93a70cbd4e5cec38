"""`bip evaluate`: generic mode on any cohort table, or BIP mode on the four tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.aipw import Nuisances, aipw, cross_fit_linear_outcome
from evaluation.bip_mode import build_intervention_cohort, covariate_names
from evaluation.estimate import encode_covariates, estimate_effect
from features.schema import IndicatorSchema

BIP_SUBGROUPS = ["jobcenter", "age_band", "readiness_band"]


def evaluate_intervention(tables: dict, schema: IndicatorSchema, kind: str, horizon: int = 12,
                          estimand: str = "ATT", seed: int = 0, model=None, window_days: int = 31,
                          progression: bool = True) -> dict:
    """The effect of starting `kind` on job chances within the horizon (and on progression)."""
    cohort = build_intervention_cohort(tables, schema, kind, horizon, window_days, model)
    covariates = covariate_names(schema) + (["readiness"] if model is not None else [])
    outcome = f"job_{horizon}m"
    result = estimate_effect(cohort, "treated", outcome, covariates, estimand, seed, cluster="person_id",
                             subgroups=BIP_SUBGROUPS)
    result["kind"] = kind
    result["design"] = (f"sequential as-of-start: each measurement occasion with an observed {horizon}-month "
                        f"horizon where the person is not already in {kind}; treated = {kind} starts within "
                        f"{window_days} days; covariates at the occasion (activities started before it)")
    if progression:
        result["progression"] = _progression_effects(cohort, covariates, schema, estimand, seed, result)
    return result


def _progression_effects(cohort, covariates, schema, estimand, seed, result) -> dict:
    """Effects on the change in each indicator (and the score) 3 and 6 months after the start,
    among occasions with a follow-up measurement. People who leave the series for a job have no
    follow-up, so these describe those still measured."""
    from evaluation.aipw import cross_fit
    X, _ = encode_covariates(cohort, covariates)
    t = cohort["treated"].to_numpy()
    clusters = cohort["person_id"].astype(str).to_numpy()
    outcome_columns = [c for c in cohort.columns if c.startswith("change_")]
    propensity = cross_fit(X, t, np.zeros(len(t)), clusters, seed=seed, estimand=estimand)  # propensity only
    out = {}
    for column in outcome_columns:
        observed = cohort[column].notna().to_numpy()
        if t[observed].sum() < 20 or (1 - t[observed]).sum() < 20:
            continue
        y = cohort.loc[observed, column].to_numpy(dtype=float)
        mu0, mu1 = cross_fit_linear_outcome(X[observed], t[observed], y, clusters[observed], seed)
        nuisances = Nuisances(propensity.propensity[observed], mu0, mu1, propensity.kept[observed])
        est = aipw(y, t[observed], nuisances, clusters[observed], estimand)
        naive = float(y[t[observed] == 1].mean() - y[t[observed] == 0].mean())
        out[column] = {"estimate": est.estimate, "ci_low": est.ci[0], "ci_high": est.ci[1],
                       "naive": naive, "n_treated": est.n_treated, "n_control": est.n_control}
    return out


def compare_with_truth(result: dict, truth_path: Path, horizon: int) -> dict | None:
    """The simulator's true effect beside the estimate, when truth.json is present."""
    if not truth_path.exists() or horizon != 12 or "kind" not in result:
        return None
    truth = json.loads(truth_path.read_text())["intervention_effects"].get(result["kind"], {})
    if truth.get("att_12m") is None:
        return None
    true = truth["att_12m"]
    return {"true_att_12m": true, "covered": bool(result["ci_low"] <= true <= result["ci_high"]),
            "error": result["estimate"] - true, "naive_error": result["naive"]["estimate"] - true}


def evaluate_generic(cohort: pd.DataFrame, treatment: str, outcome: str, covariates: list[str] | None,
                     estimand: str, seed: int, subgroups: list[str] | None = None) -> dict:
    covariates = covariates or [c for c in cohort.columns if c not in (treatment, outcome)]
    return estimate_effect(cohort, treatment, outcome, covariates, estimand, seed, subgroups=subgroups)

