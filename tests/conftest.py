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
