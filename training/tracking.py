"""Logging training runs to MLflow: descriptive run names, tags that make runs comparable (horizon
set, schema, data fingerprint), metrics per horizon, artifacts. Registry operations live in
models/store.py."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from bip.config import get_settings
from models.store import (  # noqa: F401  champion_version and promote: re-exported for older callers
    champion_version,
    configure_tracking,
    ensure_experiment,
    log_scoring_model,
    model_tags,
    promote,
)
from training import report


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flat_metrics(evaluation: dict) -> dict[str, float]:
    """MLflow metric names: {part}_{metric} and test_{column}_{value}_{metric} at the default
    horizon, h{H}m_{part}_{metric} at every horizon, curve_{figure} for the curve."""
    out = {}
    for part in ("validation", "test", "oracle_validation", "oracle_test"):
        for name, value in evaluation.get(part, {}).items():
            out[f"{part}_{name}"] = value
        for horizon, parts in evaluation["horizons"].items():
            for name, value in parts.get(part, {}).items():
                out[f"h{horizon}m_{part}_{name}"] = value
    for column, values in evaluation["test_groups"].items():
        for value, metrics in values.items():
            for name in ("n", "roc_auc", "brier", "ece", "mean_probability", "observed_rate"):
                out[f"test_{column}_{_safe(value)}_{name}"] = metrics[name]
    for group, value in evaluation["mean_abs_contribution"].items():
        out[f"mean_abs_contribution_{_safe(group)}"] = value
    out.update({f"curve_{k}": v for k, v in evaluation["curve"].items()})
    out.update(evaluation["cost"])
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def horizons_label(horizons) -> str:
    """As models.store.model_tags writes it on model versions."""
    return ",".join(str(h) for h in horizons)


def run_name(what: str, context: dict) -> str:
    """What a run is, at a glance: model, horizons (default starred), data fingerprint, date."""
    horizons = "-".join(f"{h}*" if h == context["horizon"] else str(h) for h in context["horizons"])
    return f"{what} h{horizons}m data-{context['fingerprint'][:8]} {context['trained_at'][:10]}"


def run_tags(context: dict, schema) -> dict[str, str]:
    return {"bip.horizons": horizons_label(context["horizons"]), "bip.default_horizon": str(context["horizon"]),
            "bip.schema": schema.name, "bip.data_fingerprint": context["fingerprint"],
            "git_commit": context["git_commit"]}


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(text))


def log_model_run(fitted, evaluation: dict, examples, context: dict, schema, oracle) -> tuple[str, str]:
    """One MLflow run per model; returns (run_id, model_uri)."""
    with mlflow.start_run(run_name=run_name(fitted.kind, context), nested=True) as run:
        mlflow.set_tags({"bip.model_kind": fitted.kind, "bip.horizon": context["horizon"], **run_tags(context, schema)})
        mlflow.log_params({"model": fitted.kind, "horizon_months": context["horizon"],
                           "horizons": horizons_label(context["horizons"]), "seed": context["seed"],
                           "test_from": context["test_from"], "data": context["data"],
                           "data_fingerprint": context["fingerprint"], "schema": schema.name,
                           "n_train": int(examples.train.sum()), "n_test": int(examples.test.sum()),
                           **get_settings().training_params(),
                           **{k: v for k, v in fitted.params.items()}})
        mlflow.log_metrics(flat_metrics(evaluation))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for horizon in examples.horizons:
                test = examples.rows("test", horizon)
                report.calibration_plot(examples.y(horizon)[test], fitted.model.probability(examples.X[test], horizon),
                                        None if oracle is None or horizon not in oracle else oracle[horizon][test],
                                        tmp / f"calibration_{horizon}m.png",
                                        f"{fitted.kind}: {horizon} months, out-of-time test")
            report.contribution_plot(evaluation["mean_abs_contribution"], schema, tmp / "shap_summary.png")
            (tmp / "model_card.md").write_text(report.model_card(fitted.kind, fitted.params, evaluation, context, schema))
            (tmp / "evaluation.json").write_text(json.dumps({**evaluation, "search": fitted.search}, indent=2, default=float))
            mlflow.log_artifacts(str(tmp))
        fitted.model.metadata = {"run_id": run.info.run_id, "trained_at": context["trained_at"],
                                 "kind": fitted.kind, "horizon_months": context["horizon"],
                                 "horizons": list(context["horizons"]), "data": context["data"],
                                 "test_metrics": evaluation["test"], "fingerprint": context["fingerprint"],
                                 # the training examples' rate at the default horizon: what a
                                 # caseworker's "the average is 6 of 100" compares against
                                 "base_rate": evaluation["validation"]["observed_rate"]}
        mlflow.set_tags(model_tags(fitted.model))
        example = pd.DataFrame(examples.X[:5], columns=fitted.model.spec.names)
        uri = log_scoring_model(fitted.model, example)
        return run.info.run_id, uri


def start_training_run(context: dict, schema):
    configure_tracking()
    experiment = ensure_experiment()
    mlflow.set_experiment(experiment_id=experiment)  # nested model runs land here too
    run = mlflow.start_run(experiment_id=experiment, run_name=run_name("train", context),
                           tags={"bip.role": "training", **run_tags(context, schema)})
    mlflow.log_params(get_settings().training_params())
    return run
