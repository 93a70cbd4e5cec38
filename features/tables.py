"""Reading the contract tables from a folder, and validating them on the way in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.contract import TABLES
from features.schema import IndicatorSchema, load_schema
from features.validation import validate_tables


def read_tables(data_dir: str | Path, required=("persons", "measurements", "outcomes")) -> dict[str, pd.DataFrame]:
    """The contract tables found in a folder of Parquet (or CSV) files; `required` must be there."""
    data_dir = Path(data_dir)
    tables = {}
    for name in TABLES:
        parquet, csv = data_dir / f"{name}.parquet", data_dir / f"{name}.csv"
        if parquet.exists():
            tables[name] = pd.read_parquet(parquet)
        elif csv.exists():
            tables[name] = pd.read_csv(csv)
        elif name in required:
            raise FileNotFoundError(f"{data_dir} has no {name}.parquet or {name}.csv")
    return tables


def load_and_validate(data_dir: str | Path, schema: IndicatorSchema | None = None):
    schema = schema or load_schema()
    tables = read_tables(data_dir)
    validate_tables(tables, schema)
    return tables, schema
