"""The pipeline in both simulator regimes, against the truth (not in CI: minutes per cohort).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/realism.py \
        [--regimes default realistic] [--persons 4000] [--seeds 7] [--no-evaluation] [--out var/realism]

For each regime, size and seed: simulate with truth (`bip simulate --regime`), fit both models on
the same examples (training.pipeline.fit_all, no MLflow), and report per horizon the out-of-time
ROC AUC against the observed-history oracle's, ECE, the readiness curve's monotonicity, which model
the out-of-time log loss picks, calibration by group (the report's groups, plus the rater's
leniency quintile, the caseworker one by one, and whether the citizen skipped the latest form:
groups the model cannot see), the label-free monitoring estimate against realized outcomes, and
the evaluation's error against the true effects. One JSON line per run goes to <out>/results.jsonl
and a summary table to stdout.
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

from features.schema import load_schema  # noqa: E402
from features.tables import read_tables  # noqa: E402
from monitoring.estimate import expected_performance, realized_performance  # noqa: E402
from simulation.simulate import simulate  # noqa: E402
from training.metrics import metric_set  # noqa: E402
from training.pipeline import attach_truth, evaluate, fit_all  # noqa: E402

HORIZONS = (3, 6, 12, 24)


def cohort(regime: str, persons: int, seed: int, out: Path) -> Path:
    folder = out / f"{regime}_{persons}_{seed}"
    if not (folder / "truth.json").exists():
        simulate(persons=persons, seed=seed, out=folder, regime=regime)
    return folder


def caseworker_at(tables: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """Each occasion's caseworker and whether the citizen's form was filled in at it."""
    m = tables["measurements"]
    m = m.assign(measured_at=pd.to_datetime(m["measured_at"]).astype("datetime64[s]"))
    cw = m[m["respondent"] == "caseworker"][["person_id", "measured_at", "caseworker_id"]]
    cit = m[m["respondent"] == "citizen"][["person_id", "measured_at"]].assign(answered=True)
    keys = frame[["person_id", "as_of"]].rename(columns={"as_of": "measured_at"})
    out = keys.merge(cw, on=["person_id", "measured_at"], how="left").merge(cit, on=["person_id", "measured_at"],
                                                                            how="left")
    out["answered"] = out["answered"].fillna(False).astype(bool)
    return out


def group_ece(y, p, groups: pd.Series, min_n: int = 50) -> dict:
    out = {}
    for value, rows in groups.groupby(groups, observed=True).groups.items():
        if len(rows) >= min_n:
            out[str(value)] = {"n": int(len(rows)), **{k: float(v) for k, v in metric_set(
                y[rows], p[rows]).items() if k in ("ece", "mean_probability", "observed_rate")}}
    return out


def rater_dispersion(y, p, caseworker: pd.Series, min_n: int = 20) -> dict:
    """Calibration caseworker by caseworker: z = (observed - expected) / sqrt(sum p(1-p)) for each
    caseworker with at least `min_n` test occasions. Their SD is about 1 when the raters differ
    only by chance, more when the score is miscalibrated rater by rater."""
    frame = pd.DataFrame({"y": y, "p": p, "v": p * (1 - p), "c": caseworker.to_numpy()})
    agg = frame.groupby("c").agg(n=("y", "size"), y=("y", "sum"), p=("p", "sum"), v=("v", "sum"))
    agg = agg[(agg["n"] >= min_n) & (agg["v"] > 0)]
    z = (agg["y"] - agg["p"]) / np.sqrt(agg["v"])
    return {"caseworkers": int(len(agg)), "z_sd": float(z.std(ddof=1)), "share_abs_z_over_2": float((z.abs() > 2).mean())}


def training_figures(folder: Path, seed: int) -> dict:
    schema = load_schema()
    tables = read_tables(folder)
    truth = json.loads((folder / "truth.json").read_text())
    start = time.perf_counter()
    ex, fitted = fit_all(tables, schema, 12, seed)
    oracle = attach_truth(ex, folder / "truth_probabilities.parquet")
    fit_seconds = time.perf_counter() - start
    evaluations = {kind: evaluate(fit, ex, oracle) for kind, fit in fitted.items()}
    test_loss = {kind: e["horizons"][12]["test"]["log_loss"] for kind, e in evaluations.items()}
    validation_loss = {kind: e["horizons"][12]["validation"]["log_loss"] for kind, e in evaluations.items()}
    chosen = min(test_loss, key=test_loss.get)
    result = {"fit_seconds": fit_seconds, "test_log_loss_12m": test_loss, "validation_log_loss_12m": validation_loss,
              "chosen": chosen, "models": {}}
    context = caseworker_at(tables, ex.frame)
    lenient = truth.get("caseworker_leniency")
    for kind, e in evaluations.items():
        model = fitted[kind].model
        per = {}
        for h in ex.horizons:
            part = e["horizons"][h]
            rows = ex.rows("test", h)
            y, p = ex.y(h)[rows], model.probability(ex.X[rows], h)
            groups = {"report_groups_worst": max(((c, v, m["ece"], m["n"]) for c, vs in part["test_groups"].items()
                                                  for v, m in vs.items() if m["n"] >= 50), key=lambda t: t[2])}
            where = context[rows].reset_index(drop=True)
            groups["citizen_form"] = group_ece(y, p, where["answered"].map({True: "answered", False: "skipped"}))
            groups["rater_dispersion"] = rater_dispersion(y, p, where["caseworker_id"])
            if lenient is not None:
                offset = where["caseworker_id"].map(lenient)
                groups["rater_leniency_quintile"] = group_ece(y, p, pd.qcut(offset, 5, labels=False))
            oracle_groups = {}
            if oracle is not None:
                q = oracle[h][rows]
                oracle_groups = {"citizen_form": group_ece(y, q, where["answered"].map({True: "answered",
                                                                                       False: "skipped"})),
                                 "rater_dispersion": rater_dispersion(y, q, where["caseworker_id"])}
                if lenient is not None:
                    oracle_groups["rater_leniency_quintile"] = group_ece(y, q, pd.qcut(offset, 5, labels=False))
            per[h] = {
                "n_test": int(rows.sum()),
                "roc_auc": part["test"]["roc_auc"], "ece": part["test"]["ece"],
                "oracle_roc_auc": part.get("oracle_test", {}).get("roc_auc"),
                "oracle_ece": part.get("oracle_test", {}).get("ece"),
                "auc_ratio": part["test"]["roc_auc"] / part["oracle_test"]["roc_auc"] if "oracle_test" in part else None,
                "groups": groups, "oracle_groups": oracle_groups,
                "monitoring": {"expected": expected_performance(p), "realized": realized_performance(y, p)},
            }
        result["models"][kind] = {"horizons": per, "curve_decreasing_occasions": e["curve"]["decreasing_occasions"]}
    return result


def evaluation_figures(folder: Path, seed: int) -> dict:
    from evaluation.run import compare_with_truth
    from evaluation.run import evaluate as evaluate_effects
    schema = load_schema()
    tables = read_tables(folder)
    start = time.perf_counter()
    evaluation = evaluate_effects(tables, kind="all", seed=seed, schema=schema, progression=False)
    truth = json.loads((folder / "truth.json").read_text())
    out = {"seconds": time.perf_counter() - start, "kinds": {}}
    with_trait = evaluation_with_trait(tables, schema, folder, seed) if (folder / "truth_trait.parquet").exists() else {}
    for kind, result in evaluation["kinds"].items():
        compared = compare_with_truth(result, folder / "truth.json", 12)
        if compared is None:
            continue
        out["kinds"][kind] = {"estimate": result["estimate"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
                              "truth": compared["true_att_12m"], "error": compared["error"],
                              "covered": compared["covered"], "naive_error": compared["naive_error"],
                              "confounding": truth.get("trait_confounding", {}).get(kind),
                              "with_trait": with_trait.get(kind),
                              "sensitivity": sensitivity_bounds(result, truth.get("trait_confounding", {}).get(kind),
                                                                compared["true_att_12m"])}
    return out


def evaluation_with_trait(tables: dict, schema, folder: Path, seed: int, kinds: list[str] | None = None) -> dict:
    """The same evaluation with the hidden trait added to the covariates (only a simulator can):
    if the trait is what confounds, this estimate's error is back to sampling error."""
    from bip.config import get_settings
    from evaluation.estimate import estimate_arrays
    from evaluation.run import _select_rows, occasions_and_covariates
    settings = get_settings()
    every_kind = list(json.loads((folder / "truth.json").read_text())["intervention_effects"])
    # the evaluation's own occasions and covariates (as `bip evaluate` builds them), the trait beside them
    table, X, names, _ = occasions_and_covariates(tables, schema, every_kind, 12, None, settings, False)
    trait = pd.read_parquet(folder / "truth_trait.parquet").set_index("person_id")["trait"]
    X = np.column_stack([X, table["person_id"].map(trait).to_numpy(dtype=np.float32)])
    names = names + ["hidden_trait"]
    y, clusters = table["job_12m"].to_numpy(dtype=float), table["person_id"].astype(str).to_numpy()
    truth = json.loads((folder / "truth.json").read_text())["intervention_effects"]
    out = {}
    for kind in kinds or every_kind:
        rows, _ = _select_rows(table, kind, "ATT", seed, settings)
        t = table[f"treated__{kind}"].to_numpy()[rows]
        r = estimate_arrays(X[rows], names, t, y[rows], clusters[rows], table.iloc[rows].reset_index(drop=True),
                            [], "ATT", seed, settings, unit="person", benchmark_groups=[])
        out[kind] = {"estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                     "error": r["estimate"] - truth[kind]["att_12m"],
                     "covered": bool(r["ci_low"] <= truth[kind]["att_12m"] <= r["ci_high"]),
                     "as_the_evaluation_sees_it": trait_strength_bounds(X[rows], names, t, y[rows], clusters[rows],
                                                                        r["_repeats"], seed, settings,
                                                                        truth[kind]["att_12m"])}
    return out


