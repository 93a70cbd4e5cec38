"""`bip score --explain` on 100,000 simulated citizens end to end (read, validate, features,
score, explain, write) against the same work done citizen by citizen through the single-score
code path (the one /v1/score runs), in the same process.

    .venv/bin/python bench/cohort_scoring.py [--persons 100000] [--sample 2000]

Needs a champion (make run). The cohort is simulated once (tables only) into var/bench_cohort.
The citizen-by-citizen baseline runs on a random sample and is scaled to the whole cohort.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    from features.tables import read_tables
    from models.store import configure_tracking, load_scoring_model
    from features.sources import citizen_body
    from serving.citizen import score_citizen
    from serving.schemas import ScoreRequest
    from simulation.simulate import simulate
    from training.scoring import score_cohort

    folder = ROOT / "var" / f"bench_cohort_{args.persons}"
    if not (folder / "persons.parquet").exists():
        start = time.perf_counter()
        simulate(persons=args.persons, seed=11, out=folder, truth=False)
        print(f"simulated {args.persons} persons in {time.perf_counter() - start:.0f} s (once)")
    configure_tracking()
    load_scoring_model()  # warm: model load and compilation are not part of either path

    start = time.perf_counter()
    scores = score_cohort(folder, ROOT / "var" / "bench_scores.parquet", "latest", explain=True)
    cohort_s = time.perf_counter() - start

    tables = read_tables(folder, required=("persons", "measurements"))
    model = load_scoring_model()
    rng = np.random.default_rng(0)
    sample = rng.choice(tables["persons"]["person_id"].to_numpy(), size=min(args.sample, len(scores)), replace=False)
    by_person = {name: dict(tuple(t.groupby("person_id"))) for name, t in tables.items() if name != "persons"}
    persons = tables["persons"].set_index("person_id", drop=False)
    bodies = []
    for p in sample:  # preparing request bodies is not part of the timed path
        one = {"persons": persons.loc[[p]].reset_index(drop=True),
               "measurements": by_person["measurements"][p],
               "activities": by_person["activities"].get(p, tables["activities"].iloc[:0])}
        bodies.append(json.dumps(citizen_body(one, p)))
    score_citizen(model, ScoreRequest.model_validate_json(bodies[0]), date.today())
    start = time.perf_counter()
    for body in bodies:
        score_citizen(model, ScoreRequest.model_validate_json(body), date.today())
    per_citizen_s = (time.perf_counter() - start) / len(bodies)
    one_by_one_s = per_citizen_s * len(scores)
    measurements = len(tables["measurements"])
    print(f"cohort: {len(scores)} citizens, {measurements} measurement rows")
    print(f"{'path':58s} {'seconds':>9s}")
    print(f"{'bip score --explain, whole cohort, end to end':58s} {cohort_s:9.1f}")
    print(f"{'single-score path, citizen by citizen (sample x scale)':58s} {one_by_one_s:9.1f}"
          f"   ({1e3 * per_citizen_s:.2f} ms per citizen over {len(bodies)})")
    print(f"ratio (citizen by citizen / cohort): {one_by_one_s / cohort_s:.1f}x")


if __name__ == "__main__":
    main()
