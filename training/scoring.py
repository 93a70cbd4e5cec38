"""`bip score`: offline cohort scoring with a registered model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.tables import read_tables, write_csv
from features.validation import validate_tables
from models.batch import score_tables
from models.store import CHAMPION_URI, configure_tracking, load_scoring_model, resolve_model_uri


def score_cohort(data: str | Path, out: str | Path, at: str = "latest", explain: bool = False,
                 model_uri: str | None = None) -> pd.DataFrame:
    configure_tracking()
    uri, _, version, _ = resolve_model_uri(model_uri or CHAMPION_URI)
    model = load_scoring_model(uri)
    tables = read_tables_for_scoring(data)
    validate_tables(tables, model.schema)
    frame = score_tables(model, tables, at, explain, model_version=version or uri)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        write_csv(frame, out)  # formula-safe, RFC 4180
    else:
        frame.to_parquet(out, index=False)
    return frame


def read_tables_for_scoring(data: str | Path) -> dict[str, pd.DataFrame]:
    """Scoring needs no outcomes: they are not read even when present."""
    tables = read_tables(data, required=("persons", "measurements"))
    tables.pop("outcomes", None)
    return tables
