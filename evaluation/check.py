"""Validation against the simulator's truth: coverage and bias over many seeds.

    bip evaluate-check --seeds 20 --persons 4000

For each seed: simulate a cohort with its true effects, estimate every intervention kind's
effect on 12-month job chances in BIP mode, and record whether the 95% interval covers the truth:
the overall ATT (level "overall", against truth.json) and the effects by readiness band and by
jobcentre that the caseworker page shows (levels "readiness_band" and "jobcenter", against the
mean of the simulator's paired per-occasion differences, truth_effects.parquet, over the treated
occasions of that band or jobcentre).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.aipw import Z95
from evaluation.limits import BAND_COVERAGE_CHECKED
from features.contract import ACTIVITY_KINDS
from features.schema import load_schema


def run_check(seeds: list[int], persons: int = 4000, kinds: list[str] | None = None, log=print,
              out: str | None = None, workers: int = 1, progress=None) -> pd.DataFrame:
    """Simulate each seed, evaluate every kind from one build of the occasions, compare with the
    truth. With `out`, the rows so far are written after every seed (a long check can be read
    while it runs). `workers` > 1 runs that many seeds at once, each in its own process (progress
    then per finished seed); otherwise `progress(fraction, message)` per seed and stage."""
    progress = progress or (lambda fraction, message: None)
    rows = []

    def record(seed, seed_rows, seconds, done):
        rows.extend(seed_rows)
        log(f"seed {seed}: {seconds:.0f} s")
        progress(done / len(seeds), f"seed {seed} done ({done}/{len(seeds)})")
        if out:
            pd.DataFrame(rows).to_csv(out, index=False)

    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawned, not forked: the progress bar's thread may hold a lock at fork time
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = pool.map(_check_seed, seeds, [persons] * len(seeds), [kinds] * len(seeds))
            for i, (seed, (seed_rows, seconds)) in enumerate(zip(seeds, results)):
                record(seed, seed_rows, seconds, i + 1)
        return pd.DataFrame(rows)
    for i, seed in enumerate(seeds):
        def stage(begin, end, what, i=i, seed=seed):  # a seed takes 1/len(seeds): simulating ~40%, evaluating ~60%
            return lambda f, message: progress((i + begin + (end - begin) * f) / len(seeds),
                                               f"seed {seed} ({i + 1}/{len(seeds)}) {what}: {message}")
        seed_rows, seconds = _check_seed(seed, persons, kinds, stage)
        record(seed, seed_rows, seconds, i + 1)
    return pd.DataFrame(rows)


def _check_seed(seed: int, persons: int, kinds: list[str] | None, stage=None) -> tuple[list[dict], float]:
    """One seed of the check: its rows (one per kind with a truth) and its seconds."""
    from bip.config import get_settings
    from evaluation.run import compare_with_truth, evaluate
    from features.tables import read_tables
    from simulation.simulate import simulate
    stage = stage or (lambda begin, end, what: None)
    schema = load_schema()
    rows = []
    start = time.time()
    with tempfile.TemporaryDirectory() as folder:
        simulate(persons=persons, seed=seed, out=folder, schema=schema, paths=2, effect_paths=100,
                 progress=stage(0.0, 0.4, "simulating"))
        tables = read_tables(folder)
        kind = kinds[0] if kinds and len(kinds) == 1 else "all"
        # the sensitivity analysis does not change the interval checked here: skipped for time
        evaluation = evaluate(tables, kind=kind, seed=seed, schema=schema, progression=False,
                              settings=get_settings().model_copy(update={"sensitivity": False}),
                              progress=stage(0.4, 1.0, "evaluating"))
        effects = pd.read_parquet(Path(folder) / "truth_effects.parquet")
        for name, result in evaluation["kinds"].items():
            if kinds and name not in kinds:
                continue
            truth = compare_with_truth(result, Path(folder) / "truth.json", 12)
            if truth is None:
                continue
            rows.append({"seed": seed, "kind": name, "level": "overall", "group": "", "estimate": result["estimate"],
                         "ci_low": result["ci_low"], "ci_high": result["ci_high"], "se": result["se"],
                         "se_influence": result["se_influence"], "naive": result["naive"]["estimate"],
                         "naive_ci_low": result["naive"]["ci_low"], "naive_ci_high": result["naive"]["ci_high"],
                         "truth": truth["true_att_12m"], "covered": truth["covered"],
                         "covered_influence_only": abs(result["estimate"] - truth["true_att_12m"])
                         <= 1.959963984540054 * result["se_influence"],
                         "naive_covered": result["naive"]["ci_low"] <= truth["true_att_12m"] <= result["naive"]["ci_high"],
                         "n_treated": result["n_treated"], "seconds": result["seconds"]})
            rows += _subgroup_rows(seed, name, result, band_truths(effects, evaluation["_occasions"], name))
    return rows, time.time() - start


def band_truths(effects: pd.DataFrame, occasions: pd.DataFrame, kind: str) -> dict:
    """The true effect on the treated within each readiness band and jobcentre, as the evaluation
    defines them: the mean paired difference over the kind's treated occasions that the evaluation
    saw (eligible and treated, joined on person_id and as_of). {(level, value): (truth, n)}."""
    treated = occasions[occasions[f"eligible__{kind}"].astype(bool) & (occasions[f"treated__{kind}"] == 1)]
    truth = effects.loc[effects["kind"] == kind, ["person_id", "as_of", "effect_12m"]]
    treated = treated.assign(as_of=pd.to_datetime(treated["as_of"]).astype("datetime64[s]"))
    truth = truth.assign(as_of=pd.to_datetime(truth["as_of"]).astype("datetime64[s]"))
    joined = treated.merge(truth, on=["person_id", "as_of"], how="inner")
    out = {}
    for level in ("readiness_band", "jobcenter"):
        for value, group in joined.groupby(level, observed=True):
            out[(level, str(value))] = (float(group["effect_12m"].mean()), int(len(group)))
    return out


def _subgroup_rows(seed: int, kind: str, result: dict, truths: dict) -> list[dict]:
    rows = []
    for s in result["subgroups"]:
        key = (s["group"], s["value"])
        if key not in truths or s.get("estimate") is None:
            continue
        truth, n = truths[key]
        rows.append({"seed": seed, "kind": kind, "level": s["group"], "group": s["value"], "estimate": s["estimate"],
                     "ci_low": s["ci_low"], "ci_high": s["ci_high"], "se": s["se"],
                     "se_influence": s.get("se_influence"), "truth": truth,
                     "covered": bool(s["ci_low"] <= truth <= s["ci_high"]),
                     "covered_influence_only": abs(s["estimate"] - truth) <= 1.959963984540054 * s["se_influence"],
                     "n_treated": s["n_treated"], "n_truth": n})
    return rows


def overall(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the overall ATT (a check written before band rows existed has no level)."""
    return frame if "level" not in frame else frame[frame["level"] == "overall"]


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = overall(frame)
    frame = frame.assign(error=frame["estimate"] - frame["truth"], naive_error=frame["naive"] - frame["truth"],
                         width=frame["ci_high"] - frame["ci_low"], width_influence=2 * Z95 * frame["se_influence"])
    return frame.groupby("kind").agg(
        seeds=("seed", "count"), true_att=("truth", "mean"), mean_estimate=("estimate", "mean"),
        bias=("error", "mean"), rmse=("error", lambda e: float(np.sqrt(np.mean(e ** 2)))),
        coverage=("covered", "mean"), mean_ci_width=("width", "mean"), mean_width_influence=("width_influence", "mean"),
        coverage_influence_only=("covered_influence_only", "mean"),
        naive_bias=("naive_error", "mean"), naive_coverage=("naive_covered", "mean"),
        treated=("n_treated", "mean"))


