"""Our targeting rule (evaluation/policy.py) side by side with mcf's optimal-policy module on the
same simulated cohort: estimated value, interval, true value, time.

mcf (Modified Causal Forest, Lechner et al.; `pip install mcf==0.9.0`) is NOT a project
dependency: it needs Python >= 3.12 and pins ray, torch, pandas 2.3.3, scikit-learn 1.7.2. It runs
in a separate virtualenv, so the bench has three stages, each in its own interpreter. The mcf venv
(torch left out, see _torch_stand_in):

    /root/.pyenv/versions/3.12.1/bin/python -m venv /tmp/mcfvenv
    /tmp/mcfvenv/bin/pip install --no-deps mcf==0.9.0
    /tmp/mcfvenv/bin/pip install ray==2.52.1 pandas==2.3.3 matplotlib==3.10.7 numba==0.62.1 sympy==1.14.0 \
        scikit-learn==1.7.2 scipy==1.16.3 fpdf2==2.8.5 seaborn==0.13.2 statsmodels==0.14.6 pyarrow psutil

    .venv/bin/python -m bench.policy_mcf prepare --seed 7 --dir /tmp/pmcf7      # project venv
    /tmp/mcfvenv/bin/python bench/policy_mcf.py mcf --dir /tmp/pmcf7 --boot 100
    .venv/bin/python -m bench.policy_mcf compare --dir /tmp/pmcf7               # project venv

prepare: simulate 4,000 persons (paths=2, effect_paths=20, as `evaluate-check --policy`), build the
occasion table and covariates, take the decision points, run `learn_policy` (timed), its true
values, and write decision_points.parquet (person_id, as_of, arm, arm_index, job_12m, the rule
features, the covariates X as x000..), truth_policy.parquet and ours.json.
mcf: ModifiedCausalForest on (arm_index 0..5, job_12m, the covariates X), IATE potential
outcomes for every decision point, then OptimalPolicy(gen_method='policy_tree', depth 2) on those
potential outcomes as policy scores, with the same readable rule features as decision variables;
time, the value mcf's evaluate reports for its allocation, the allocation: mcf.json,
mcf_allocation.parquet.
compare: the true value of mcf's allocation next to ours, current practice, treating nobody and
the best depth-2 rule on the true probabilities.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

PERSONS = 4000
OUTCOME = "job_12m"


def prepare(seed: int, folder: Path, persons: int = PERSONS) -> None:
    from bip.config import get_settings
    from evaluation.policy import decision_points, learn_policy, rule_features, true_values
    from evaluation.run import occasions_and_covariates
    from features.contract import ACTIVITY_KINDS
    from features.schema import load_schema
    from features.tables import read_tables
    from simulation.simulate import simulate

    folder.mkdir(parents=True, exist_ok=True)
    sim = folder / "cohort"
    schema, settings = load_schema(), get_settings()
    kinds = list(ACTIVITY_KINDS)
    start = time.perf_counter()
    simulate(persons=persons, seed=seed, out=str(sim), schema=schema, paths=2, effect_paths=20)
    simulated = time.perf_counter() - start
    table, X, names, _ = occasions_and_covariates(read_tables(str(sim)), schema, kinds, 12, None, settings,
                                                  progression=False)
    frame, keep, several = decision_points(table, kinds)
    arms = ["none", *kinds]
    features = rule_features(frame)
    Xd = pd.DataFrame(X[keep], columns=[f"x{i:03d}" for i in range(X.shape[1])])
    out = pd.concat([frame[["person_id", "as_of", "arm"]].reset_index(drop=True),
                     frame[[OUTCOME]].astype(float).reset_index(drop=True),
                     frame[features].astype(float).reset_index(drop=True), Xd], axis=1)
    out["arm_index"] = out["arm"].map({a: i for i, a in enumerate(arms)}).astype(int)
    out.to_parquet(folder / "decision_points.parquet", index=False)
    truth = pd.read_parquet(sim / "truth_policy.parquet")
    truth.to_parquet(folder / "truth_policy.parquet", index=False)

    policy = learn_policy(table, X, OUTCOME, seed=seed, settings=settings)
    tv = true_values(policy, truth)
    v = policy["value"]
    ours = {"seed": seed, "persons": persons, "decision_points": int(len(frame)), "simulate_seconds": simulated,
            "arms": arms, "arm_counts": policy["arm_counts"], "rule_features": features,
            "covariates": names, "seconds": policy["seconds"],
            "estimate": v["learned_rule"], "current_practice_estimate": v["current_practice"],
            "treat_nobody_estimate": v["treat_nobody"], "rule": policy["rule"]["leaves"],
            "true": {k: val for k, val in tv.items() if k != "best_rule"}, "best_rule": tv["best_rule"]["leaves"],
            "final_assigned": list(map(str, policy["_assigned_final"]))}
    (folder / "ours.json").write_text(json.dumps(ours, indent=1, default=float))
    print(f"prepared {len(frame)} decision points ({persons} persons, {X.shape[1]} covariates); ours "
          f"{v['learned_rule']['value']:.4f} [{v['learned_rule']['ci_low']:.4f}, {v['learned_rule']['ci_high']:.4f}] "
          f"true {tv['crossfit_rule']:.4f} in {policy['seconds']:.0f} s")


def _pot_columns(frame: pd.DataFrame, n_arms: int) -> list[str]:
    """mcf's potential-outcome columns, one per arm in arm order (uncentred where mcf gives them)."""
    pots = [c for c in frame.columns if c.endswith("_pot") and c.startswith(OUTCOME)]
    uncentred = [c for c in pots if "un_lc" in c]
    pots = uncentred if len(uncentred) == n_arms else [c for c in pots if "un_lc" not in c]
    if len(pots) != n_arms:
        raise SystemExit(f"expected {n_arms} potential-outcome columns, found {pots}")
    return pots


