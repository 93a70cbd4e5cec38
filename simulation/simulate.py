"""`bip simulate`: write a synthetic cohort, its ground truth and a summary of observed vs truth."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import IndicatorSchema, load_schema
from simulation.cohort import _dates, cohort_tables, run_cohort
from simulation.params import load_true_parameters
from simulation.truth import (
    HORIZONS,
    caseworker_change_effect,
    intervention_effects,
    policy_counterfactuals,
    trait_confounding,
    treated_effects_frame,
    truth_table,
)


def optimism_effect(n: int, params, seed: int) -> dict:
    """Causal effect of an optimistic caseworker: the same cohort with the same random numbers,
    every caseworker optimistic against every caseworker pessimistic; 12-month job rate from
    enrolment."""
    rates = {}
    for label, value in (("optimistic", 1.0), ("pessimistic", 0.0)):
        run = run_cohort(n, params, seed, optimism=value, keep_snapshots=False)
        months = run.job_month - run.people.enrolled_month
        rates[label] = float(((run.job_month >= 0) & (months <= 12)).mean())
    return {"job_12m_optimistic": rates["optimistic"], "job_12m_pessimistic": rates["pessimistic"],
            "risk_ratio_12m": rates["optimistic"] / rates["pessimistic"]}


def simulate(persons: int = 4000, seed: int = 7, out: str | Path = "data/bip",
             schema: IndicatorSchema | None = None, paths: int = 32, effect_paths: int = 100,
             truth: bool = True, progress=None, regime: str = "default", policy_paths: int = 8) -> dict:
    """Simulate, write the four tables plus truth (unless truth=False: tables only, for scale
    tests), and return the summary. The folder appears whole or not at all (see _atomic_folder).
    `progress(fraction, message)` is told each stage as it starts. `regime`: "default" (the kind
    world) or "realistic" (hidden trait, interaction, answers missing not at random, rater
    effects; docs/realistic-regime.md). `policy_paths`: paths per occasion and arm for
    truth_policy.parquet (a rule's true value averages thousands of occasions, so few suffice)."""
    schema = schema or load_schema()
    params = load_true_parameters(schema, regime=regime)
    final = Path(out)
    _refuse_foreign_files(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_folder(final) as out:
        summary = _simulate_into(out, persons, seed, schema, params, paths, effect_paths, truth,
                                 progress or (lambda fraction, message: None), policy_paths)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


# what bip simulate writes; a folder holding anything else is not replaced
SIMULATOR_FILES = {"persons.parquet", "measurements.parquet", "activities.parquet", "outcomes.parquet",
                   "truth.json", "truth_probabilities.parquet", "summary.json", "truth_effects.parquet", "truth_policy.parquet",
                   "truth_trait.parquet"}  # realistic regime: the hidden trait per person


def _refuse_foreign_files(folder: Path) -> None:
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in SIMULATOR_FILES)
        if foreign:
            raise FileExistsError(f"{folder} holds files bip simulate did not write ({foreign[:5]}); "
                                  "choose a new or empty folder")


class _atomic_folder:
    """Write into a temporary sibling folder and rename it into place on success, so a killed run
    leaves no tables beside a stale truth. An older simulation in the folder is replaced whole."""

    def __init__(self, final: Path):
        self.final = final

    def __enter__(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", dir=self.final.parent))
        return self.tmp

    def __exit__(self, kind, error, trace):
        if kind is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        old = None
        if self.final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.old.", dir=self.final.parent))
            os.replace(self.final, old / "previous")
        os.replace(self.tmp, self.final)
        os.chmod(self.final, 0o755)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


# where each stage starts, as a share of a run with the truth (measured on 2,000 persons)
_STAGES = {"cohort": 0.0, "tables": 0.01, "truth": 0.03, "interventions": 0.38, "policy": 0.7, "caseworker change": 0.88,
           "optimism": 0.97, "summary": 0.99}


def _simulate_into(out: Path, persons: int, seed: int, schema, params, paths: int, effect_paths: int,
                   truth: bool, progress, policy_paths: int = 8) -> dict:
    from features.tables import tables_fingerprint
    share = (lambda stage: _STAGES[stage]) if truth else (lambda stage: min(1.0, _STAGES[stage] / _STAGES["truth"]))

    def within(stage, after, message):  # a stage's own progress(fraction[, detail]) as part of the whole
        return lambda f, *detail: progress(share(stage) + f * (share(after) - share(stage)),
                                           message + (f": {detail[0]}" if detail else ""))
    run = run_cohort(persons, params, seed,
                     progress=within("cohort", "tables", f"simulating {persons} persons month by month"))
    progress(share("tables"), "writing the tables")
    tables = cohort_tables(run, schema, params, np.random.default_rng([seed, 99]))
    for name, table in tables.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
    if not truth:
        progress(1.0, "done")
        return {"persons": persons, "measurement_rows": int(len(tables["measurements"])), "truth": False}
    probabilities, se, occasions = truth_table(
        params, run, paths, seed + 1,
        progress=within("truth", "interventions", f"true probabilities ({paths} paths per occasion)"))
    probabilities.to_parquet(out / "truth_probabilities.parquet", index=False)
    effect_persons = 4000  # its own counterfactual cohort: enough persons for a stable ratio
    per_occasion: list = []
    interventions = intervention_effects(params, run, occasions, effect_paths, seed + 2,
                                         progress=within("interventions", "policy", "true effect"),
                                         per_occasion=per_occasion)
    treated_effects_frame(per_occasion).to_parquet(out / "truth_effects.parquet", index=False)
    progress(share("policy"), "true job chances under every programme (for targeting rules)")
    policy_counterfactuals(params, run, occasions, policy_paths, seed + 5,
                           progress=within("policy", "caseworker change", "arm")).to_parquet(
        out / "truth_policy.parquet", index=False)
    progress(share("caseworker change"), "true effect of a caseworker change")
    caseworker_change = caseworker_change_effect(params, run, occasions, effect_paths, seed + 3)
    progress(share("optimism"), f"true effect of caseworker optimism ({effect_persons} persons twice)")
    optimism = optimism_effect(effect_persons, params, seed)
    truth_json = {
        "seed": seed,
        **({} if params.realism is None else {"regime": params.regime}),
        "persons": persons,
        "schema": schema.name,
        "tables_sha256": tables_fingerprint(out),  # training refuses this truth beside other tables
        "parameters": params.raw,
        "caseworker_optimism": dict(zip(_caseworker_ids(run), run.world.caseworker_optimism.astype(int).tolist())),
        "probability_method": {
            "paths_per_occasion": paths,
            "description": "forward simulation from each occasion's observed state with the job "
                           "hazard integrated exactly; error is Monte Carlo over future ratings, "
                           "activities and caseworker changes",
            "mc_se_mean": {f"p_{h}m": float(se[:, i].mean()) for i, h in enumerate(HORIZONS)},
            "mc_se_max": {f"p_{h}m": float(se[:, i].max()) for i, h in enumerate(HORIZONS)},
        },
        "intervention_effects": interventions,
        "caseworker_change": caseworker_change,
        "caseworker_optimism_effect": optimism,
    }
    if params.realism is not None:
        pd.DataFrame({"person_id": run.people.person_id, "trait": run.trait}).to_parquet(
            out / "truth_trait.parquet", index=False)
        truth_json["probability_method"]["description"] = (
            "forward simulation from each occasion's observed state, the hidden trait drawn (stratified) "
            "from its posterior given the observed history (a 41-point grid; survival, ratings, belief, "
            "skipped forms and programme starts so far), the job hazard integrated exactly")
        progress(share("summary"), "confounding by the hidden trait")
        truth_json["trait_confounding"] = trait_confounding(params, run, occasions, _oracle_in_run_order(
            probabilities, run, occasions), paths, seed + 1)
        truth_json["caseworker_leniency"] = dict(zip(_caseworker_ids(run), np.round(
            run.world.caseworker_leniency, 4).tolist()))
        truth_json["caseworker_leniency_drift_per_year"] = dict(zip(_caseworker_ids(run), np.round(
            run.world.caseworker_drift, 4).tolist()))
    (out / "truth.json").write_text(json.dumps(truth_json, indent=2, ensure_ascii=False, default=str))
    progress(share("summary"), "summary")
    summary = summarise(tables, probabilities, truth_json, schema)
    progress(1.0, "done")
    return summary


def _oracle_in_run_order(table: pd.DataFrame, run, occasions) -> np.ndarray:
    """The truth table's p_12m (sorted by person and date) back in the occasions' run order."""
    person, month, day, state = occasions
    keys = pd.DataFrame({"person_id": run.people.person_id[person], "as_of": _dates(day)})
    return keys.merge(table, on=["person_id", "as_of"], how="left")["p_12m"].to_numpy()


def _caseworker_ids(run):
    from simulation.cohort import caseworker_ids
    return caseworker_ids(run.world).tolist()


def summarise(tables: dict, truth: pd.DataFrame, truth_json: dict, schema: IndicatorSchema) -> dict:
    """Observed figures beside the truth's, on occasions whose 12-month horizon is observed."""
    from features.labels import label_occasions
    persons, measurements = tables["persons"], tables["measurements"]
    occasions = measurements[["person_id", "measured_at"]].drop_duplicates()
    labelled = label_occasions(occasions.rename(columns={"measured_at": "as_of"}), tables["outcomes"], 12)
    labelled = labelled.merge(truth, on=["person_id", "as_of"], how="left")
    belief_key = truth_json["parameters"]["roles"]["belief"]
    caseworker_rows = measurements[measurements["respondent"] == "caseworker"]
    belief = caseworker_rows[["person_id", "measured_at", belief_key]].rename(columns={"measured_at": "as_of"})
    labelled = labelled.merge(belief, on=["person_id", "as_of"], how="left")
    changes = caseworker_rows.groupby("person_id")["caseworker_id"].nunique()
    believes = labelled[belief_key] == schema[belief_key].scale_max
    doubts = labelled[belief_key] <= schema[belief_key].scale_min + 1
    share = caseworker_rows[belief_key].value_counts(normalize=True).sort_index()
    return {
        "persons": int(len(persons)),
        "jobcentres": int(persons["jobcenter"].nunique()),
        "caseworkers": int(measurements["caseworker_id"].nunique()),
        "measurement_occasions": int(len(occasions)),
        "measurement_rows": int(len(measurements)),
        "occasions_per_person": float(len(occasions) / len(persons)),
        "share_with_caseworker_change": float((changes > 1).mean()),
        "occasions_12m_observed": int(len(labelled)),
        "job_12m_observed": float(labelled["label"].mean()),
        "job_12m_truth": float(labelled["p_12m"].mean()),
        "job_12m_when_caseworker_believes_observed": float(labelled.loc[believes, "label"].mean()),
        "job_12m_when_caseworker_believes_truth": float(labelled.loc[believes, "p_12m"].mean()),
        "job_12m_when_caseworker_doubts_observed": float(labelled.loc[doubts, "label"].mean()),
        "job_12m_when_caseworker_doubts_truth": float(labelled.loc[doubts, "p_12m"].mean()),
        "belief_share": {int(k): float(v) for k, v in share.items()},
        "optimism_risk_ratio_truth": truth_json["caseworker_optimism_effect"]["risk_ratio_12m"],
        "caseworker_change_risk_ratio_truth": truth_json["caseworker_change"]["risk_ratio_12m"],
        "intervention_att_12m_truth": {k: v["att_12m"] for k, v in truth_json["intervention_effects"].items()},
        "activities": tables["activities"]["kind"].value_counts().to_dict(),
    }