def known_limits(frame: pd.DataFrame, persons: int) -> dict:
    """evaluation/known_limits.json from a check: per kind the coverage of the intervals the
    report shows, over how many seeds, in both languages (the report warns below 0.93); and under
    "band_effects" the coverage of the readiness-band intervals over all kinds, with `checked`
    true when it reaches BAND_COVERAGE_CHECKED (the caseworker page shows band effects only then)."""
    out = {}
    for kind, rows in overall(frame).groupby("kind"):
        coverage, seeds = float(rows["covered"].mean()), int(rows["seed"].nunique())
        covered = int(rows["covered"].sum())
        out[kind] = {
            "coverage": round(coverage, 3), "seeds": seeds, "covered": covered, "persons": persons,
            "interval": "the report's interval (influence function clustered by person, median over repeated "
                        "cross-fits)",
            "note_da": (f"Kontrol mod simulatorens sande effekter ({seeds} kohorter à {persons:,} personer): "
                        f"intervallet dækkede den sande effekt {covered} af {seeds} gange "
                        f"({100 * coverage:.0f} %; et 95 %-interval bør dække cirka 95 %).").replace(",", "."),
            "note_en": (f"Check against the simulator's true effects ({seeds} cohorts of {persons:,} persons): "
                        f"the interval covered the true effect {covered} of {seeds} times "
                        f"({100 * coverage:.0f}%; a 95% interval should cover about 95%)."),
        }
    bands = frame[frame["level"] == "readiness_band"] if "level" in frame else frame.iloc[:0]
    if len(bands):
        coverage, covered = float(bands["covered"].mean()), int(bands["covered"].sum())
        out["band_effects"] = {
            "coverage": round(coverage, 3), "estimates": int(len(bands)), "covered": covered,
            "seeds": int(bands["seed"].nunique()), "persons": persons,
            "by_kind": {k: round(float(r["covered"].mean()), 3) for k, r in bands.groupby("kind")},
            "checked": bool(coverage >= BAND_COVERAGE_CHECKED), "threshold": BAND_COVERAGE_CHECKED,
            "note_da": (f"Effekterne pr. parathedsgruppe er kontrolleret mod simulatorens sande effekter: "
                        f"intervallerne dækkede {covered} af {len(bands)}.").replace(",", "."),
            "note_en": (f"The effects by readiness band were checked against the simulator's true effects: "
                        f"the intervals covered {covered} of {len(bands)}."),
        }
    return out