def trait_strength_bounds(X, names, t, y, clusters, long_repeats, seed, settings, truth: float) -> dict:
    """The hidden trait's strength as the paper defines it for this evaluation: the gain in the
    outcome model's R^2 (cf_y) and in the Riesz representer's variance (cf_d) when the trait joins
    the evaluation's own covariates (DoubleML's gain statistics, `evaluation.sensitivity.benchmark`,
    long = with the trait, short = without it, same folds and seeds), and the bounds at that
    strength (rho = 1) around the estimate without the trait, i.e. the evaluation as run. truth.json's
    strengths are measured against the oracle's information instead (the whole history and the
    rater offsets), which is not what the evaluation's covariates leave unexplained."""
    from evaluation.sensitivity import benchmark, benchmark_nuisances, bounds, covariate_group, sensitivity_elements
    short_repeats = benchmark_nuisances(X, t, y, clusters, covariate_group(names, "hidden_trait"), seed,
                                        settings.evaluation_folds, len(long_repeats), settings.trim)
    long = [sensitivity_elements(y, t, n) for n in long_repeats]
    short = [sensitivity_elements(y, t, n) for n in short_repeats]
    strength = benchmark(long, short)
    b = bounds(short, clusters, min(strength["cf_y"], 0.9999), min(strength["cf_d"], 0.9999), 1.0)
    return {**strength, "short_estimate": b["theta"], "lower": b["lower"], "upper": b["upper"],
            "ci_lower": b["ci_lower"], "ci_upper": b["ci_upper"],
            "brackets": bool(b["lower"] <= truth <= b["upper"]),
            "ci_brackets": bool(b["ci_lower"] <= truth <= b["ci_upper"])}


