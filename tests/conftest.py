"""Shared fixtures: one small simulated cohort per test session."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.contract import TABLES
from features.schema import load_schema


@pytest.fixture(scope="session")
def schema():
    return load_schema()


@pytest.fixture(scope="session")
def small_cohort_dir(tmp_path_factory):
    from simulation.simulate import simulate

    out = tmp_path_factory.mktemp("cohort")
    summary = simulate(persons=600, seed=11, out=out, paths=16, effect_paths=24)
    (out / "summary.json").write_text(json.dumps(summary))
    return out


@pytest.fixture(scope="session")
def small_tables(small_cohort_dir):
    return {name: pd.read_parquet(small_cohort_dir / f"{name}.parquet") for name in TABLES}


@pytest.fixture()
def tables(small_tables):
    """A fresh copy that a test may change."""
    return {name: table.copy() for name, table in small_tables.items()}


@pytest.fixture(scope="session")
def serving_store(tmp_path_factory, small_cohort_dir):
    """A store with a trained champion (version 1), for the service tests."""
    import os
    folder = tmp_path_factory.mktemp("serving_mlruns")
    uri = f"sqlite:///{folder}/mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    from training.train import train
    summary = train(small_cohort_dir, "xgboost", 12, promote_if_better=True, seed=7)
    assert summary["promoted"], (summary["registered_version"], summary.get("champion_log_loss_same_data"), uri)
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous
