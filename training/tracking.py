"""Logging training runs to MLflow, registering models and moving the champion alias."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from models.store import (
    CHAMPION,
    MODEL_NAME,
    configure_tracking,
    ensure_experiment,
    load_scoring_model,
    log_scoring_model,
)
from training import report
from training.metrics import metric_set


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flat_metrics(evaluation: dict) -> dict[str, float]:
    """MLflow metric names: {part}_{metric} and test_{column}_{value}_{metric}."""
    out = {}
    for part in ("validation", "test", "oracle_validation", "oracle_test"):
        for name, value in evaluation.get(part, {}).items():
            out[f"{part}_{name}"] = value
    for column, values in evaluation["test_groups"].items():
        for value, metrics in values.items():
            for name in ("n", "roc_auc", "brier", "ece", "mean_probability", "observed_rate"):
                out[f"test_{column}_{_safe(value)}_{name}"] = metrics[name]
    for group, value in evaluation["mean_abs_contribution"].items():
        out[f"mean_abs_contribution_{_safe(group)}"] = value
    out.update(evaluation["cost"])
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(text))


def log_model_run(fitted, evaluation: dict, examples, context: dict, schema, oracle) -> tuple[str, str]:
    """One MLflow run per model; returns (run_id, model_uri)."""
    with mlflow.start_run(run_name=fitted.kind, nested=True) as run:
        mlflow.set_tags({"bip.model_kind": fitted.kind, "bip.horizon": context["horizon"],
                         "bip.data_fingerprint": context["fingerprint"], "git_commit": context["git_commit"]})
        mlflow.log_params({"model": fitted.kind, "horizon_months": context["horizon"], "seed": context["seed"],
                           "test_from": context["test_from"], "data": context["data"],
                           "data_fingerprint": context["fingerprint"], "schema": schema.name,
                           "n_train": int(examples.train.sum()), "n_test": int(examples.test.sum()),
                           **{k: v for k, v in fitted.params.items()}})
        mlflow.log_metrics(flat_metrics(evaluation))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            y_test = examples.y[examples.test]
            report.calibration_plot(y_test, fitted.model.probability(examples.X[examples.test]),
                                    None if oracle is None else oracle[examples.test],
                                    tmp / "calibration.png", f"{fitted.kind}: out-of-time test")
            report.contribution_plot(evaluation["mean_abs_contribution"], schema, tmp / "shap_summary.png")
            (tmp / "model_card.md").write_text(report.model_card(fitted.kind, fitted.params, evaluation, context, schema))
            (tmp / "evaluation.json").write_text(json.dumps({**evaluation, "search": fitted.search}, indent=2, default=float))
            mlflow.log_artifacts(str(tmp))
        fitted.model.metadata = {"run_id": run.info.run_id, "trained_at": context["trained_at"],
                                 "kind": fitted.kind, "horizon_months": context["horizon"],
                                 "test_metrics": evaluation["test"], "fingerprint": context["fingerprint"]}
        example = pd.DataFrame(examples.X[:5], columns=fitted.model.spec.names)
        uri = log_scoring_model(fitted.model, example)
        return run.info.run_id, uri


def register(model_uri: str, run_id: str, kind: str, test_log_loss: float) -> str:
    version = mlflow.register_model(model_uri, MODEL_NAME)
    client = MlflowClient()
    client.set_model_version_tag(MODEL_NAME, version.version, "model_kind", kind)
    client.set_model_version_tag(MODEL_NAME, version.version, "run_id", run_id)
    client.set_model_version_tag(MODEL_NAME, version.version, "test_log_loss", f"{test_log_loss:.6f}")
    return str(version.version)


def champion_version() -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except Exception:  # no registered model or no alias yet
        return None


def promote(version: str) -> None:
    """Point the champion alias at a version (promotion and rollback are the same move)."""
    client = MlflowClient()
    client.get_model_version(MODEL_NAME, str(version))  # raises when the version does not exist
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))


def champion_log_loss_on(tables, examples) -> float | None:
    """The current champion's out-of-time log loss on this run's test occasions."""
    if champion_version() is None:
        return None
    champion = load_scoring_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    requests = examples.frame.loc[examples.test, ["person_id", "as_of"]]
    X = champion.features(requests, tables).to_numpy()
    return metric_set(examples.y[examples.test], champion.probability(X))["log_loss"]


def start_training_run(context: dict):
    configure_tracking()
    experiment = ensure_experiment()
    mlflow.set_experiment(experiment_id=experiment)  # nested model runs land here too
    return mlflow.start_run(experiment_id=experiment, run_name=f"train-{context['trained_at']}",
                            tags={"bip.role": "training"})
