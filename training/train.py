"""`bip train`: fit both models, log them side by side, register and maybe promote one."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import mlflow

from features.tables import load_and_validate
from monitoring.profile import log_reference_profile
from training import tracking
from training.pipeline import attach_truth, evaluate, fingerprint, fit_all


def train(data: str | Path, model: str = "xgboost", horizon: int = 12, register: bool = False,
          promote_if_better: bool = False, seed: int = 7, test_from: str | None = None) -> dict:
    """Returns a summary: metrics per model, the registered version and whether it was promoted."""
    if model not in ("xgboost", "logistic"):
        raise ValueError(f"model {model!r}: allowed 'xgboost' or 'logistic'")
    tables, schema = load_and_validate(data)
    examples, fitted = fit_all(tables, schema, horizon, seed, test_from)
    oracle = attach_truth(examples, Path(data) / "truth_probabilities.parquet", horizon)
    context = {"data": str(data), "fingerprint": fingerprint(tables), "git_commit": tracking.git_commit(),
               "n_train": int(examples.train.sum()), "n_search": int(examples.search.sum()),
               "n_test": int(examples.test.sum()),
               "horizon": horizon, "seed": seed, "test_from": str(examples.test_from.date()),
               "trained_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    summary = {"context": context, "models": {}, "registered_version": None, "promoted": False}
    with tracking.start_training_run(context) as parent:
        mlflow.log_params({"primary_model": model, "horizon_months": horizon, "data_fingerprint": context["fingerprint"]})
        for kind, fit in fitted.items():
            evaluation = evaluate(fit, examples, oracle)
            run_id, uri = tracking.log_model_run(fit, evaluation, examples, context, schema, oracle)
            log_reference_profile(run_id, fit.model, examples.X[examples.train])  # drift reference (monitoring/)
            summary["models"][kind] = {"run_id": run_id, "model_uri": uri, "params": fit.params,
                                       **{part: evaluation[part] for part in ("validation", "test", "oracle_test")
                                          if part in evaluation},
                                       "worst_group_ece": _worst_group(evaluation["test_groups"]),
                                       "mean_abs_contribution": evaluation["mean_abs_contribution"],
                                       "cost": evaluation["cost"]}
        summary["parent_run_id"] = parent.info.run_id
        primary = summary["models"][model]
        if register or promote_if_better:
            champion_loss = tracking.champion_log_loss_on(tables, examples) if promote_if_better else None
            version = tracking.register(primary["model_uri"], primary["run_id"], model, primary["test"]["log_loss"])
            summary["registered_version"] = version
            summary["champion_log_loss_same_data"] = champion_loss
            if promote_if_better and (champion_loss is None or primary["test"]["log_loss"] < champion_loss):
                tracking.promote(version)
                summary["promoted"] = True
    return summary


def _worst_group(groups: dict) -> dict:
    column, value, metrics = max(((c, v, m) for c, values in groups.items() for v, m in values.items()),
                                 key=lambda item: item[2]["ece"])
    return {"column": column, "value": value, "ece": metrics["ece"], "n": metrics["n"]}


def format_summary(summary: dict) -> str:
    lines = [f"data {summary['context']['data']} (fingerprint {summary['context']['fingerprint']}), "
             f"horizon {summary['context']['horizon']} months, out-of-time test from {summary['context']['test_from']}",
             f"examples: {summary['context']['n_train']} training ({summary['context']['n_search']} in the "
             f"cross-validation search), {summary['context']['n_test']} out-of-time test",
             "",
             f"{'model':10s} {'part':22s} {'n':>6s} {'ROC AUC':>8s} {'PR AUC':>7s} {'Brier':>7s} {'logloss':>8s} "
             f"{'ECE':>7s} {'slope':>6s} {'icpt':>6s}"]
    for kind, m in summary["models"].items():
        for part in ("validation", "test", "oracle_test"):
            if part in m:
                x = m[part]
                lines.append(f"{kind:10s} {part:22s} {int(x['n']):6d} {x['roc_auc']:8.4f} {x['pr_auc']:7.4f} "
                             f"{x['brier']:7.4f} {x['log_loss']:8.4f} {x['ece']:7.4f} "
                             f"{x['calibration_slope']:6.2f} {x['calibration_intercept']:6.2f}")
        w = m["worst_group_ece"]
        lines.append(f"{'':10s} worst group ECE {w['ece']:.4f} ({w['column']}={w['value']}, n={int(w['n'])}); "
                     f"explain {m['cost']['explain_ms_per_row_single']:.3f} ms/row single, "
                     f"{m['cost']['explain_ms_per_row_batch']:.4f} ms/row batch")
        if "oracle_test" in m:
            lines.append(f"{'':10s} vs oracle: ROC AUC ratio {m['test']['roc_auc'] / m['oracle_test']['roc_auc']:.3f}, "
                         f"Brier excess {100 * (m['test']['brier'] / m['oracle_test']['brier'] - 1):+.1f}%")
        ranking = sorted(m["mean_abs_contribution"].items(), key=lambda kv: -kv[1])
        lines.append(f"{'':10s} mean |contribution|: " + ", ".join(f"{g} {v:.3f}" for g, v in ranking[:12]))
    if summary["registered_version"]:
        lines.append(f"\nregistered bip-employment version {summary['registered_version']}"
                     + (" and promoted it to champion" if summary["promoted"] else " (champion unchanged)"))
    return "\n".join(lines)