def report_check(frame: pd.DataFrame, persons: int, out: str | None = None, limits: str | None = None) -> pd.DataFrame:
    """Print the per-kind table and the coverage of the overall and band effects; with `limits`,
    write known_limits.json. Also for rows of several runs put together (seed chunks)."""
    table = summarise(frame)
    rows = overall(frame)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(table)
    width = (rows["ci_high"] - rows["ci_low"]).mean()
    width_if = (2 * Z95 * rows["se_influence"]).mean()
    print(f"\noverall coverage {rows['covered'].mean():.3f} over {len(rows)} estimates "
          f"(influence-function SE alone: {rows['covered_influence_only'].mean():.3f}); "
          f"naive coverage {rows['naive_covered'].mean():.3f}; mean width {100 * width:.2f} points, "
          f"{width / width_if:.3f} x the single cross-fit's influence-function width"
          + (f"; rows in {out}" if out else ""))
    if "level" in frame:
        for level in ("readiness_band", "jobcenter"):
            part = frame[frame["level"] == level]
            if len(part):
                print(f"{level} effects: coverage {part['covered'].mean():.3f} over {len(part)} estimates "
                      f"(influence-function SE alone {part['covered_influence_only'].mean():.3f}); by kind "
                      + ", ".join(f"{k} {v:.2f}" for k, v in part.groupby("kind")["covered"].mean().items()))
    if limits:
        Path(limits).write_text(json.dumps(known_limits(frame, persons), indent=2, ensure_ascii=False) + "\n")
        print(f"known limits written to {limits}")
    return table


def check_command(seeds: int = 20, first_seed: int = 100, persons: int = 4000, out: str = "data/evaluation_check.csv",
                  workers: int = 1, limits: str | None = None, quiet: bool = False):
    from bip.progress import progress_bar
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with progress_bar(quiet) as progress:
        frame = run_check(list(range(first_seed, first_seed + seeds)), persons, out=out, workers=workers,
                          progress=progress)
    frame.to_csv(out, index=False)
    return report_check(frame, persons, out, limits)


