"""Saving a ScoringModel to MLflow as one pyfunc model, and loading it back by URI."""

from __future__ import annotations

import os
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd

from bip.config import DEFAULT_TRACKING_URI, get_settings
from models.scoring import ScoringModel

MODEL_NAME = get_settings().model_name
CHAMPION = get_settings().model_alias
CHAMPION_URI = get_settings().model_uri
EXPERIMENT = get_settings().experiment


def configure_tracking() -> str:
    """Use MLFLOW_TRACKING_URI when set (a team server), else the local sqlite store in mlruns/."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or get_settings().tracking_uri
    if uri == DEFAULT_TRACKING_URI:
        Path("mlruns").mkdir(exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # the registry lives in the same store (mlflow writes MLFLOW_REGISTRY_URI back into the
    # environment, so reading it here would pick up a stale store)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str = EXPERIMENT) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        # artifacts beside the database file, never in whatever folder the command ran from
        artifacts = Path(uri[len("sqlite:///"):]).parent / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        location = artifacts.resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


class BipPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a ScoringModel: a frame of feature columns in, probabilities out.
    The full object (features, explainer) is reachable with unwrap_python_model().scoring_model."""

    def __init__(self, scoring_model: ScoringModel):
        self.scoring_model = scoring_model

    def predict(self, context, model_input: pd.DataFrame, params=None):
        names = self.scoring_model.spec.names
        X = model_input[names].to_numpy(dtype=np.float64)
        return pd.DataFrame({"probability": self.scoring_model.probability(X)})


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
