"""Uploaded tables: sizes checked from metadata before any parsing, then read into the contract.

Parquet row and column counts and uncompressed sizes come from the file footer; CSV rows from one
streamed pass over the bytes and columns from the header line. From them the job's memory is
estimated and checked against the ceiling its process runs under (BIP_JOB_MEMORY_BYTES), so the
limits follow from what a job can hold. Nothing is parsed, validated or scored before these
checks pass."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from fastapi import UploadFile

from bip.config import Settings
from serving.errors import InputProblems, TooLarge, problems_from_pydantic
from serving.schemas import ScoreRequest

PARQUET_MAGIC = b"PAR1"
COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"PK": "zip", b"(\xb5": "zstd", b"BZ": "bzip2", b"\xfd7": "xz"}


def is_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == PARQUET_MAGIC


@dataclass(frozen=True)
class TableSize:
    """What an upload will take once read, known before any parsing: rows and columns from the
    Parquet footer or the CSV header line and a streamed newline count; `unpacked` is the Parquet
    uncompressed size (the CSV's own bytes)."""

    name: str
    rows: int
    columns: int
    unpacked: int


# What a job holds, calibrated on the national evaluation job (100,000 persons, 1,355,204
# measurement rows, 5.3M outcome months; bench/national_job.py, docs/national-scale.md): its
# address space (what BIP_JOB_MEMORY_BYTES limits) peaked at 3.79 and 3.97 GiB in two runs. A job
# holds the libraries (JOB_BASE_BYTES: a 2,000-person job reserved 1.93 and 2.10 GiB of address
# space, mostly thread stacks and allocator arenas); its tables, about CELL_BYTES a cell once read
# (measured 12.0) or their uncompressed bytes if more; READ_COPIES of them while they are decoded,
# typed and checked (measured 2.9); and an evaluation, once that transient is freed, the tables
# plus the occasions and their features (measured 1,430 bytes a measurement row at the peak).
# Rounded up: the national estimate is 4.68 GiB.
CELL_BYTES = 12
READ_COPIES = 3
OCCASION_BYTES = 1_600
JOB_BASE_BYTES = 2_400_000_000


def measure_upload(path: Path, name: str, settings: Settings, sep: str = ",") -> TableSize:
    """The size of an uploaded table from metadata or a streamed count, before any parsing;
    refuses what is over an explicit limit (BIP_MAX_TABLE_ROWS, BIP_MAX_DECOMPRESSED_BYTES when
    set) or not a plain CSV/Parquet file."""
    if is_parquet(path):
        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as error:  # a damaged footer
            raise InputProblems([{"field": name, "value": path.name,
                                  "allowed": f"a readable Parquet file ({error.__class__.__name__})"}])
        rows, columns = meta.num_rows, meta.num_columns
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if settings.max_decompressed_bytes is not None and unpacked > settings.max_decompressed_bytes:
            raise TooLarge(name, f"{unpacked} bytes uncompressed", f"at most {settings.max_decompressed_bytes} "
                           "bytes uncompressed per table (BIP_MAX_DECOMPRESSED_BYTES)")
    else:
        with open(path, "rb") as handle:
            head = handle.read(2)
            kind = COMPRESSED_MAGIC.get(head)
            if kind is not None:
                raise InputProblems([{"field": name, "value": f"{kind}-compressed data",
                                      "allowed": "a plain CSV file or a Parquet file (Parquet compresses itself)"}])
            handle.seek(0)
            header = handle.readline(1 << 20)
            # an estimate only: a quoted separator inside a column name counts one column too many
            columns = header.count(sep.encode()) + 1
            handle.seek(0)
            rows, last = 0, b"\n"
            for block in iter(lambda: handle.read(1 << 20), b""):
                rows, last = rows + block.count(b"\n"), block[-1:]
            rows += last != b"\n"  # a last line without its newline
            rows -= 1  # the header line
        unpacked = path.stat().st_size
    if settings.max_table_rows is not None and rows > settings.max_table_rows:
        raise TooLarge(name, f"{rows} rows", f"at most {settings.max_table_rows} rows per table (BIP_MAX_TABLE_ROWS)")
    return TableSize(name, max(rows, 0), columns, unpacked)


def table_bytes(size: TableSize) -> int:
    """The memory one table holds in a job once read."""
    return max(size.rows * size.columns * CELL_BYTES, size.unpacked)


def occasion_bytes(size: TableSize, job: str) -> int:
    """The occasions and features an evaluation builds from this table (its measurement rows)."""
    return size.rows * OCCASION_BYTES if job == "evaluation" and size.name == "measurements" else 0


def job_bytes(sizes: list[TableSize], job: str) -> int:
    """The memory a job over these tables is estimated to need at its peak: the libraries, and the
    larger of the tables being read (several copies at once) and the tables held with what the job
    builds from them (the copies of the read are freed by then)."""
    held = sum(table_bytes(size) for size in sizes)
    return JOB_BASE_BYTES + max(READ_COPIES * held, held + sum(occasion_bytes(size, job) for size in sizes))


def check_job_memory(sizes: list[TableSize], job: str, settings: Settings) -> None:
    """413 naming the largest table when the job's estimated memory is over the ceiling a job
    process runs under (BIP_JOB_MEMORY_BYTES): refused before any parsing, so a table of billions
    of claimed rows or a file that unpacks hugely costs the metadata read only."""
    need, ceiling = job_bytes(sizes, job), settings.job_memory_bytes
    if need <= ceiling or not sizes:
        return
    largest = max(sizes, key=lambda s: READ_COPIES * table_bytes(s) + occasion_bytes(s, job))
    raise TooLarge(largest.name, f"{largest.rows} rows of {largest.columns} columns ({largest.unpacked} bytes "
                   f"unpacked): the {job.replace('_', ' ')} job would need about {need / 2**30:.1f} GiB",
                   f"tables that fit the memory ceiling of a job, {ceiling / 2**30:.1f} GiB (BIP_JOB_MEMORY_BYTES); "
                   f"split the cohort or raise the ceiling")


def read_table_file(path: Path, name: str, file_format: dict | None = None) -> pd.DataFrame:
    """One contract table from a checked CSV or Parquet file, read by features.tables: ISO 8601
    dates, comma and UTF-8 unless declared (file_format: sep, encoding, date_format); problems
    name the file line."""
    from features.tables import FileFormat, read_table
    from features.validation import ValidationError
    from serving.errors import table_problems
    try:
        return read_table(path, name, FileFormat.declared(**(file_format or {})), filename=f"{name}{path.suffix}")
    except ValidationError as error:
        raise InputProblems(table_problems(error.problems))


def cohort_columns(path: Path, file_format: dict | None = None) -> list[str]:
    """A generic cohort's column names as the job reads them (evaluation.estimate.read_cohort), from
    the Parquet schema or the CSV header line alone (in the declared sep and encoding), so that a
    request naming a missing column is refused before it becomes a job. A name written twice is
    refused: pandas would read the second as NAME.1 and the job guess which was meant. So is a
    header with no rows under it."""
    from evaluation.estimate import cohort_csv_options
    options = cohort_csv_options(file_format)
    try:
        if is_parquet(path):
            schema = pq.read_schema(path)
            # the columns pandas makes the index (a frame saved with its index) are not columns to the job
            index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
            header = columns = [name for name in schema.names if name not in index]
            rows = pq.read_metadata(path).num_rows
        else:
            first = pd.read_csv(path, nrows=1, **options)
            columns, rows = [str(c) for c in first.columns], len(first)
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False,
                                 **options).iloc[0].tolist()
    except Exception as error:  # unreadable header: name the file, never a 500
        raise InputProblems([{"field": "cohort", "value": path.name,
                              "allowed": f"a Parquet file or a CSV file readable as {options['encoding']} with "
                                         f"{options['sep']!r} between columns (declare others with sep and encoding; "
                                         f"{error.__class__.__name__})"}])
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise InputProblems([{"field": "cohort", "value": name, "allowed": "each column name once (this one is "
                              f"there {header.count(name)} times)"} for name in twice])
    if rows == 0:  # else the job fails on the outcome, as if that column were the problem
        raise InputProblems([{"field": "cohort", "value": "no rows", "allowed": "at least one row under the header"}])
    return columns


