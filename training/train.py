"""`bip train`: fit both models, log them side by side, register and maybe promote one."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import mlflow

from bip.config import get_settings
from features.tables import load_and_validate
from models import store
from monitoring.profile import log_reference_profile
from training import tracking
from training.pipeline import attach_truth, evaluate, fingerprint, fit_all
from training.promotion import promote_version


def train(data: str | Path, model: str = "xgboost", horizon: int | None = None, register: bool = False,
          promote_if_better: bool = False, seed: int = 7, test_from: str | None = None,
          horizons: list[int] | None = None, progress=None) -> dict:
    """Returns a summary: metrics per model and horizon, the registered version, whether it was
    promoted and, if not, why. `horizon` is the default horizon (a score's `probability`),
    `horizons` the readiness curve (both default to the settings). `progress(fraction, message)`
    is told each stage (search candidates, heads, evaluation, logging, promotion)."""
    if model not in ("xgboost", "logistic"):
        raise ValueError(f"model {model!r}: allowed 'xgboost' or 'logistic'")
    progress = progress or (lambda fraction, message: None)
    progress(0.0, f"reading {data}")
    tables, schema = load_and_validate(data)
    horizon = horizon or get_settings().horizon_months
    # shares of the time (2,000 persons, a new tracking store): fitting 55%, opening the store 5%
    # (25% when it is created), evaluating and logging 35%, registering and promoting 5%
    examples, fitted = fit_all(tables, schema, horizon, seed, test_from, horizons,
                               progress=lambda f, message: progress(0.02 + 0.53 * f, message))
    oracle = attach_truth(examples, Path(data) / "truth_probabilities.parquet")
    context = {"data": str(data), "fingerprint": fingerprint(tables), "git_commit": tracking.git_commit(),
               "n_train": int(examples.train.sum()), "n_search": int(examples.search.sum()),
               "n_test": int(examples.test.sum()), "horizon": horizon, "horizons": list(examples.horizons),
               "seed": seed, "test_from": str(examples.test_from.date()),
               "trained_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    summary = {"context": context, "models": {}, "registered_version": None, "promoted": False, "refused": None}
    progress(0.55, "opening the MLflow tracking store")
    with tracking.start_training_run(context, schema) as parent:
        mlflow.log_params({"primary_model": model, "horizon_months": horizon, "data_fingerprint": context["fingerprint"]})
        for i, (kind, fit) in enumerate(fitted.items()):
            progress(0.60 + 0.35 * i / len(fitted), f"{kind}: evaluating and logging to MLflow")
            evaluation = evaluate(fit, examples, oracle)
            run_id, uri = tracking.log_model_run(fit, evaluation, examples, context, schema, oracle)
            log_reference_profile(run_id, fit.model, examples.X[examples.train])  # drift reference (monitoring/)
            summary["models"][kind] = {"run_id": run_id, "model_uri": uri, "params": fit.params,
                                       **{part: evaluation[part] for part in ("validation", "test", "oracle_test")
                                          if part in evaluation},
                                       "horizons": {h: {part: v[part] for part in ("validation", "test", "oracle_test")
                                                        if part in v} for h, v in evaluation["horizons"].items()},
                                       "curve": evaluation["curve"],
                                       "worst_group_ece": _worst_group(evaluation["test_groups"]),
                                       "mean_abs_contribution": evaluation["mean_abs_contribution"],
                                       "cost": evaluation["cost"]}
        summary["parent_run_id"] = parent.info.run_id
        primary = summary["models"][model]
        if register or promote_if_better:
            progress(0.95, f"registering {model}")
            challenger = fitted[model].model
            version = store.register(challenger, primary["model_uri"], primary["run_id"], primary["test"]["log_loss"])
            summary["registered_version"] = version
            if promote_if_better:
                progress(0.97, "comparing with the champion")
                test = examples.test
                rows = (examples.frame.loc[test, ["person_id", "as_of"]].reset_index(drop=True),
                        {h: examples.y(h)[test] for h in examples.horizons},
                        {h: examples.observed(h)[test] for h in examples.horizons})
                promotion = promote_version(version, tables, challenger=challenger, comparison_rows=rows)
                summary["promoted"], summary["refused"] = promotion.promoted, promotion.refused
                summary["promotion"] = promotion
                if promotion.comparison:
                    summary["champion_log_loss_same_data"] = promotion.comparison[horizon]["champion"]
    progress(1.0, "done")
    return summary


def _worst_group(groups: dict) -> dict:
    column, value, metrics = max(((c, v, m) for c, values in groups.items() for v, m in values.items()),
                                 key=lambda item: item[2]["ece"])
    return {"column": column, "value": value, "ece": metrics["ece"], "n": metrics["n"]}


def format_summary(summary: dict) -> str:
    context = summary["context"]
    lines = [f"data {context['data']} (fingerprint {context['fingerprint']}), horizons "
             f"{', '.join(f'{h}' for h in context['horizons'])} months (probability at {context['horizon']}), "
             f"out-of-time test from {context['test_from']}",
             f"occasions: {context['n_train']} training ({context['n_search']} in the cross-validation search), "
             f"{context['n_test']} out-of-time test; each horizon uses those where it is observed",
             "",
             f"{'model':10s} {'h':>3s} {'part':22s} {'n':>6s} {'ROC AUC':>8s} {'PR AUC':>7s} {'Brier':>7s} "
             f"{'logloss':>8s} {'ECE':>7s} {'slope':>6s} {'icpt':>6s}"]
    for kind, m in summary["models"].items():
        for horizon, parts in m["horizons"].items():
            for part in ("validation", "test", "oracle_test"):
                if part in parts:
                    x = parts[part]
                    lines.append(f"{kind:10s} {horizon:3d} {part:22s} {int(x['n']):6d} {x['roc_auc']:8.4f} "
                                 f"{x['pr_auc']:7.4f} {x['brier']:7.4f} {x['log_loss']:8.4f} {x['ece']:7.4f} "
                                 f"{x['calibration_slope']:6.2f} {x['calibration_intercept']:6.2f}")
            if "oracle_test" in parts:
                lines.append(f"{'':10s} {horizon:3d} vs oracle: ROC AUC ratio "
                             f"{parts['test']['roc_auc'] / parts['oracle_test']['roc_auc']:.3f}, Brier excess "
                             f"{100 * (parts['test']['brier'] / parts['oracle_test']['brier'] - 1):+.1f}%")
        w = m["worst_group_ece"]
        curve = m["curve"]
        lines.append(f"{'':10s} curve: {curve['decreasing_occasions']} test occasions decreasing; a shorter head "
                     "binds on " + ", ".join(f"{k[len('held_share_'):]} {v:.1%}" for k, v in curve.items()
                                             if k.startswith("held_share_")))
        lines.append(f"{'':10s} worst group ECE {w['ece']:.4f} ({w['column']}={w['value']}, n={int(w['n'])}); "
                     f"explain {m['cost']['explain_ms_per_row_single']:.3f} ms/row single, "
                     f"{m['cost']['explain_ms_per_row_batch']:.4f} ms/row batch")
        ranking = sorted(m["mean_abs_contribution"].items(), key=lambda kv: -kv[1])
        lines.append(f"{'':10s} mean |contribution|: " + ", ".join(f"{g} {v:.3f}" for g, v in ranking[:12]))
    if summary["registered_version"]:
        lines.append(f"\nregistered {get_settings().model_name} version {summary['registered_version']}")
        if "promotion" in summary:
            lines.append(summary["promotion"].describe())
    return "\n".join(lines)
