"""Scoring many citizens at once: the one function behind `bip score`, the Dask path and the API."""

from __future__ import annotations

import pandas as pd

from features.build import add_group_columns, latest_occasions, measurement_occasions
from models.scoring import ScoringModel

AT_CHOICES = ("latest", "every")


def occasions_to_score(measurements: pd.DataFrame, at: str) -> pd.DataFrame:
    """latest: each person's last measurement date; every: every measurement date."""
    if at not in AT_CHOICES:
        raise ValueError(f"at={at!r}: allowed {', '.join(AT_CHOICES)}")
    return latest_occasions(measurements) if at == "latest" else measurement_occasions(measurements)


def score_tables(model: ScoringModel, tables: dict[str, pd.DataFrame], at: str = "latest",
                 explain: bool = False, model_version: str | None = None,
                 with_groups: bool = False) -> pd.DataFrame:
    """Score validated contract tables (persons, measurements, optional activities).

    Returns one row per (person_id, as_of) sorted by both: probability, model_version, and with
    `explain` base_value plus contribution__<group> columns (log-odds); with `with_groups` the
    reporting groups (jobcenter, gender, age_band, origin)."""
    requests = occasions_to_score(tables["measurements"], at)
    frame = model.score_frame(requests, tables, explain=explain)
    frame.insert(3, "model_version", model_version)
    if with_groups:
        frame = add_group_columns(frame, tables["persons"])
    return frame.sort_values(["person_id", "as_of"], kind="stable").reset_index(drop=True)
