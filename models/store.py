"""The MLflow store: saving a ScoringModel as one pyfunc model and loading it back by URI, and
every registry operation (resolve, register, compare, promote). Training and the CLI call these;
nothing else touches the registry."""

from __future__ import annotations

import os
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from bip.config import DEFAULT_TRACKING_URI, get_settings
from models.scoring import ScoringModel, sigmoid

MODEL_NAME = get_settings().model_name
CHAMPION = get_settings().model_alias
CHAMPION_URI = get_settings().model_uri
EXPERIMENT = get_settings().experiment
# MLflow 3 opens an experiment in the GenAI view unless it is typed; this tag selects the classic
# model-training view (runs, metrics, models)
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def configure_tracking() -> str:
    """Use MLFLOW_TRACKING_URI when set (a team server), else the local sqlite store in mlruns/."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or get_settings().tracking_uri
    if uri == DEFAULT_TRACKING_URI:
        Path("mlruns").mkdir(exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # the registry lives in the same store (mlflow writes MLFLOW_REGISTRY_URI back into the
    # environment, so reading it here would pick up a stale store)
    mlflow.set_registry_uri(uri)
    if uri.startswith("sqlite:///"):
        create_store_once(uri)
    return uri


def create_store_once(uri: str) -> None:
    """Open the sqlite store under a file lock beside it. MLflow creates a new store's tables and
    runs its migrations in whichever process opens it first, without a lock; the workers of
    `bip serve --workers 2` and a job opening a new store at once collide and leave it half made
    (`_alembic_tmp_*` left behind, every later call failing). Under the lock the first process makes
    it and the others find it made; MLflow caches the opened stores, so this costs once a process."""
    import fcntl
    database = Path(uri[len("sqlite:///"):])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_experiment(name: str = EXPERIMENT) -> str:
    """The experiment's id, created (typed for the model-training view) when missing."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
            for key, value in EXPERIMENT_KIND.items():  # experiments made before the tag
                MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id
    location = None
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        # artifacts beside the database file, never in whatever folder the command ran from
        artifacts = Path(uri[len("sqlite:///"):]).parent / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        location = artifacts.resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)


class BipPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a ScoringModel: a frame of feature columns in, probabilities out.
    The full object (features, explainer) is reachable with unwrap_python_model().scoring_model."""

    def __init__(self, scoring_model: ScoringModel):
        self.scoring_model = scoring_model

    def predict(self, context, model_input: pd.DataFrame, params=None):
        model = self.scoring_model
        X = model_input[model.spec.names].to_numpy(dtype=np.float64)
        curve = model.curve_log_odds(X)
        out = pd.DataFrame({"probability": sigmoid(curve[:, model.horizons.index(model.horizon_months)])})
        for k, horizon in enumerate(model.horizons):
            out[f"probability_{horizon}m"] = sigmoid(curve[:, k])
        return out


def _pip_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    def installed(*names: str) -> str:  # the first of these distributions that is installed, pinned
        for name in names:
            try:
                return f"{name}=={version(name)}"
            except PackageNotFoundError:
                continue
        raise PackageNotFoundError(names[0])

    # XGBoost is installed as the CPU-only wheel (xgboost-cpu) in the lock and image; either will do
    return [installed("mlflow"), installed("xgboost-cpu", "xgboost")] + [
        installed(p) for p in ("scikit-learn", "pandas", "numpy", "pyarrow", "cloudpickle")]


def log_scoring_model(model: ScoringModel, example: pd.DataFrame) -> str:
    """Log inside the active run; returns the model URI."""
    from mlflow.models import infer_signature
    prediction = BipPyfunc(model).predict(None, example)
    info = mlflow.pyfunc.log_model(
        name="model", python_model=BipPyfunc(model), signature=infer_signature(example, prediction),
        input_example=example.iloc[:2], pip_requirements=_pip_requirements(),
    )
    return info.model_uri


def resolve_model_uri(uri: str) -> tuple[str, str | None, str | None, str | None]:
    """(uri to load, name, version, alias) for a models:/ URI, the alias looked up in the registry
    and the URI pinned to that version, so what is loaded is the version reported even if the
    alias moves meanwhile; any other URI comes back as it is with no name, version or alias."""
    if not uri.startswith("models:/"):
        return uri, None, None, None
    rest = uri[len("models:/"):]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        version = str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
        return f"models:/{name}/{version}", name, version, alias
    name, _, version = rest.partition("/")
    return uri, name, version or None, None


def load_scoring_model(uri: str = CHAMPION_URI) -> ScoringModel:
    pyfunc = mlflow.pyfunc.load_model(uri)
    return pyfunc.unwrap_python_model().scoring_model


def announce_model_change(marker: Path | None = None) -> None:
    """Rewrite the generation marker every service worker watches (BIP_MODEL_MARKER), so all of
    them load the champion within a second of a promotion or reload on this machine."""
    marker = Path(marker or get_settings().model_marker)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(str(time.time_ns()))
    tmp.replace(marker)


# ---- registry ---------------------------------------------------------------------------------
def version_uri(version: str) -> str:
    return f"models:/{MODEL_NAME}/{version}"


def model_tags(model: ScoringModel) -> dict[str, str]:
    """What makes two models comparable, as tags on runs and model versions."""
    return {"bip.horizons": ",".join(str(h) for h in model.horizons),
            "bip.default_horizon": str(model.horizon_months),
            "bip.schema": model.schema.name,
            "bip.data_fingerprint": str(model.metadata.get("fingerprint", "unknown"))}


def register(model: ScoringModel, model_uri: str, run_id: str, test_log_loss: float) -> str:
    """A new version of the registered model, tagged with kind, run, horizons, schema and data.
    (Through MlflowClient as mlflow.register_model does, without its prints to stderr.)"""
    from mlflow.exceptions import MlflowException
    client = MlflowClient()
    try:
        client.create_registered_model(MODEL_NAME)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    # a logged model's URI, models:/<model id>, links the version to the logged model
    rest = model_uri[len("models:/"):] if model_uri.startswith("models:/") else ""
    model_id = rest if rest and "/" not in rest and "@" not in rest else None
    version = str(client.create_model_version(MODEL_NAME, model_uri, model_id=model_id).version)
    tags = {"model_kind": model.kind, "run_id": run_id, "test_log_loss": f"{test_log_loss:.6f}", **model_tags(model)}
    set_version_tags(version, tags)
    return version


def set_version_tags(version: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, str(version), key, str(value))


def champion_version() -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except Exception:  # no registered model or no alias yet
        return None


def promote(version: str) -> None:
    """Point the champion alias at a version (promotion and rollback are the same move). The
    checks that come first (like for like, stability) are training/promotion.py's."""
    client = MlflowClient()
    client.get_model_version(MODEL_NAME, str(version))  # raises when the version does not exist
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))


def unlike(champion: ScoringModel, challenger: ScoringModel) -> list[str]:
    """Why two models cannot be compared like for like (empty when they can): the horizon set,
    the default horizon (what `probability` means) and the indicator schema must match."""
    reasons = []
    if champion.horizons != challenger.horizons:
        reasons.append(f"horizon set {_months(challenger.horizons)} differs from the champion's "
                       f"{_months(champion.horizons)}")
    if champion.horizon_months != challenger.horizon_months:
        reasons.append(f"probability is at {challenger.horizon_months} months, the champion's at "
                       f"{champion.horizon_months} months")
    if champion.schema.name != challenger.schema.name:
        reasons.append(f"indicator schema {challenger.schema.name!r} differs from the champion's "
                       f"{champion.schema.name!r}")
    elif champion.schema_dict != challenger.schema_dict:
        reasons.append(f"indicator schema {challenger.schema.name!r} has other indicators or scales than the champion's")
    return reasons


def _months(horizons) -> str:
    return "{" + ", ".join(f"{h}m" for h in horizons) + "}"


def compare(champion: ScoringModel, challenger: ScoringModel, requests: pd.DataFrame,
            tables: dict[str, pd.DataFrame], labels: dict[int, np.ndarray],
            observed: dict[int, np.ndarray]) -> dict[int, dict[str, float]]:
    """Log loss per horizon of both models on the same occasions (`requests`), each horizon on the
    rows where it is observed. Only for models that are alike (see `unlike`)."""
    from sklearn.metrics import log_loss
    curves = {}
    for name, model in (("champion", champion), ("challenger", challenger)):
        X = model.features(requests, tables).to_numpy()
        curves[name] = sigmoid(model.curve_log_odds(X))
    result = {}
    for k, horizon in enumerate(challenger.horizons):
        rows = observed[horizon]
        y = labels[horizon][rows]
        result[horizon] = {name: float(log_loss(y, np.clip(curve[rows, k], 1e-6, 1 - 1e-6), labels=[0, 1]))
                           for name, curve in curves.items()}
    return result
