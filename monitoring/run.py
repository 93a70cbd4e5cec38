"""`bip monitor --data DIR`: the served model on a cohort whose outcomes have arrived.

For each cohort month (the month of the measurement occasion) it puts the label-free
estimate (from the calibrated scores alone) beside the realized performance (from the outcomes,
occasions whose horizon the register covers), computes drift of the cohort against the model's
reference profile, writes an HTML report with its figures, and logs them to MLflow against the
model version (a run in the monitoring experiment tagged with the version, and the version
tagged with that run).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from bip.config import get_settings
from features.build import measurement_occasions
from features.labels import label_occasions
from monitoring.drift import drift_report
from monitoring.estimate import expected_performance, realized_performance
from monitoring.profile import count_for_profile, load_reference_profile


def cohort_performance(frame: pd.DataFrame, period: str = "M") -> pd.DataFrame:
    """Estimated and realized performance per cohort period.

    frame: one row per occasion with as_of, probability and label (NaN where the horizon is
    not yet observed). The estimate uses every occasion of the period (what is known without
    outcomes); `estimated_*_labelled` is the same estimate on the labelled occasions only, the
    like-for-like comparison with `realized_*`."""
    rows = []
    cohorts = frame["as_of"].dt.to_period(period)
    for cohort, part in frame.groupby(cohorts, sort=True):
        labelled = part[part["label"].notna()]
        estimate = expected_performance(part["probability"].to_numpy())
        row = {"cohort": str(cohort), "cohort_start": cohort.start_time, "n": len(part),
               "n_labelled": len(labelled), **{f"estimated_{k}": v for k, v in estimate.items() if k != "n"}}
        if len(labelled):
            same = expected_performance(labelled["probability"].to_numpy())
            row.update({f"estimated_{k}_labelled": v for k, v in same.items() if k != "n"})
            realized = realized_performance(labelled["label"].to_numpy(int), labelled["probability"].to_numpy())
            row.update({f"realized_{k}": v for k, v in realized.items() if k != "n"})
        rows.append(row)
    return pd.DataFrame(rows)


def score_occasions(model, tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, np.ndarray]:
    """Every measurement occasion scored, with its label where observed; and the feature rows."""
    occasions = measurement_occasions(tables["measurements"])
    X = model.features(occasions, tables).to_numpy()
    frame = occasions.assign(probability=model.probability(X))
    labels = label_occasions(occasions, tables["outcomes"], model.horizon_months)
    frame = frame.merge(labels, on=["person_id", "as_of"], how="left")
    frame["label"] = frame["label"].astype("float64")
    return frame, X


def monitor(data: str | Path, out: str | Path, model_uri: str | None = None, period: str = "M",
            log_to_mlflow: bool = True, since: str | None = None) -> dict:
    """Run the comparison and write the report; returns the summary written to monitoring.json.
    `since`: only occasions on or after this date (e.g. the months since the model went live)."""
    from features.tables import load_and_validate
    from models.store import configure_tracking, load_scoring_model, resolve_model_uri
    from monitoring.report import write_report
    settings = get_settings()
    configure_tracking()
    uri = model_uri or settings.model_uri
    pinned, name, version, alias = resolve_model_uri(uri)
    model = load_scoring_model(pinned)
    tables, _ = load_and_validate(data)
    frame, X = score_occasions(model, tables)
    if since is not None:
        keep = (frame["as_of"] >= pd.Timestamp(since)).to_numpy()
        frame, X = frame[keep].reset_index(drop=True), X[keep]
    if frame.empty:
        raise ValueError(f"no measurement occasions in {data}" + (f" on or after {since}" if since else ""))
    by_cohort = cohort_performance(frame, period)
    profile = load_reference_profile((model.metadata or {}).get("run_id", ""))
    drift = drift_report(profile, count_for_profile(profile, X, frame["probability"].to_numpy()), settings) \
        if profile is not None else None
    labelled = frame[frame["label"].notna()]
    summary = {
        "model": {"name": name, "version": version, "alias": alias, "uri": pinned,
                  "trained_at": (model.metadata or {}).get("trained_at")},
        "data": str(data), "since": since, "period": period,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "n_occasions": len(frame), "n_labelled": len(labelled),
        "estimated": expected_performance(frame["probability"].to_numpy()),
        "estimated_labelled": expected_performance(labelled["probability"].to_numpy()) if len(labelled) else None,
        "realized": realized_performance(labelled["label"].to_numpy(int), labelled["probability"].to_numpy())
        if len(labelled) else None,
        "drift": drift,
        "cohorts": json.loads(by_cohort.drop(columns="cohort_start").to_json(orient="records")),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitoring.json").write_text(json.dumps(summary, indent=2, default=str))
    files = write_report(summary, by_cohort, out)
    if log_to_mlflow:
        summary["mlflow_run_id"] = _log(summary, out, files, settings)
    return summary


def _log(summary: dict, out: Path, files: list[Path], settings) -> str:
    """A run in the monitoring experiment, tagged with the model version; the version tagged back."""
    import mlflow
    from mlflow import MlflowClient

    from models.store import ensure_experiment
    model = summary["model"]
    experiment = ensure_experiment(settings.monitoring_experiment)
    with mlflow.start_run(experiment_id=experiment, run_name=f"monitor-v{model['version']}",
                          tags={"bip.role": "monitoring", "bip.model_name": str(model["name"]),
                                "bip.model_version": str(model["version"]), "bip.data": summary["data"]}) as run:
        metrics = {}
        for part in ("estimated", "estimated_labelled", "realized"):
            for key, value in (summary.get(part) or {}).items():
                if isinstance(value, (int, float)) and np.isfinite(value):
                    metrics[f"{part}_{key}"] = float(value)
        if summary["drift"]:
            metrics["drift_flagged_indicators"] = float(sum(
                i["status"] in ("watch", "act") for i in summary["drift"]["indicators"].values()))
            metrics["drift_score_psi"] = float(summary["drift"]["score"]["psi"])
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(out / "monitoring.json"))
        for path in files:
            mlflow.log_artifact(str(path))
    if model["name"] and model["version"]:
        MlflowClient().set_model_version_tag(model["name"], str(model["version"]), "monitoring_run_id",
                                             run.info.run_id)
    return run.info.run_id