STAND_IN = '''"""Stand-in for torch written by bench/policy_mcf.py: mcf 0.9.0 imports torch only for its
CUDA paths; cuda.is_available() is False, so every CUDA path stays off."""
__version__ = "0.0-stand-in"


class _Any:
    def __init__(self, *args, **kwargs):
        pass


Tensor = dtype = device = Generator = _Any


class cuda:  # noqa: N801
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def device_count():
        return 0


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Any
'''


def _torch_stand_in(folder: Path) -> None:
    """mcf 0.9.0 pins torch 2.9.1 but imports it only for its CUDA paths, evaluating torch type
    annotations at import time. Without torch (no CPU wheel for Python 3.12 here; the CUDA build is
    several GB), a stand-in package whose cuda.is_available() is False keeps every CUDA path off.
    It is written to disk and put on PYTHONPATH so that mcf's ray workers import it too."""
    import importlib.util
    import os
    import sys
    if importlib.util.find_spec("torch") is not None:
        return
    package = folder / "torch_stand_in" / "torch"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(STAND_IN)
    sys.path.insert(0, str(package.parent))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package.parent), os.environ.get("PYTHONPATH")]))


def run_mcf(folder: Path, boot: int, seed: int = 0) -> None:
    _torch_stand_in(folder)
    from mcf import ModifiedCausalForest, OptimalPolicy

    data = pd.read_parquet(folder / "decision_points.parquet")
    ours = json.loads((folder / "ours.json").read_text())
    arms, features = ours["arms"], ours["rule_features"]
    xs = [c for c in data.columns if c.startswith("x") and c[1:].isdigit()]
    frame = data[["arm_index", OUTCOME, *xs, *features]].copy()
    frame.insert(0, "id", np.arange(len(frame)))
    # mcf drops rows with a missing value: a missing covariate gets a sentinel below every value, a
    # missing rating (our rule sends it above every cut) one above every value
    missing_x = int(frame[xs].isna().sum().sum())
    frame[xs] = frame[xs].fillna(-999.0)
    for f in features:
        frame[f] = frame[f].fillna(frame[f].max() + 1 if frame[f].notna().any() else 0.0)
    outpath = folder / "mcf_out"
    timing = {}
    cached = folder / "mcf_iate.parquet"   # the forest's output, kept so a later failure does not cost a refit
    start = time.perf_counter()
    if cached.exists():
        iate = pd.read_parquet(cached)
        timing.update(json.loads((folder / "mcf_forest_timing.json").read_text()))
        ate = None
    else:
        forest = ModifiedCausalForest(
            var_id_name="id", var_d_name="arm_index", var_y_name=OUTCOME, var_x_name_ord=xs,
            cf_boot=boot, gen_outpath=str(outpath), gen_mp_parallel=2, post_est_stats=False,
            p_iate=True, p_iate_se=False, _int_show_plots=False, _int_seed_sample_split=seed,
            cs_detect_const_vars_stop=False)   # seed 11: a dummy constant within one arm stops mcf otherwise
        forest.train(frame)
        timing["mcf_train_s"] = time.perf_counter() - start
        results = forest.predict(frame)
        timing["mcf_predict_s"] = time.perf_counter() - start - timing["mcf_train_s"]
        iate = results["iate_data_df"] if isinstance(results, dict) else results[0]["iate_data_df"]
        ate = results.get("ate") if isinstance(results, dict) else None
        iate.columns = [str(c) for c in iate.columns]
        iate.to_parquet(cached)
        (folder / "mcf_forest_timing.json").write_text(json.dumps(timing))
    print("mcf IATE columns:", list(iate.columns)[:12], "...", [c for c in iate.columns if "pot" in c], len(iate))
    ids = [c for c in iate.columns if c.casefold() in ("id", "id_mcf")]
    if ids:
        iate = iate.rename(columns={ids[0]: "id"})
        iate["id"] = iate["id"].astype(int)
    elif len(iate) == len(frame):   # no id column handed back: same rows, same order
        iate["id"] = frame["id"].to_numpy()
    else:
        raise SystemExit(f"mcf returned {len(iate)} of {len(frame)} rows and no id column")
    pots = _pot_columns(iate, len(arms))
    scores = iate[["id", *pots]].merge(frame[["id", "arm_index", *features]], on="id")
    t_policy = time.perf_counter()
    optimal = OptimalPolicy(
        gen_method="policy_tree", pt_depth_tree_1=2, pt_depth_tree_2=0, var_d_name="arm_index",
        var_id_name="id", var_polscore_name=pots, var_x_name_ord=features, gen_outpath=str(outpath / "op"),
        gen_variable_importance=False, _int_report=False)
    solved = optimal.solve(scores, data_title="decision points")
    allocation = solved["allocation_df"].copy()
    # the allocation: the column that is neither an input nor the id (before evaluate adds its own)
    alloc_col = [c for c in allocation.columns if c not in scores.columns]
    timing["policy_tree_s"] = time.perf_counter() - t_policy
    timing["total_s"] = timing["mcf_train_s"] + timing["mcf_predict_s"] + timing["policy_tree_s"]
    evaluation = optimal.evaluate(solved["allocation_df"], scores, data_title="decision points")["results_dic"]
    assigned = allocation[alloc_col[0]].to_numpy().astype(int) if alloc_col else None
    pot = scores[pots].to_numpy()
    rows = np.arange(len(scores))
    own = {"mcf_value_of_allocation": float(pot[rows, assigned].mean()),
           "mcf_value_se_naive": float(pot[rows, assigned].std(ddof=1) / np.sqrt(len(rows)))}

    def plain(o):
        if isinstance(o, dict):
            return {str(k): plain(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [plain(v) for v in o]
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, pd.DataFrame):
            return o.to_dict(orient="list")
        if isinstance(o, (pd.Series,)):
            return o.to_dict()
        return o if isinstance(o, (int, float, str, bool, type(None))) else str(o)
    out = {"timing": timing, "cf_boot": boot, "pot_columns": pots, "alloc_column": alloc_col,
           "missing_covariate_cells": missing_x, "rows": int(len(frame)), **own,
           "ate": plain(ate),
           "evaluate": plain(evaluation),
           "tree": plain(solved.get("result_dic"))}
    (folder / "mcf.json").write_text(json.dumps(out, indent=1, default=str))
    pd.DataFrame({"id": scores["id"], "mcf_arm_index": assigned}).to_parquet(folder / "mcf_allocation.parquet")
    print(json.dumps({k: out[k] for k in ("timing", "mcf_value_of_allocation", "mcf_value_se_naive")}, indent=1))


def compare(folder: Path) -> str:
    data = pd.read_parquet(folder / "decision_points.parquet")
    truth = pd.read_parquet(folder / "truth_policy.parquet")
    ours = json.loads((folder / "ours.json").read_text())
    mcf = json.loads((folder / "mcf.json").read_text()) if (folder / "mcf.json").exists() else None
    arms = ours["arms"]
    joined = data[["person_id", "as_of"]].merge(
        truth.assign(as_of=pd.to_datetime(truth["as_of"]).astype(data["as_of"].dtype)),
        on=["person_id", "as_of"], how="left", validate="one_to_one")
    p = joined[[f"p_12m_{a}" for a in arms]].to_numpy()
    rows = np.arange(len(data))
    t, e = ours["true"], ours["estimate"]
    lines = [f"seed {ours['seed']}: {ours['persons']} persons, {len(data)} decision points, arms {ours['arm_counts']}",
             f"{'':34s} {'estimate':>9s} {'95% interval':>18s} {'true':>7s} {'time s':>7s}",
             f"{'ours, cross-fitted rule':34s} {e['value']:9.4f} [{e['ci_low']:.4f}, {e['ci_high']:.4f}] "
             f"{t['crossfit_rule']:7.4f} {ours['seconds']:7.0f}",
             f"{'ours, final rule (all data)':34s} {'':9s} {'':18s} {t['final_rule']:7.4f}"]
    if mcf:
        allocation = pd.read_parquet(folder / "mcf_allocation.parquet")
        # rows mcf left out (common support) keep what they observed
        assigned = data["arm_index"].to_numpy().copy()
        assigned[allocation["id"].to_numpy()] = allocation["mcf_arm_index"].to_numpy()
        mcf["rows_allocated"] = int(len(allocation))
        true_mcf = float(p[rows, assigned].mean())
        mcf["true_value"] = true_mcf
        mcf["shares"] = {arms[a]: float(np.mean(assigned == a)) for a in range(len(arms))}
        lines.append(f"{'mcf policy tree (depth 2)':34s} {mcf['mcf_value_of_allocation']:9.4f} {'(none given)':>18s} "
                     f"{true_mcf:7.4f} {mcf['timing']['total_s']:7.0f}")
        lines.append(f"{'':34s} mcf allocated {len(allocation)} of {len(data)} rows; timing {mcf['timing']}")
        (folder / "mcf_true.json").write_text(json.dumps({"true_value": true_mcf, "shares": mcf["shares"]}))
    c = ours["current_practice_estimate"]
    lines += [f"{'current practice':34s} {c['value']:9.4f} [{c['ci_low']:.4f}, {c['ci_high']:.4f}] "
              f"{t['current_practice']:7.4f}",
              f"{'treat nobody':34s} {ours['treat_nobody_estimate']['value']:9.4f} {'':18s} {t['treat_nobody']:7.4f}",
              f"{'best depth-2 rule (true probs)':34s} {'':9s} {'':18s} {t['best_same_depth_rule']:7.4f}"]
    single = p.mean(axis=0)
    lines.append("true value of one arm for everyone: " + ", ".join(f"{a} {v:.4f}" for a, v in zip(arms, single)))
    if mcf:
        on = np.zeros(len(data), dtype=bool)
        on[allocation["id"].to_numpy()] = True
        ours_idx = np.array([arms.index(a) for a in ours["final_assigned"]])
        lines.append(f"on the {int(on.sum())} rows mcf allocated: true value mcf {p[rows, assigned][on].mean():.4f}, "
                     f"ours (final rule) {p[rows, ours_idx][on].mean():.4f}; mcf's evaluate reports "
                     f"{mcf['evaluate']['All Policy Tree']['All Policy Tree']:.4f} with shares "
                     f"{[round(x, 3) for x in mcf['evaluate']['All Policy Tree']['treatment share']]}")
    ours_shares = {a: float(np.mean(np.array(ours["final_assigned"]) == a)) for a in arms}
    lines.append("shares assigned, ours (final): " + ", ".join(f"{a} {s:.2f}" for a, s in ours_shares.items() if s))
    if mcf:
        lines.append("shares assigned, mcf:          "
                     + ", ".join(f"{a} {s:.2f}" for a, s in mcf["shares"].items() if s))
    text = "\n".join(lines)
    print(text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["prepare", "mcf", "compare"])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--persons", type=int, default=PERSONS)
    parser.add_argument("--boot", type=int, default=1000, help="mcf trees (cf_boot; mcf's default 1000)")
    args = parser.parse_args(argv)
    if args.stage == "prepare":
        prepare(args.seed, args.dir, args.persons)
    elif args.stage == "mcf":
        run_mcf(args.dir, args.boot)
    else:
        compare(args.dir)


if __name__ == "__main__":
    main()
