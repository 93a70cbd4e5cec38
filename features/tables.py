"""Reading the contract tables from files, and writing tables as CSV, with nothing misread.

The contract for files: UTF-8 (with or without BOM), comma-separated, dates in ISO 8601. Anything
else (a `;` separator, cp1252 or Latin-1, dd-mm-yyyy dates) is read only when declared; when a file
looks otherwise the problem says what was found and what to declare. Nothing is guessed per cell.
Problems name the file and its line (header = line 1), so a row can be found in an editor.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.cells import parse_dates
from features.contract import (
    ACTIVITY_COLUMNS,
    MEASUREMENT_BASE_COLUMNS,
    OUTCOME_COLUMNS,
    PERSON_COLUMNS,
    TABLES,
)
from features.schema import IndicatorSchema, load_schema
from features.validation import Problem, ValidationError, validate_tables

CONTRACT_COLUMNS = {"persons": PERSON_COLUMNS, "measurements": MEASUREMENT_BASE_COLUMNS,
                    "activities": ACTIVITY_COLUMNS, "outcomes": OUTCOME_COLUMNS}
DATE_COLUMNS = {"persons": ("enrolled_on",), "measurements": ("measured_at",),
                "activities": ("start", "end"), "outcomes": ("month",)}
# columns read as numbers from CSV text; in measurements every column outside the base ones is an indicator
NUMBER_COLUMNS = {"persons": ("birth_year",)}
ENCODINGS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "utf-8-sig": "utf-8-sig",
             "cp1252": "cp1252", "windows-1252": "cp1252", "latin-1": "latin-1", "latin1": "latin-1",
             "iso-8859-1": "latin-1"}
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
DATE_FORMATS = {"yyyy-mm-dd": "%Y-%m-%d", "dd-mm-yyyy": "%d-%m-%Y", "dd.mm.yyyy": "%d.%m.%Y",
                "dd/mm/yyyy": "%d/%m/%Y", "mm/dd/yyyy": "%m/%d/%Y", "mm-dd-yyyy": "%m-%d-%Y"}
# OWASP CSV injection: a cell starting with one of these is a formula in a spreadsheet
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FILE = "(file)"  # the column of a problem with the file as a whole


@dataclass(frozen=True)
class FileFormat:
    """How a CSV file is written: separator, encoding and date format (None: ISO 8601)."""

    sep: str = ","
    encoding: str = "utf-8"
    date_format: str | None = None

    @classmethod
    def declared(cls, sep: str | None = None, encoding: str | None = None,
                 date_format: str | None = None) -> "FileFormat":
        """The format a user declared (CLI options or form fields); ValueError naming what is allowed."""
        sep = "," if sep in (None, "") else {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ","}.get(sep, sep)
        if sep not in SEPARATORS:
            raise ValueError(f"sep {sep!r}: allowed one of {list(SEPARATORS)} (or 'tab')")
        encoding = (encoding or "utf-8").lower()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding {encoding!r}: allowed one of {sorted(ENCODINGS)}")
        if date_format not in (None, ""):
            date_format = DATE_FORMATS.get(date_format.lower(), date_format)
            if "%" not in date_format or not re.search(r"%[dj]", date_format) or "%Y" not in date_format:
                raise ValueError(f"date_format {date_format!r}: allowed one of {list(DATE_FORMATS)} or a strptime "
                                 "format with %d, %m and %Y (e.g. %d-%m-%Y)")
        return cls(sep, encoding, date_format or None)

    def describe(self) -> str:
        dates = "ISO 8601 dates" if self.date_format is None else f"dates as {self.date_format}"
        return f"{self.encoding}, {SEPARATORS[self.sep]}-separated, {dates}"


# the format declared for this process or request (bip --sep/--encoding/--date-format), when no
# FileFormat is passed explicitly
_declared: contextvars.ContextVar[FileFormat | None] = contextvars.ContextVar("declared_format", default=None)


@contextlib.contextmanager
def declared_format(fmt: FileFormat):
    """Read files in `fmt` wherever no format is passed (the CLI's declared options)."""
    token = _declared.set(fmt)
    try:
        yield fmt
    finally:
        _declared.reset(token)


def format_in_force(fmt: FileFormat | None = None) -> FileFormat:
    """The format to read in: `fmt` when given, else the declared one, else the contract's."""
    return fmt or _declared.get() or FileFormat()


def _problem(table: str, value, allowed: str, file: str | None) -> ValidationError:
    return ValidationError([Problem(table, None, FILE, value, allowed, file)])


def _decode(raw: bytes, table: str, fmt: FileFormat, file: str) -> str:
    encoding = ENCODINGS[fmt.encoding]
    if encoding == "utf-8-sig":
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[:error.start].count(b"\n") + 1
            byte = raw[error.start]
            hint = ""
            try:
                sample = raw.decode("cp1252")
                if any(c in sample for c in "æøåÆØÅéü"):
                    hint = " It reads as cp1252/Latin-1 (e.g. a Danish Excel export):"
            except UnicodeDecodeError:
                pass
            raise _problem(table, f"byte 0x{byte:02x} on line {line}",
                           f"UTF-8 text (with or without BOM).{hint} declare encoding='cp1252' or 'latin-1' "
                           "(--encoding)", file) from None
    try:
        raw.decode("ascii")
    except UnicodeDecodeError:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # declared single-byte but the bytes are UTF-8: 'ø' would become 'Ã¸'
            raise _problem(table, f"declared {fmt.encoding}, but the file is valid UTF-8 with non-ASCII text",
                           "the file's real encoding: leave encoding out (UTF-8)", file) from None
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise _problem(table, f"byte 0x{raw[error.start]:02x} on line {line} is not {fmt.encoding}",
                       f"text in the declared encoding {fmt.encoding}", file) from None


def _split_header(line: str, sep: str) -> list[str]:
    return [cell.strip().strip('"').strip() for cell in line.split(sep)]


def _check_separator(text: str, table: str, fmt: FileFormat, file: str) -> None:
    """Refuse a file whose header is split better by another separator, saying which."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    expected = set(CONTRACT_COLUMNS.get(table, ()))

    def fit(sep):  # contract columns found, then number of fields
        cells = _split_header(header, sep)
        return (len(expected.intersection(cells)), len(cells))

    declared = fit(fmt.sep)
    best = max((s for s in SEPARATORS if s != fmt.sep), key=fit)
    other = fit(best)
    if other > declared and (other[0] > declared[0] or declared[1] == 1):
        shown = "tab" if best == "\t" else best
        raise _problem(table, f"header read as {SEPARATORS[fmt.sep]}-separated gives {declared[1]} column(s)",
                       f"a {SEPARATORS[fmt.sep]}-separated file: this one looks `{shown}`-separated "
                       f"({other[1]} columns); declare sep='{shown}' (--sep)", file)


def _line_breaks(text: str, sep: str, rows: int) -> tuple:
    """The file line of each data row, as breakpoints ((row, line), ...): row r is on line r + 2
    unless blank lines or quoted line breaks moved it (then counted with the csv module)."""
    ends = text.count("\n") + text.count("\r") - text.count("\r\n")
    if ends + (0 if text.endswith(("\n", "\r")) else 1) == rows + 1:
        return ()
    breaks, row, last = [], -1, 0  # row -1 is the header
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    for record in reader:
        first, last = last + 1, reader.line_num
        if not record:  # a blank line: pandas skips it too
            continue
        if row >= 0:
            expected = breaks[-1][1] + row - breaks[-1][0] if breaks else row + 2
            if first != expected:
                breaks.append((row, first))
        row += 1
    return tuple(breaks)


def _numbers(values: pd.Series) -> pd.Series:
    """CSV text as numbers; a cell that is not a number keeps its text for validation to name."""
    parsed = pd.to_numeric(values, errors="coerce")
    failed = values.notna() & parsed.isna()
    if not failed.any():
        whole = parsed.notna().all() and np.isfinite(parsed).all() and (parsed % 1 == 0).all()
        return parsed.astype("int64") if whole and len(parsed) else parsed
    out = parsed.astype(object)
    out[failed] = values[failed]
    return out


def read_table(source: bytes | str | Path, table: str, fmt: FileFormat | None = None,
               filename: str | None = None) -> pd.DataFrame:
    """One table from CSV or Parquet bytes (or a path). Contract columns get their types (dates
    as the contract says); other cells stay text. Raises ValidationError naming the file."""
    fmt = format_in_force(fmt)
    if isinstance(source, (str, Path)):
        filename = filename or Path(source).name
        source = Path(source).read_bytes()
    file = filename or f"{table} upload"
    raw = bytes(source)
    if file.endswith(".parquet") or raw[:4] == b"PAR1":
        try:
            frame = pd.read_parquet(io.BytesIO(raw))
        except Exception as error:
            raise _problem(table, file, f"a readable Parquet file ({error.__class__.__name__})", file) from None
        frame.attrs["parquet"] = True
    else:
        text = _decode(raw, table, fmt, file)
        _check_separator(text, table, fmt, file)
        contract = table in CONTRACT_COLUMNS
        try:
            frame = pd.read_csv(io.StringIO(text), sep=fmt.sep, dtype=str if contract else None,
                                keep_default_na=not contract, na_values=[""] if contract else None,
                                skip_blank_lines=True)
        except pd.errors.EmptyDataError:
            raise _problem(table, "an empty file", "a header line and rows", file) from None
        except (pd.errors.ParserError, ValueError) as error:
            raise _problem(table, str(error).strip()[:200], f"a {SEPARATORS[fmt.sep]}-separated file with "
                           "the same number of fields on every line (quote fields that contain the separator)",
                           file) from None
        frame.attrs["line_breaks"] = _line_breaks(text, fmt.sep, len(frame))
        if contract:
            numbers = NUMBER_COLUMNS.get(table, ())
            if table == "measurements":
                numbers = [c for c in frame.columns if c not in MEASUREMENT_BASE_COLUMNS]
            for column in numbers:
                if column in frame:
                    frame[column] = _numbers(frame[column])
    for column in DATE_COLUMNS.get(table, ()):
        if column in frame and not pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = parse_dates(frame[column], fmt.date_format)
    frame.attrs["file"] = file
    frame.attrs["date_format"] = fmt.date_format
    return frame


def read_tables(data_dir: str | Path, required=("persons", "measurements", "outcomes"),
                fmt: FileFormat | None = None) -> dict[str, pd.DataFrame]:
    """The contract tables found in a folder of Parquet (or CSV) files; `required` must be there."""
    data_dir = Path(data_dir)
    tables, problems = {}, []
    for name in TABLES:
        parquet, text = data_dir / f"{name}.parquet", data_dir / f"{name}.csv"
        path = parquet if parquet.exists() else text if text.exists() else None
        if path is None:
            if name in required:
                raise FileNotFoundError(f"{data_dir} has no {name}.parquet or {name}.csv")
            continue
        try:
            tables[name] = read_table(path, name, fmt)
        except ValidationError as error:  # every file's problem at once
            problems += error.problems
    if problems:
        raise ValidationError(problems)
    return tables


def load_and_validate(data_dir: str | Path, schema: IndicatorSchema | None = None,
                      fmt: FileFormat | None = None):
    """Read and validate a folder's tables; refuses simulator truth that belongs to other tables."""
    schema = schema or load_schema()
    check_truth(data_dir)
    tables = read_tables(data_dir, fmt=fmt)
    validate_tables(tables, schema)
    return tables, schema


# --- simulator truth belongs to the tables it was written with

TRUTH_FILES = ("truth.json", "truth_probabilities.parquet")


def tables_fingerprint(data_dir: str | Path) -> dict[str, str]:
    """SHA-256 of each contract table file in a folder (name -> hex digest)."""
    data_dir = Path(data_dir)
    out = {}
    for path in sorted(data_dir.iterdir()):
        if path.stem in TABLES and path.suffix in (".parquet", ".csv"):
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            out[path.name] = digest.hexdigest()
    return out


def check_truth(data_dir: str | Path) -> None:
    """Raise ValidationError when the folder's truth files were not written with its tables
    (a simulation killed half-way, or tables replaced beside an older truth)."""
    data_dir = Path(data_dir)
    present = [name for name in TRUTH_FILES if (data_dir / name).exists()]
    if not present:
        return
    allowed = "truth written by bip simulate together with these tables: re-run bip simulate into a new folder"
    if "truth.json" not in present:
        raise _problem("truth", f"{present} without truth.json", allowed, str(data_dir))
    try:
        recorded = json.loads((data_dir / "truth.json").read_text()).get("tables_sha256")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise _problem("truth", "truth.json is not readable JSON", allowed, str(data_dir)) from None
    if recorded is None:
        raise _problem("truth", "truth.json records no fingerprint of its tables (an older simulation)",
                       allowed, str(data_dir))
    found = tables_fingerprint(data_dir)
    changed = sorted(name for name in set(recorded) | set(found) if recorded.get(name) != found.get(name))
    if changed:
        raise _problem("truth", f"tables changed since the truth was written: {changed}", allowed, str(data_dir))


# --- CSV out

def neutralise(value):
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(frame: pd.DataFrame, target=None) -> str | None:
    """The frame as RFC 4180 CSV (comma, double quotes doubled, CRLF line ends), with text cells
    that start with = + - @ tab or CR neutralised; numbers are written as numbers (a negative
    number is not text). `target`: a path or a writable buffer; without one the text is returned."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out.to_csv(target, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL, doublequote=True,
                      **({"encoding": "utf-8"} if isinstance(target, (str, Path)) else {}))