def check_cohort_columns(path: Path, named: dict[str, list[str]], file_format: dict | None = None) -> None:
    """Every column named in a form field (treatment, outcome, covariates, subgroups) exists in the
    cohort and no covariate is the treatment or the outcome; otherwise 422 naming the field, the
    value and what is allowed (the columns there are)."""
    columns = cohort_columns(path, file_format)
    allowed = f"a column of the cohort: {columns[:30]}"
    # one column whose name holds another separator: the file was read with the wrong one
    other = [sep for sep in (";", "\t", "|") if len(columns) == 1 and sep in columns[0]]
    if other:
        allowed += f" (the header reads as one column and looks {other[0]!r}-separated: declare sep)"
    problems = [{"field": field, "value": name, "allowed": allowed}
                for field, names in named.items() for name in names if name not in columns]
    roles = set(named.get("treatment", [])) | set(named.get("outcome", []))
    problems += [{"field": "covariates", "value": name, "allowed": "columns other than the treatment and the outcome"}
                 for name in named.get("covariates", []) if name in roles]
    if problems:
        raise InputProblems(problems)


def declared_format(sep: str | None, encoding: str | None, date_format: str | None) -> dict:
    """The form fields sep, encoding and date_format checked (422 naming the field) and kept as a dict."""
    from features.tables import FileFormat
    declared = {"sep": sep, "encoding": encoding, "date_format": date_format}
    try:
        FileFormat.declared(**declared)
    except ValueError as error:
        field = str(error).split(" ", 1)[0]
        raise InputProblems([{"field": field, "value": declared.get(field), "allowed": str(error)}])
    return declared


