"""Validation against the simulator's truth: coverage and bias over many seeds.

    bip evaluate-check --seeds 20 --persons 4000

For each seed: simulate a cohort with its true effects, estimate every intervention kind's
effect on 12-month job chances in BIP mode, and record whether the 95% interval covers the truth.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import ACTIVITY_KINDS
from features.schema import load_schema


def run_check(seeds: list[int], persons: int = 4000, kinds: list[str] | None = None, log=print) -> pd.DataFrame:
    from evaluation.run import compare_with_truth, evaluate_intervention
    from features.tables import read_tables
    from simulation.simulate import simulate
    schema = load_schema()
    rows = []
    for seed in seeds:
        start = time.time()
        with tempfile.TemporaryDirectory() as folder:
            simulate(persons=persons, seed=seed, out=folder, schema=schema, paths=2, effect_paths=100)
            tables = read_tables(folder)
            for kind in kinds or ACTIVITY_KINDS:
                result = evaluate_intervention(tables, schema, kind, seed=seed, progression=False)
                truth = compare_with_truth(result, Path(folder) / "truth.json", 12)
                rows.append({"seed": seed, "kind": kind, "estimate": result["estimate"], "ci_low": result["ci_low"],
                             "ci_high": result["ci_high"], "naive": result["naive"]["estimate"],
                             "naive_ci_low": result["naive"]["ci_low"], "naive_ci_high": result["naive"]["ci_high"],
                             "truth": truth["true_att_12m"], "covered": truth["covered"],
                             "naive_covered": result["naive"]["ci_low"] <= truth["true_att_12m"] <= result["naive"]["ci_high"],
                             "n_treated": result["n_treated"]})
        log(f"seed {seed}: {time.time() - start:.0f} s")
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(error=frame["estimate"] - frame["truth"], naive_error=frame["naive"] - frame["truth"],
                         width=frame["ci_high"] - frame["ci_low"])
    return frame.groupby("kind").agg(
        seeds=("seed", "count"), true_att=("truth", "mean"), mean_estimate=("estimate", "mean"),
        bias=("error", "mean"), rmse=("error", lambda e: float(np.sqrt(np.mean(e ** 2)))),
        coverage=("covered", "mean"), mean_ci_width=("width", "mean"),
        naive_bias=("naive_error", "mean"), naive_coverage=("naive_covered", "mean"),
        treated=("n_treated", "mean"))


def check_command(seeds: int = 20, first_seed: int = 100, persons: int = 4000, out: str = "data/evaluation_check.csv"):
    frame = run_check(list(range(first_seed, first_seed + seeds)), persons)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    table = summarise(frame)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(table)
    print(f"\noverall coverage {frame['covered'].mean():.3f} over {len(frame)} estimates; "
          f"naive coverage {frame['naive_covered'].mean():.3f}; rows in {out}")
    return table
