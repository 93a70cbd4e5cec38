"""Single cells and rows of a table read from a file: where a row is in its file, and dates
parsed without guessing.

Shared by reading (features.tables) and validation (features.validation), which both import it;
it imports neither, so the two do not import each other.
"""

from __future__ import annotations

import pandas as pd


def file_line(frame: pd.DataFrame, position: int) -> int:
    """The file line (header = 1) of the row at `position` of a table read from CSV, or the row
    number counted the same way (first data row = 2) for other files."""
    line = position + 2
    for row, first in frame.attrs.get("line_breaks", ()):
        if row <= position:
            line = first + (position - row)
    return line


def parse_dates(values: pd.Series, date_format: str | None = None) -> pd.Series:
    """Dates in ISO 8601 (or the declared format) as datetime64; a value that does not parse keeps
    its text (the column becomes object) so validation can name it. Never guesses per cell."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.where(values.isna(), values.astype(str).str.strip())
    if date_format is None:
        looks_iso = text.str.fullmatch(ISO_DATE, na=False)
        parsed = pd.to_datetime(text.where(looks_iso), format="ISO8601", errors="coerce")
    else:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    failed = values.notna() & parsed.isna()
    if not failed.any():
        return parsed
    out = parsed.astype(object)
    out[failed] = values[failed]
    return out


ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