def save_uploads(uploads: dict[str, UploadFile | None], folder: Path) -> dict[str, Path]:
    """Copy the uploaded files to `folder` (streamed, never whole in memory) as NAME.parquet or
    NAME.csv by their content; name -> path. Blocking: call it in a thread."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, upload in uploads.items():
        if upload is None:
            continue
        upload.file.seek(0)
        suffix = ".parquet" if upload.file.read(4) == PARQUET_MAGIC else ".csv"
        upload.file.seek(0)
        path = folder / f"{name}{suffix}"
        with open(path, "wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        saved[name] = path
    return saved


def check_tables(paths: dict[str, Path], required: tuple[str, ...], settings: Settings, job: str = "cohort_score",
                 file_format: dict | None = None) -> dict[str, int]:
    """Every required table present and the `job` over them within its memory ceiling (and any
    explicit limit); rows per table. Citizens are capped by the persons table's rows."""
    problems = [{"field": name, "value": None, "allowed": "a .csv or .parquet file"}
                for name in required if name not in paths]
    if problems:
        raise InputProblems(problems)
    from features.tables import FileFormat
    sep = FileFormat.declared(**(file_format or {})).sep
    sizes = [measure_upload(path, name, settings, sep) for name, path in paths.items()]
    rows = {size.name: size.rows for size in sizes}
    if rows.get("persons", 0) > settings.max_cohort_citizens:
        raise TooLarge("persons", f"{rows['persons']} citizens",
                       f"at most {settings.max_cohort_citizens} citizens per request (BIP_MAX_COHORT_CITIZENS)")
    check_job_memory(sizes, job, settings)
    return rows


def read_tables(paths: dict[str, Path], file_format: dict | None = None) -> dict[str, pd.DataFrame]:
    """The checked files as contract tables."""
    tables, problems = {}, []
    for name, path in paths.items():
        try:
            tables[name] = read_table_file(path, name, file_format)
        except InputProblems as error:
            problems += error.problems
    if problems:
        raise InputProblems(problems)
    return tables


def count_json_lines(raw: bytes) -> int:
    return sum(1 for line in io.BytesIO(raw) if line.strip())


def tables_from_json_lines(raw: bytes, schema) -> dict[str, pd.DataFrame]:
    """Citizens as JSON lines (one /v1/score body each) -> the contract tables; problems name the line
    (numbered from 1)."""
    from serving.citizen import request_tables
    parts = {"persons": [], "measurements": [], "activities": []}
    problems = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            request = ScoreRequest.model_validate_json(line)
        except Exception as error:  # pydantic's ValidationError, or undecodable bytes
            errors = error.errors() if hasattr(error, "errors") else [{"loc": (), "input": None, "msg": "valid JSON"}]
            problems += problems_from_pydantic(errors, prefix=f"line[{number}].")
            continue
        for name, table in request_tables(request, schema).items():
            parts[name].append(table)
    if problems:
        raise InputProblems(problems)
    if not parts["persons"]:
        raise InputProblems([{"field": "body", "value": None, "allowed": "at least one citizen (one JSON object per line)"}])
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items() if frames}