def _policy_seed(seed: int, persons: int, capacity: dict | None = None) -> dict:
    """One seed of the targeting check: simulate, learn the rule, compare with the true values."""
    from bip.config import get_settings
    from evaluation.policy import learn_policy, true_values
    from evaluation.run import occasions_and_covariates
    from features.tables import read_tables
    from simulation.simulate import simulate
    schema = load_schema()
    settings = get_settings()
    start = time.time()
    with tempfile.TemporaryDirectory() as folder:
        simulate(persons=persons, seed=seed, out=folder, schema=schema, paths=2, effect_paths=20)
        simulated = time.time()
        table, X, _, _ = occasions_and_covariates(read_tables(folder), schema, list(ACTIVITY_KINDS), 12, None,
                                                  settings, progression=False)
        policy = learn_policy(table, X, "job_12m", capacity=capacity, seed=seed, settings=settings)
        truth = true_values(policy, pd.read_parquet(Path(folder) / "truth_policy.parquet"))
    v = policy["value"]
    return {"seed": seed, "estimate": v["learned_rule"]["value"], "ci_low": v["learned_rule"]["ci_low"],
            "ci_high": v["learned_rule"]["ci_high"], "true_value": truth["crossfit_rule"],
            "true_value_final_rule": truth["final_rule"], "covered": truth["covered"],
            "estimated_gain": policy["gain_over_current_practice"]["value"],
            "true_gain": truth["gain_over_current_practice"], "true_current_practice": truth["current_practice"],
            "true_treat_nobody": truth["treat_nobody"], "true_best_same_depth": truth["best_same_depth_rule"],
            "regret": truth["regret"], "rule": json.dumps(policy["rule"]["leaves"]),
            "policy_seconds": policy["seconds"], "simulate_seconds": simulated - start}


def policy_check(seeds: list[int], persons: int = 4000, out: str | None = None, workers: int = 1,
                 capacity: dict | None = None, log=print, limits: str | None = None) -> pd.DataFrame:
    """The targeting rule against the simulator's counterfactuals over many seeds: is the true
    value of the cross-fitted rule inside its interval, is its true gain over current practice
    positive, and how far is it below the best rule of the same depth (regret)."""
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(_policy_seed, seeds, [persons] * len(seeds), [capacity] * len(seeds)))
    else:
        rows = [_policy_seed(seed, persons, capacity) for seed in seeds]
    frame = pd.DataFrame(rows)
    if out:
        frame.to_csv(out, index=False)
    log(frame.drop(columns=["rule"]).to_string(float_format=lambda x: f"{x:.4f}"))
    log(f"\ntargeting rule over {len(frame)} seeds of {persons} persons: true value inside the interval "
        f"{int(frame['covered'].sum())}/{len(frame)}; mean true gain over current practice "
        f"{100 * frame['true_gain'].mean():+.2f} points (positive in {int((frame['true_gain'] > 0).sum())}); "
        f"mean regret against the best depth-2 rule {100 * frame['regret'].mean():.2f} points; mean interval width "
        f"{100 * (frame['ci_high'] - frame['ci_low']).mean():.2f} points; {frame['policy_seconds'].mean():.0f} s per rule")
    if limits:   # the "policy" entry of known_limits.json; the other entries are kept
        from evaluation.limits import read_known_limits
        known = read_known_limits(Path(limits))
        known["policy"] = {"coverage": float(frame["covered"].mean()), "seeds": int(len(frame)), "persons": persons,
                           "mean_true_gain": float(frame["true_gain"].mean()),
                           "mean_regret": float(frame["regret"].mean()),
                           "mean_width": float((frame["ci_high"] - frame["ci_low"]).mean())}
        Path(limits).write_text(json.dumps(known, indent=2, ensure_ascii=False) + "\n")
        log(f"known limits written to {limits}")
    return frame