def sensitivity_bounds(result: dict, confounding: dict | None, truth: float) -> dict | None:
    """The omitted-variable-bias bounds (evaluation/sensitivity.py) at the hidden trait's true
    strength (truth.json trait_confounding: cf_y, cf_d for the ATT, worst case rho = 1), and
    whether they bracket the true effect. The bounds are theta -+ strength * sqrt(sigma2 * nu2);
    their confidence bounds add the margins the report's own scenario has (the margin moves
    little with the strength). None when the evaluation has no sensitivity analysis."""
    s = result.get("sensitivity")
    if not s or confounding is None:
        return None
    cf_y, cf_d = confounding["cf_y"], confounding["cf_d_att"]
    strength = float(np.sqrt(cf_y * cf_d / (1 - cf_d)))
    b = s["bounds"]
    lower, upper = s["estimate"] - strength * b["max_bias"], s["estimate"] + strength * b["max_bias"]
    ci_lower, ci_upper = lower - (b["lower"] - b["ci_lower"]), upper + (b["ci_upper"] - b["upper"])
    return {"cf_y": cf_y, "cf_d": cf_d, "strength": strength, "lower": lower, "upper": upper,
            "ci_lower": ci_lower, "ci_upper": ci_upper, "brackets": bool(lower <= truth <= upper),
            "ci_brackets": bool(ci_lower <= truth <= ci_upper), "robustness_value": s.get("robustness_value"),
            "robustness_value_ci": s.get("robustness_value_ci")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--regimes", nargs="+", default=["default", "realistic"])
    parser.add_argument("--persons", type=int, nargs="+", default=[4000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--no-evaluation", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "realism")
    parser.add_argument("--table", action="store_true", help="print the markdown tables of <out>/results.jsonl")
    parser.add_argument("--summary", action="store_true", help="print one line per run of <out>/results.jsonl")
    args = parser.parse_args()
    if args.summary:
        print(summary_table([json.loads(line) for line in open(args.out / "results.jsonl")]))
        return
    if args.table:
        print(markdown_tables([json.loads(line) for line in open(args.out / "results.jsonl")], args.out))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for regime in args.regimes:
        for persons in args.persons:
            for seed in args.seeds:
                start = time.perf_counter()
                folder = cohort(regime, persons, seed, args.out)
                row = {"regime": regime, "persons": persons, "seed": seed,
                       "simulate_seconds": time.perf_counter() - start,
                       "command": f"bip simulate --regime {regime} --persons {persons} --seed {seed}"}
                if not args.no_training:
                    row["training"] = training_figures(folder, seed)
                    print_training(row)
                if not args.no_evaluation:
                    row["evaluation"] = evaluation_figures(folder, seed)
                    print_evaluation(row)
                with open(args.out / "results.jsonl", "a") as handle:
                    handle.write(json.dumps(row, default=float) + "\n")


def markdown_tables(rows: list[dict], folder: Path | None = None) -> str:
    """The docs' tables: per run and horizon the chosen model's figures; the evaluation per kind
    (the trait's strength read from the cohort's truth.json in `folder` when it is there)."""
    out = ["| regime | persons | seed | chosen (oot log loss 12m: xgb / logit) | h | ROC AUC | oracle | ratio | ECE | "
           "oracle ECE | ECE form skipped | worst ECE by rater leniency quintile (oracle) | rater z SD (oracle) | "
           "monitoring: expected / realized AUC | expected / realized rate | curve decreasing |",
           "|" + "---|" * 16]
    for row in rows:
        if "training" not in row:
            continue
        t = row["training"]
        m = t["models"][t["chosen"]]
        loss = t["test_log_loss_12m"]
        for h, x in m["horizons"].items():
            g, og, mon = x["groups"], x["oracle_groups"], x["monitoring"]
            quint = max((v["ece"] for v in g.get("rater_leniency_quintile", {}).values()), default=None)
            oquint = max((v["ece"] for v in og.get("rater_leniency_quintile", {}).values()), default=None)
            out.append(
                f"| {row['regime']} | {row['persons']:,} | {row['seed']} | {t['chosen']} ({loss['xgboost']:.4f} / "
                f"{loss['logistic']:.4f}) | {h} | {x['roc_auc']:.3f} | {x['oracle_roc_auc']:.3f} | {x['auc_ratio']:.3f} | "
                f"{x['ece']:.4f} | {x['oracle_ece']:.4f} | {g['citizen_form'].get('skipped', {}).get('ece', float('nan')):.4f} | "
                + (f"{quint:.4f}" if quint is not None else "n/a")
                + (f" ({oquint:.4f})" if oquint is not None else "") + " | "
                f"{g['rater_dispersion']['z_sd']:.2f} ({og['rater_dispersion']['z_sd']:.2f}) | "
                f"{mon['expected']['roc_auc']:.3f} / {mon['realized']['roc_auc']:.3f} | "
                f"{mon['expected']['positive_rate']:.4f} [{mon['expected']['positive_rate_low']:.4f}, "
                f"{mon['expected']['positive_rate_high']:.4f}] / {mon['realized']['positive_rate']:.4f} | "
                f"{m['curve_decreasing_occasions']} |")
    out += ["", "| regime | persons | seed | kind | estimate [95% interval] | truth | error | covered | naive error | "
            "trait cf_y | trait cf_d (ATT) | with the trait as covariate: error (covered) | "
            "bound at the trait's strength, with uncertainty (brackets the truth) | "
            "trait cf_y / cf_d given the evaluation's covariates | bound at that strength, with uncertainty "
            "(brackets the truth) |", "|" + "---|" * 15]
    for row in rows:
        truth = None if folder is None else folder / f"{row['regime']}_{row['persons']}_{row['seed']}" / "truth.json"
        current = json.loads(truth.read_text()).get("trait_confounding", {}) if truth and truth.exists() else {}
        for kind, k in row.get("evaluation", {}).get("kinds", {}).items():
            c = current.get(kind) or k["confounding"] or {}
            out.append(f"| {row['regime']} | {row['persons']:,} | {row['seed']} | {kind} | {k['estimate']:+.4f} "
                       f"[{k['ci_low']:+.4f}, {k['ci_high']:+.4f}] | {k['truth']:+.4f} | {k['error']:+.4f} | "
                       f"{'yes' if k['covered'] else 'no'} | {k['naive_error']:+.4f} | "
                       + (f"{c['cf_y']:.3f} | {c['cf_d_att']:.4f} |" if c else "n/a | n/a |")
                       + (f" {k['with_trait']['error']:+.4f} ({'yes' if k['with_trait']['covered'] else 'no'}) |"
                          if k.get("with_trait") else " n/a |")
                       + (f" [{k['sensitivity']['ci_lower']:+.4f}, {k['sensitivity']['ci_upper']:+.4f}] "
                          f"({'yes' if k['sensitivity']['ci_brackets'] else 'no'}) |" if k.get("sensitivity") else " n/a |")
                       + _seen_cells(k))
    return "\n".join(out)


def summary_table(rows: list[dict]) -> str:
    """One line per run (the README's table): the chosen model's worst figures over the horizons,
    the evaluation's coverage and the sensitivity bounds' bracketing, and the minutes per stage."""
    out = ["| regime | persons | seed | chosen (oot 12m log loss xgb / logit) | AUC / oracle AUC, lowest | ECE, highest "
           "(oracle's) | ECE by rater leniency fifth, worst (oracle's) | ECE where the form was skipped, highest | "
           "curve: occasions decreasing | monitoring AUC 12m expected / realized | effects covered | "
           "bound at the trait's strength brackets | minutes: simulate / train / evaluate |", "|" + "---|" * 13]
    for row in rows:
        if "training" not in row or "evaluation" not in row:
            continue
        t, e = row["training"], row["evaluation"]
        hs = t["models"][t["chosen"]]["horizons"]
        ratio = min(hs.items(), key=lambda kv: kv[1]["auc_ratio"])
        ece = max(hs.items(), key=lambda kv: kv[1]["ece"])
        quint = [(max(v["ece"] for v in x["groups"]["rater_leniency_quintile"].values()),
                  max(v["ece"] for v in x["oracle_groups"]["rater_leniency_quintile"].values()))
                 for x in hs.values() if x["groups"].get("rater_leniency_quintile")]
        skipped = max(x["groups"]["citizen_form"].get("skipped", {}).get("ece", float("nan")) for x in hs.values())
        mon = hs.get("12", hs.get(12))["monitoring"]
        kinds = e["kinds"].values()
        seen = [(k.get("with_trait") or {}).get("as_the_evaluation_sees_it") for k in kinds]
        brackets = (f"{sum(s['ci_brackets'] for s in seen)} of {len(seen)}" if all(seen) else "n/a (no hidden trait)")
        loss = t["test_log_loss_12m"]
        out.append(
            f"| {row['regime']} | {row['persons']:,} | {row['seed']} | {t['chosen']} ({loss['xgboost']:.4f} / "
            f"{loss['logistic']:.4f}) | {ratio[1]['auc_ratio']:.3f} ({ratio[0]} months) | {ece[1]['ece']:.4f} at "
            f"{ece[0]} months ({ece[1]['oracle_ece']:.4f}) | "
            + (f"{max(q for q, _ in quint):.4f} ({max(o for _, o in quint):.4f})" if quint else "n/a (raters alike)")
            + f" | {skipped:.4f} | {t['models'][t['chosen']]['curve_decreasing_occasions']} | "
            f"{mon['expected']['roc_auc']:.3f} / {mon['realized']['roc_auc']:.3f} | "
            f"{sum(k['covered'] for k in kinds)} of {len(kinds)} | {brackets} | "
            f"{row['simulate_seconds'] / 60:.0f} / {t['fit_seconds'] / 60:.0f} / {e['seconds'] / 60:.0f} |")
    return "\n".join(out)


def _seen_cells(k: dict) -> str:
    """The two table cells of the trait's strength given the evaluation's covariates."""
    seen = (k.get("with_trait") or {}).get("as_the_evaluation_sees_it")
    if not seen:
        return " n/a | n/a |"
    return (f" {seen['cf_y']:.4f} / {seen['cf_d']:.4f} | [{seen['ci_lower']:+.4f}, {seen['ci_upper']:+.4f}] "
            f"({'yes' if seen['ci_brackets'] else 'no'}) |")


def print_training(row: dict) -> None:
    t = row["training"]
    print(f"\n{row['regime']} regime, {row['persons']} persons, seed {row['seed']}: out-of-time log loss 12m "
          + ", ".join(f"{k} {v:.4f}" for k, v in t["test_log_loss_12m"].items()) + f" -> {t['chosen']}")
    print(f"{'model':9s} {'h':>3s} {'AUC':>7s} {'oracle':>7s} {'ratio':>6s} {'ECE':>7s} {'o.ECE':>7s} "
          f"{'skipped ECE':>11s} {'rater z SD':>10s} {'oracle z SD':>11s} {'lenient-q ECE':>13s} {'oracle':>6s} "
          f"{'exp. AUC':>8s} {'real AUC':>8s} {'exp. rate':>9s} {'real rate':>9s}")
    for kind, m in t["models"].items():
        for h, x in m["horizons"].items():
            g = x["groups"]
            skipped = g["citizen_form"].get("skipped", {}).get("ece", float("nan"))
            quint = max((v["ece"] for v in g.get("rater_leniency_quintile", {}).values()), default=float("nan"))
            oquint = max((v["ece"] for v in x["oracle_groups"].get("rater_leniency_quintile", {}).values()),
                         default=float("nan"))
            mon = x["monitoring"]
            print(f"{kind:9s} {h:3d} {x['roc_auc']:7.4f} {x['oracle_roc_auc'] or float('nan'):7.4f} "
                  f"{x['auc_ratio'] or float('nan'):6.3f} {x['ece']:7.4f} {x['oracle_ece'] or float('nan'):7.4f} "
                  f"{skipped:11.4f} {g['rater_dispersion']['z_sd']:10.2f} "
                  f"{x['oracle_groups'].get('rater_dispersion', {}).get('z_sd', float('nan')):11.2f} {quint:13.4f} {oquint:6.4f} "
                  f"{mon['expected']['roc_auc']:8.4f} {mon['realized']['roc_auc']:8.4f} "
                  f"{mon['expected']['positive_rate']:9.4f} {mon['realized']['positive_rate']:9.4f}")
        print(f"{kind:9s} curve: {m['curve_decreasing_occasions']} test occasions decreasing")
    sys.stdout.flush()


def print_evaluation(row: dict) -> None:
    e = row["evaluation"]
    print(f"evaluation ({e['seconds']:.0f} s): kind, estimate [95% interval], truth, error, covered, naive error, "
          "trait cf_y / cf_d(ATT); with the trait as a covariate: error, covered")
    for kind, k in e["kinds"].items():
        c = k["confounding"] or {}
        print(f"  {kind:18s} {k['estimate']:+.4f} [{k['ci_low']:+.4f}, {k['ci_high']:+.4f}] {k['truth']:+.4f} "
              f"{k['error']:+.4f} {str(k['covered']):5s} {k['naive_error']:+.4f}  "
              f"{c.get('cf_y', float('nan')):.3f} / {c.get('cf_d_att', float('nan')):.3f}"
              + (f"  {k['with_trait']['error']:+.4f} {k['with_trait']['covered']}" if k.get("with_trait") else "")
              + (f"  bound at the trait's strength [{k['sensitivity']['ci_lower']:+.4f}, {k['sensitivity']['ci_upper']:+.4f}]"
                 f" brackets: {k['sensitivity']['ci_brackets']}, RVa {k['sensitivity']['robustness_value_ci']:.3f}"
                 if k.get("sensitivity") else "")
              + (f"; given the evaluation's covariates cf_y / cf_d {seen['cf_y']:.4f} / {seen['cf_d']:.4f}, bound "
                 f"[{seen['ci_lower']:+.4f}, {seen['ci_upper']:+.4f}] brackets: {seen['ci_brackets']}"
                 if (seen := (k.get("with_trait") or {}).get("as_the_evaluation_sees_it")) else ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
