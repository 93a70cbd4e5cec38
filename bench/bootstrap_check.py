"""Is the influence-function interval short for one kind? A person-level bootstrap that refits
every nuisance model, against the interval's SE, on cohorts with a known truth (not in CI:
minutes per seed).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bootstrap_check.py \
        [--kind loentilskud] [--seeds 140 141 142] [--draws 40] [--persons 4000] [--out var/bootstrap]

For each seed: simulate with truth (`bip simulate --persons P --seed S`), build the kind's
evaluation rows as `bip evaluate` does (`evaluation.run`: the same occasions, covariates and row
selection), estimate once (`evaluation.estimate.estimate_arrays`, the one estimation function),
then `--draws` times resample persons with replacement (a drawn person's occasions come along,
all copies in one fold) and estimate again with every propensity and outcome model refitted.
The bootstrap SD of the estimate is the sampling spread that includes the nuisance models' own
error, which the influence function treats as negligible; its ratio to the interval's SE says
whether the interval is short (> 1) for this kind, and the truth says whether the estimate's
actual errors agree. One JSON line per seed to <out>/results.jsonl and a summary to stdout. The
sensitivity analysis is switched off in the draws (it does not move the estimate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bip.config import get_settings  # noqa: E402
from evaluation.aipw import cluster_codes  # noqa: E402
from evaluation.estimate import estimate_arrays  # noqa: E402
from evaluation.run import _select_rows, occasions_and_covariates  # noqa: E402
from features.schema import load_schema  # noqa: E402
from features.tables import read_tables  # noqa: E402
from simulation.simulate import simulate  # noqa: E402


def kind_arrays(folder: Path, kind: str, seed: int, settings):
    """The kind's rows as `evaluation.run.evaluate` estimates them (ATT, 12 months, all kinds'
    occasion table, no champion model)."""
    tables = read_tables(folder)
    kinds = list(json.loads((folder / "truth.json").read_text())["intervention_effects"])
    table, X, names, _ = occasions_and_covariates(tables, load_schema(), kinds, 12, None, settings, False)
    rows, _ = _select_rows(table, kind, "ATT", seed, settings)
    sub = table.iloc[rows].reset_index(drop=True)
    return (X[rows], names, sub[f"treated__{kind}"].to_numpy(), sub["job_12m"].to_numpy(dtype=float),
            cluster_codes(sub["person_id"].astype(str).to_numpy()), sub)


def one_seed(seed: int, kind: str, persons: int, draws: int, out: Path) -> dict:
    folder = out / f"cohort_{persons}_{seed}"
    if not (folder / "truth.json").exists():
        simulate(persons=persons, seed=seed, out=folder)
    truth = json.loads((folder / "truth.json").read_text())["intervention_effects"][kind]["att_12m"]
    settings = get_settings().model_copy(update={"sensitivity": False})
    X, names, t, y, clusters, frame = kind_arrays(folder, kind, seed, settings)
    start = time.perf_counter()
    full = estimate_arrays(X, names, t, y, clusters, frame, [], "ATT", seed, settings, unit="person",
                           benchmark_groups=[])
    seconds = time.perf_counter() - start
    persons_of = pd.Series(np.arange(len(clusters))).groupby(clusters).apply(np.asarray).to_list()
    rng = np.random.default_rng(seed + 7919)
    estimates = []
    for b in range(draws):
        picked = rng.integers(0, len(persons_of), len(persons_of))
        rows = np.concatenate([persons_of[p] for p in picked])
        # a drawn person's copies keep the person's id, so they share a fold: a copy in the training
        # folds would otherwise predict its twin in the held-out fold (only the estimate is used)
        r = estimate_arrays(X[rows], names, t[rows], y[rows], clusters[rows], frame.iloc[rows].reset_index(drop=True), [],
                            "ATT", seed + 1 + b, settings, unit="person", benchmark_groups=[])
        estimates.append(r["estimate"])
    sd = float(np.std(estimates, ddof=1))
    row = {"seed": seed, "kind": kind, "persons": persons, "draws": draws, "truth": truth,
           "estimate": full["estimate"], "se": full["se"], "bootstrap_sd": sd, "sd_over_se": sd / full["se"],
           "z": (full["estimate"] - truth) / full["se"], "z_bootstrap": (full["estimate"] - truth) / sd,
           "covered": bool(full["ci_low"] <= truth <= full["ci_high"]),
           "covered_bootstrap": bool(abs(full["estimate"] - truth) <= 1.959964 * sd),
           "bootstrap_mean_minus_estimate": float(np.mean(estimates) - full["estimate"]),
           "seconds_per_estimate": seconds, "estimates": estimates}
    with open(out / "results.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="loentilskud")
    parser.add_argument("--seeds", type=int, nargs="+", default=[140, 141, 142])
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--persons", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bootstrap")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("seed  truth    estimate  SE      bootstrap SD  SD/SE  z(SE)  z(boot)  covered (SE / boot)")
    rows = []
    for seed in args.seeds:
        r = one_seed(seed, args.kind, args.persons, args.draws, args.out)
        rows.append(r)
        print(f"{seed:4d}  {r['truth']:+.4f}  {r['estimate']:+.4f}   {r['se']:.4f}  {r['bootstrap_sd']:.4f}        "
              f"{r['sd_over_se']:.2f}   {r['z']:+.2f}  {r['z_bootstrap']:+.2f}    {r['covered']} / {r['covered_bootstrap']}",
              flush=True)
    ratio = np.array([r["sd_over_se"] for r in rows])
    z = np.array([r["z"] for r in rows])
    print(f"\n{args.kind}, {len(rows)} seeds, {args.draws} draws each: bootstrap SD / SE mean {ratio.mean():.3f} "
          f"(range {ratio.min():.2f}-{ratio.max():.2f}); root mean square z {np.sqrt(np.mean(z ** 2)):.2f}")


if __name__ == "__main__":
    main()
