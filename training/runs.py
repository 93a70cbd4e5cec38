"""`bip runs`: model runs side by side; `bip runs --compare A B`: two versions like for like."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient

from bip.config import get_settings
from models import store
from models.stability import format_stability, stability_report

COLUMNS = [("validation_log_loss", "val logloss"), ("test_roc_auc", "test AUC"), ("test_brier", "test Brier"),
           ("test_log_loss", "test logloss"), ("test_ece", "test ECE"), ("oracle_test_roc_auc", "oracle AUC"),
           ("oracle_test_brier", "oracle Brier"), ("explain_ms_per_row_single", "explain ms")]
PER_HORIZON = [("test_roc_auc", "AUC"), ("test_ece", "ECE"), ("test_log_loss", "logloss"), ("oracle_test_roc_auc", "oracle")]


def _versions_by_run() -> dict[str, tuple[str, bool]]:
    client = MlflowClient()
    champion = store.champion_version()
    try:
        versions = client.search_model_versions(f"name='{store.MODEL_NAME}'")
    except Exception:
        versions = []
    return {v.run_id: (str(v.version), str(v.version) == str(champion)) for v in versions}


def format_runs(limit: int = 20) -> str:
    store.configure_tracking()
    experiment = mlflow.get_experiment_by_name(store.EXPERIMENT)
    if experiment is None:
        return "no runs yet: bip train --register"
    runs = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=5 * limit)
    if "tags.bip.model_kind" in runs:
        runs = runs[runs["tags.bip.model_kind"].notna()].head(limit)
    if runs.empty or "tags.bip.model_kind" not in runs:
        return "no model runs yet: bip train --register"
    versions = _versions_by_run()
    header = (f"{'run':10s} {'started':17s} {'model':9s} {'horizons':>10s} {'version':>8s} "
              + " ".join(f"{t:>12s}" for _, t in COLUMNS))
    lines = [header]
    for _, run in runs.iterrows():
        version, champion = versions.get(run["run_id"], ("-", False))
        values = " ".join(f"{run.get('metrics.' + m, float('nan')):12.4f}" for m, _ in COLUMNS)
        horizons = run.get("tags.bip.horizons") or run.get("tags.bip.horizon") or ""
        lines.append(f"{run['run_id'][:8]:10s} {str(run['start_time'])[:16]:17s} {run.get('tags.bip.model_kind', ''):9s} "
                     f"{str(horizons):>10s} {version + ('*' if champion else ''):>8s} {values}")
    lines.append("* champion; metrics at the default horizon (bip runs --compare A B for every horizon)")
    return "\n".join(lines)


def tables_for(version: str, data: Path | None):
    """The tables for a stability report, checked as `bip score` checks them: `data`, else the
    folder the version was trained on (None when that one is gone)."""
    from features.validation import validate_tables
    from training.scoring import read_tables_for_scoring
    model = store.load_scoring_model(store.version_uri(version))
    if data is None:
        data = model.metadata.get("data")
        if data is None or not any((Path(data) / f"persons.{ext}").exists() for ext in ("parquet", "csv")):
            return None
    tables = read_tables_for_scoring(data)
    validate_tables(tables, model.schema)
    return tables


def format_compare(a: str, b: str, data: Path | None = None) -> str:
    """Version B against version A: tags, metrics per horizon from their runs, whether they are
    alike, and the stability report on the citizens in `data` (default: B's training data)."""
    store.configure_tracking()
    client = MlflowClient()
    models, lines = {}, []
    for version in (a, b):
        try:
            record = client.get_model_version(store.MODEL_NAME, str(version))
        except Exception:
            raise LookupError(f"no version {version} of {store.MODEL_NAME}")
        models[version] = store.load_scoring_model(store.version_uri(version))
        metrics = client.get_run(record.run_id).data.metrics if record.run_id else {}
        model = models[version]
        lines.append(f"version {version}: {model.kind}, horizons {model.horizons} (probability at "
                     f"{model.horizon_months}), schema {model.schema.name}, data {model.metadata.get('fingerprint', '?')}")
        for horizon in model.horizons:
            lines.append(f"  {horizon:3d}m " + "  ".join(
                f"{label} {metrics.get(f'h{horizon}m_{name}', float('nan')):.4f}" for name, label in PER_HORIZON))
    unlike = store.unlike(models[a], models[b])
    lines.append("like for like" if not unlike else "not like for like: " + "; ".join(unlike))
    tables = tables_for(b, data)
    if tables is None:
        lines.append("no stability report: the data folder cannot be read (give --data)")
    else:
        from training.promotion import citizens_now
        report = stability_report(models[a], models[b], citizens_now(tables), tables, get_settings().band_edges)
        lines.append(format_stability(report))
    return "\n".join(lines)
