"""`bip runs`: model runs side by side."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from models.store import EXPERIMENT, MODEL_NAME, configure_tracking
from training.tracking import champion_version

COLUMNS = [("validation_log_loss", "val logloss"), ("test_roc_auc", "test AUC"), ("test_brier", "test Brier"),
           ("test_log_loss", "test logloss"), ("test_ece", "test ECE"), ("oracle_test_roc_auc", "oracle AUC"),
           ("oracle_test_brier", "oracle Brier"), ("explain_ms_per_row_single", "explain ms")]


def _versions_by_run() -> dict[str, tuple[str, bool]]:
    client = MlflowClient()
    champion = champion_version()
    try:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    except Exception:
        versions = []
    return {v.run_id: (str(v.version), str(v.version) == str(champion)) for v in versions}


def format_runs(limit: int = 20) -> str:
    configure_tracking()
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return "no runs yet: bip train --register"
    runs = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=5 * limit)
    if "tags.bip.model_kind" in runs:
        runs = runs[runs["tags.bip.model_kind"].notna()].head(limit)
    if runs.empty or "tags.bip.model_kind" not in runs:
        return "no model runs yet: bip train --register"
    versions = _versions_by_run()
    header = f"{'run':10s} {'started':17s} {'model':9s} {'h':>3s} {'version':>8s} " + " ".join(f"{t:>12s}" for _, t in COLUMNS)
    lines = [header]
    for _, run in runs.iterrows():
        version, champion = versions.get(run["run_id"], ("-", False))
        values = " ".join(f"{run.get('metrics.' + m, float('nan')):12.4f}" for m, _ in COLUMNS)
        lines.append(f"{run['run_id'][:8]:10s} {str(run['start_time'])[:16]:17s} {run.get('tags.bip.model_kind', ''):9s} "
                     f"{str(run.get('tags.bip.horizon', '')):>3s} {version + ('*' if champion else ''):>8s} {values}")
    lines.append("* champion")
    return "\n".join(lines)
