"""`bip score`: offline cohort scoring with a registered model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.tables import read_tables, write_csv
from features.validation import validate_tables
from models.batch import score_tables
from models.store import CHAMPION_URI, configure_tracking, load_scoring_model, resolve_model_uri


def score_cohort(data: str | Path, out: str | Path, at: str = "latest", explain: bool = False,
                 model_uri: str | None = None, progress=None) -> pd.DataFrame:
    """`progress(fraction, message)` is told each stage."""
    progress = progress or (lambda fraction, message: None)
    configure_tracking()
    progress(0.0, f"loading {model_uri or CHAMPION_URI}")
    uri, _, version, _ = resolve_model_uri(model_uri or CHAMPION_URI)
    model = load_scoring_model(uri)
    progress(0.2, f"reading {data}")
    tables = read_tables_for_scoring(data)
    progress(0.3, "validating")
    validate_tables(tables, model.schema)
    progress(0.4, "features and scores" + (" with explanations" if explain else ""))
    frame = score_tables(model, tables, at, explain, model_version=version or uri)
    progress(0.95, f"writing {len(frame)} rows to {out}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        write_csv(frame, out)  # formula-safe, RFC 4180
    else:
        frame.to_parquet(out, index=False)
    progress(1.0, "done")
    return frame


def read_tables_for_scoring(data: str | Path) -> dict[str, pd.DataFrame]:
    """Scoring needs no outcomes: they are not read even when present."""
    tables = read_tables(data, required=("persons", "measurements"))
    tables.pop("outcomes", None)
    return tables
