"""Is the simulator's truth the yardstick it claims to be? Over many seeds, the realized 12-month
labels of every labelled occasion against the truth's probabilities for them (not in CI: about
10 s a seed with few effect paths).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/truth_labels.py --seeds 22 --first-seed 308

Per seed: mean(label - p_12m) over the occasions the evaluation labels, its SE clustered by
person, and z = mean / SE. If the truth is the labels' expectation given the history and persons
are independent given the simulated world, z is standard normal over seeds: its root mean square
near 1, its mean near 0. A larger spread would mean the coverage checks of the evaluation (which
compare intervals with this truth) blame the interval for the truth's own error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from features.labels import label_occasions  # noqa: E402
from features.build import measurement_occasions  # noqa: E402
from features.schema import load_schema  # noqa: E402
from features.tables import read_tables  # noqa: E402
from simulation.simulate import simulate  # noqa: E402


def seed_z(seed: int, persons: int, paths: int) -> dict:
    """One seed: the labels' mean gap from the truth, its person-clustered SE and z."""
    with tempfile.TemporaryDirectory() as folder:
        simulate(persons=persons, seed=seed, out=folder, schema=load_schema(), paths=paths, effect_paths=2,
                 policy_paths=2)
        tables = read_tables(folder)
        truth = pd.read_parquet(Path(folder) / "truth_probabilities.parquet")
    labelled = label_occasions(measurement_occasions(tables["measurements"]), tables["outcomes"], 12)
    truth = truth.assign(as_of=pd.to_datetime(truth["as_of"]).astype("datetime64[s]"))
    joined = labelled.merge(truth, on=["person_id", "as_of"], how="inner")
    gap = joined["label"] - joined["p_12m"]
    per_person = gap.groupby(joined["person_id"]).sum()
    se = float(np.sqrt((per_person ** 2).sum()) / len(joined))
    return {"seed": seed, "occasions": len(joined), "gap_points": 100 * float(gap.mean()), "se_points": 100 * se,
            "z": float(gap.mean()) / se}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=22)
    parser.add_argument("--first-seed", type=int, default=308)
    parser.add_argument("--persons", type=int, default=4000)
    parser.add_argument("--paths", type=int, default=4, help="truth paths per occasion")
    args = parser.parse_args()
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows.append(seed_z(seed, args.persons, args.paths))
        print(" ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()),
              flush=True)
    z = np.array([r["z"] for r in rows])
    print(f"{len(z)} seeds: mean z {z.mean():+.2f}, root mean square z {np.sqrt(np.mean(z ** 2)):.2f} "
          f"(1 if the truth is the labels' expectation), |z| > 1.96 in {int((np.abs(z) > 1.96).sum())}")


if __name__ == "__main__":
    main()
