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


# A cell starting with one of these is run as a formula by spreadsheet programs (OWASP CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_csv(frame: pd.DataFrame, target) -> None:
    """RFC 4180 CSV (quotes doubled, CRLF-safe) with text cells that a spreadsheet would run as a
    formula prefixed by a single quote; numbers are left as they are."""
    import csv
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            text = safe[column].astype("string")
            risky = text.str.startswith(_FORMULA_START).fillna(False)
            safe[column] = text.where(~risky, "'" + text)
    safe.columns = [("'" + c) if str(c).startswith(_FORMULA_START) else c for c in safe.columns]
    safe.to_csv(target, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
