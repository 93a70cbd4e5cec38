"""The all-kinds BIP evaluation end to end: wall time and peak memory, against DoubleML's IRM.

    .venv/bin/python -m bench.evaluation                      # 4,000 simulated persons (target: <= 1 min)
    .venv/bin/python -m bench.evaluation --persons 100000     # national scale (target: <= 10 min, <= 4 GiB)
    .venv/bin/python -m bench.evaluation --doubleml           # also DoubleML 0.11 IRM (ATTE) per kind
    .venv/bin/python -m bench.evaluation --agree var/A var/B  # two runs' estimates inside each other's intervals

Each run happens in a fresh child process, so the peak resident memory reported is that run's
alone (getrusage of the children). The baseline is DoubleML's IRM with the same learners
(the same boosted trees; DoubleML takes one propensity learner), the same 5 folds and person clusters, on the same
occasion table, one kind after another, as its own users would run it
(requirements-compare.lock installs it). Figures from this shared 2-core machine are noisy:
compare the ratio printed in one run, not absolutes across runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _child(mode: str, data: str, out: str, kind: str) -> None:
    """Runs in the child process: one evaluation, its figures as one JSON line on stdout."""
    from bip.config import get_settings
    from evaluation.estimate import write_outputs
    from evaluation.run import evaluate
    from features.schema import load_schema
    from features.tables import read_tables
    start = time.perf_counter()
    tables = read_tables(data)
    read_s = time.perf_counter() - start
    schema = load_schema()
    if mode == "ours":
        result = evaluate(tables, kind=kind, schema=schema,
                          progress=lambda f, m: print(f"  [{100 * f:3.0f}%] {m} ({time.perf_counter() - start:.0f} s)",
                                                      file=sys.stderr, flush=True))
        write_outputs(result, out)
        kinds = {k: {"estimate": r.get("estimate"), "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"),
                     "n_treated": r.get("n_treated"), "seconds": r.get("seconds"),
                     "comparison_kept_share": (r.get("sampling") or {}).get("comparison_kept_share")}
                 for k, r in result["kinds"].items()}
        figures = {"occasions": result["occasions"], "persons": result["persons"], "kinds": kinds,
                   "occasions_and_features_s": result["timing"]["occasions_and_features_s"]}
    else:
        import doubleml
        import numpy as np
        import pandas as pd
        from threadpoolctl import threadpool_limits

        from evaluation.aipw import boosted
        from evaluation.bip_mode import build_occasion_table, covariate_names
        from evaluation.estimate import encode_covariates
        from features.contract import ACTIVITY_KINDS
        settings = get_settings()
        built = time.perf_counter()
        kinds = list(ACTIVITY_KINDS) if kind == "all" else [kind]
        table = build_occasion_table(tables, schema, kinds, progression=False)
        X, _ = encode_covariates(table, covariate_names(schema))   # the same matrix as ours
        X = X.astype(np.float32)
        figures = {"occasions": len(table), "occasions_and_features_s": time.perf_counter() - built, "kinds": {}}
        with threadpool_limits(settings.evaluation_threads):
            for kind in kinds:
                kind_start = time.perf_counter()
                eligible = table[f"eligible__{kind}"].to_numpy()
                rows = table[eligible]
                frame = pd.DataFrame(X[eligible], columns=[f"x{i}" for i in range(X.shape[1])])
                frame["y"] = rows["job_12m"].to_numpy(float)
                frame["d"] = rows[f"treated__{kind}"].to_numpy(int)
                frame["person"] = pd.factorize(rows["person_id"])[0]
                data_ = doubleml.DoubleMLData(frame, "y", "d", x_cols=[c for c in frame if c.startswith("x")],
                                              cluster_cols="person")
                irm = doubleml.DoubleMLIRM(data_, ml_g=boosted(True, 0), ml_m=boosted(True, 0), n_folds=settings.evaluation_folds,
                                           score="ATTE", trimming_threshold=0.001)
                irm.fit()
                low, high = irm.confint().iloc[0]
                figures["kinds"][kind] = {"estimate": float(irm.coef[0]), "ci_low": float(low), "ci_high": float(high),
                                          "seconds": time.perf_counter() - kind_start}
    figures["read_s"] = read_s
    figures["seconds"] = time.perf_counter() - start
    print(json.dumps(figures))


def _run(mode: str, data: Path, out: Path, kind: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-m", "bench.evaluation", "--child", mode, "--data", str(data),
                           "--out", str(out), "--kind", kind], stdout=subprocess.PIPE, text=True, check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # ru_maxrss of the children is the largest single child so far: exact for the first run,
    # a lower bound on later ones that peak below an earlier child
    figures["peak_gib"] = max(peak, before) / 2 ** 20
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, help="use these tables instead of simulating")
    parser.add_argument("--kind", default="all", help="'all' or one kind")
    parser.add_argument("--doubleml", action="store_true", help="also run DoubleML's IRM as the baseline")
    parser.add_argument("--child", choices=["ours", "doubleml"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("var/bench_evaluation"))
    parser.add_argument("--agree", nargs=2, type=Path, metavar=("A", "B"),
                        help="compare two finished runs' evaluation.json (e.g. 100,000 against 40,000 persons)")
    args = parser.parse_args()
    if args.agree:
        agreement(*args.agree)
        return
    if args.child:
        _child(args.child, str(args.data), str(args.out), args.kind)
        return
    data = args.data or Path(f"data/bench_evaluation_{args.persons}_{args.seed}")
    if not (data / "persons.parquet").exists():
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "bip"), "simulate", "--persons", str(args.persons), "--seed",
                        str(args.seed), "--no-truth", "--out", str(data)], check=True, stdout=subprocess.DEVNULL)
        print(f"simulated {args.persons:,} persons in {time.perf_counter() - started:.0f} s -> {data}")
    ours = _run("ours", data, args.out, args.kind)
    print(f"{args.kind}, {ours['persons']:,} persons, {ours['occasions']:,} occasions: {ours['seconds']:.0f} s "
          f"(reading {ours['read_s']:.0f} s, occasions and features once {ours['occasions_and_features_s']:.0f} s), "
          f"peak {ours['peak_gib']:.2f} GiB")
    peer = _run("doubleml", data, args.out, args.kind) if args.doubleml else None
    print(f"{'kind':20} {'ours':>28} {'s':>6}" + (f" {'DoubleML IRM':>28} {'s':>6}" if peer else ""))
    for kind, r in ours["kinds"].items():
        line = f"{kind:20} {_fmt(r):>28} {r['seconds'] or 0:6.0f}"
        if peer:
            p = peer["kinds"][kind]
            line += f" {_fmt(p):>28} {p['seconds']:6.0f}"
        print(line)
    if peer:
        print(f"DoubleML: {peer['seconds']:.0f} s end to end, peak {peer['peak_gib']:.2f} GiB (lower bound); "
              f"ratio DoubleML / ours = {peer['seconds'] / ours['seconds']:.2f}x "
              "(ours also computes the split-half SE, subgroups, progression and the report)")


def agreement(a: Path, b: Path) -> None:
    """Per kind: both estimates and whether each lies inside the other's 95% interval."""
    runs = [json.loads((folder / "evaluation.json").read_text())["kinds"] for folder in (a, b)]
    print(f"{'kind':20} {str(a):>28} {str(b):>28}  A in B's  B in A's")
    for kind in runs[0]:
        x, y = runs[0][kind], runs[1].get(kind, {})
        if x.get("estimate") is None or y.get("estimate") is None:
            continue
        print(f"{kind:20} {_fmt(x):>28} {_fmt(y):>28}  {str(y['ci_low'] <= x['estimate'] <= y['ci_high']):>8}"
              f"  {str(x['ci_low'] <= y['estimate'] <= x['ci_high']):>8}")


def _fmt(r: dict) -> str:
    if r.get("estimate") is None:
        return "no estimate"
    return f"{100 * r['estimate']:+.1f} [{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}] pp"


if __name__ == "__main__":
    main()
