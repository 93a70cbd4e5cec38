"""A simulated randomized trial with a known effect: the interval's coverage and width against the
oracle difference in means.

    .venv/bin/python -m bench.randomized                 # 100 replications of 900 rows
    .venv/bin/python -m bench.randomized --replications 20 --rows 900

Each replication draws 900 people with 10 covariates (like JOBS II: binary re-employment, about
two in three treated), assigns the treatment at random with a known share, and draws the outcome
from a logistic model in which the treatment adds a known amount on the log-odds scale. The true
effect on the treated of that replication is the mean over its treated rows of p1(x) - p0(x).
`bip evaluate --design randomized` (generic mode, `estimate_effect`) estimates it; the oracle is
the difference in means with the SD of its error over the replications (what a perfect SE of the
unadjusted estimator would be) and its Neyman SE per replication.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from evaluation.synthetic import TRIAL_COVARIATES as COVARIATES
from evaluation.synthetic import draw_trial

Z95 = 1.959963984540054


def difference_in_means(frame: pd.DataFrame) -> tuple[float, float]:
    """The unadjusted difference and its Neyman SE."""
    y1, y0 = frame.loc[frame.treated == 1, "job"], frame.loc[frame.treated == 0, "job"]
    return float(y1.mean() - y0.mean()), float(np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0)))


def replicate(replications: int, rows: int, first_seed: int = 0, settings=None) -> pd.DataFrame:
    """One row per replication: truth, estimate, interval, difference in means and its Neyman SE."""
    from evaluation.estimate import estimate_effect
    out = []
    for r in range(replications):
        frame, truth = draw_trial(rows, first_seed + r)
        start = time.perf_counter()
        result = estimate_effect(frame, "treated", "job", COVARIATES, design="randomized", seed=r, settings=settings)
        seconds = time.perf_counter() - start
        dim, dim_se = difference_in_means(frame)
        out.append({"replication": r, "truth": truth, "estimate": result["estimate"], "ci_low": result["ci_low"],
                    "ci_high": result["ci_high"], "se": result["se"], "se_influence": result["se_influence"],
                    "dim": dim, "dim_se": dim_se, "seconds": seconds})
    return pd.DataFrame(out)


def summary(frame: pd.DataFrame) -> dict:
    width = frame["ci_high"] - frame["ci_low"]
    oracle_sd = float((frame["dim"] - frame["truth"]).std(ddof=1))
    return {
        "replications": len(frame),
        "coverage": float(((frame["ci_low"] <= frame["truth"]) & (frame["truth"] <= frame["ci_high"])).mean()),
        "mean_width": float(width.mean()),
        "oracle_dim_width": 2 * Z95 * oracle_sd,
        "width_over_oracle_dim": float(width.mean() / (2 * Z95 * oracle_sd)),
        "width_over_neyman_dim": float((width / (2 * Z95 * frame["dim_se"])).mean()),
        "dim_coverage": float((abs(frame["dim"] - frame["truth"]) <= Z95 * frame["dim_se"]).mean()),
        "error_sd_over_mean_se": float((frame["estimate"] - frame["truth"]).std(ddof=1) / frame["se"].mean()),
        "mean_truth": float(frame["truth"].mean()),
        "seconds_per_replication": float(frame["seconds"].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=100)
    parser.add_argument("--rows", type=int, default=900)
    parser.add_argument("--out", default="var/bench_randomized.csv")
    args = parser.parse_args()
    from pathlib import Path
    frame = replicate(args.replications, args.rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    for key, value in summary(frame).items():
        print(f"{key:>26}: {value:.4f}" if isinstance(value, float) else f"{key:>26}: {value}")
    print(f"rows in {args.out}")


if __name__ == "__main__":
    main()
