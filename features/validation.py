"""Validation of the four input tables against the indicator schema.

Every problem is reported, not just the first: each names the table, the row, the column, the
value and what is allowed. Checks are vectorised, so a national cohort validates in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.cells import file_line, parse_dates
from features.contract import (
    ACTIVITY_COLUMNS,
    ACTIVITY_KINDS,
    BENEFIT_GROUPS,
    GENDERS,
    MEASUREMENT_BASE_COLUMNS,
    ORIGINS,
    OUTCOME_COLUMNS,
    OUTCOME_STATUSES,
    PERSON_COLUMNS,
    RESPONDENTS,
)
from features.schema import IndicatorSchema


@dataclass(frozen=True)
class Problem:
    """One problem: table, row, column, value and what is allowed. `row` is the file line (header
    = line 1) for a CSV file, the row from 1 for a Parquet file, the position from 0 for tables
    built in memory (a request's lists); `file` names the file when the table came from one."""
    table: str
    row: int | None
    column: str
    value: object
    allowed: str
    file: str | None = None

    def __str__(self) -> str:
        where = self.file or self.table
        if self.row is not None:
            unit = "line" if (self.file or "").endswith(".csv") or "upload" in (self.file or "") else "row"
            where += f" {unit} {self.row}"
        return f"{where}, column {self.column!r}: value {self.value!r}; allowed: {self.allowed}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["value"] = _plain(self.value)
        return out


class ValidationError(ValueError):
    """Raised with every problem found in the input tables."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"- {p}" for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the input:\n{shown}{more}")


def _plain(value):
    """A JSON-safe rendering of a cell: non-finite numbers as text, long text shortened."""
    if value is None or value is pd.NaT or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else str(float(value))
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(value).date())
    text = value if isinstance(value, (int, str)) else str(value)
    if isinstance(text, str):
        text = text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates in an answer
        if len(text) > SHOWN_CHARS:
            return f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"
    return text


SHOWN_CHARS = 40  # a long value is echoed only this far


def _limits():
    from bip.config import get_settings
    return get_settings()


def _row(frame: pd.DataFrame, position: int) -> int:
    """The row number a user finds the row by (see Problem)."""
    if "file" not in frame.attrs:
        return position
    if frame.attrs.get("parquet"):
        return position + 1
    return file_line(frame, position)


def _report(problems: list, table: str, frame: pd.DataFrame, mask, column: str, allowed: str,
            values: pd.Series | None = None):
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    values = frame[column] if values is None else values
    file = frame.attrs.get("file")
    for row, value in zip(np.nonzero(mask)[0], values.to_numpy()[mask]):
        problems.append(Problem(table, _row(frame, int(row)), column, _plain(value), allowed, file))


def _required(problems: list, table: str, frame: pd.DataFrame, columns: list[str]) -> bool:
    missing = [c for c in columns if c not in frame.columns]
    for column in missing:
        problems.append(Problem(table, None, column, None, "a column that must be present", frame.attrs.get("file")))
    return not missing


def _outside_contract(problems: list, table: str, frame: pd.DataFrame, allowed: list[str], extra=()) -> None:
    """Columns outside the contract are refused: a name or address column must not pass silently."""
    for column in frame.columns:
        if column not in allowed and column not in extra:
            problems.append(Problem(table, None, str(column), _plain(column),
                                    f"a column of the contract: {allowed} (others are refused: they may carry "
                                    "personal data; declare extra columns to allow them)", frame.attrs.get("file")))


def _text_caps(problems: list, table: str, frame: pd.DataFrame, max_chars: int) -> None:
    """Text cells over the length cap (a 50 MB jobcentre name is not a name)."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values):
            continue
        lengths = values.map(lambda v: len(v) if isinstance(v, str) else 0)
        _report(problems, table, frame, lengths.to_numpy() > max_chars, column, f"text of at most {max_chars} characters")


def _integers(problems, table, frame, column, low: int, high: int, allowed: str, nullable: bool) -> None:
    """Strict whole numbers in [low, high]: booleans, text, non-finite and fractional values are
    refused (in a CSV file numbers were converted on reading, so text left here is not a number)."""
    raw = frame[column]
    if raw.dtype == bool or pd.api.types.is_bool_dtype(raw):
        _report(problems, table, frame, raw.notna(), column, allowed)
        return
    if isinstance(raw.dtype, pd.StringDtype):  # a text column (Parquet, in memory) is not numbers
        kinds = raw.notna()
    elif raw.dtype == object:
        kinds = raw.map(lambda v: isinstance(v, (bool, np.bool_, str, bytes)))
    else:
        kinds = None
    value = pd.to_numeric(raw.where(~kinds) if kinds is not None else raw, errors="coerce").astype("float64")
    present = raw.notna()
    bad = (value.isna() | ~np.isfinite(value.fillna(0)) | (value % 1 != 0) | (value < low) | (value > high))
    bad = (present | (not nullable)) & bad
    if kinds is not None:
        bad = bad | kinds
    _report(problems, table, frame, bad, column, allowed)


def _parse_dates(raw: pd.Series) -> pd.Series:
    """Dates as datetime64 (NaT where a value is not a date). Text must be ISO 8601: files in
    another declared format were converted on reading (features.tables, with features.cells.parse_dates)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw
    parsed = parse_dates(raw)
    if parsed.dtype == object:  # cells that stayed text are not dates
        parsed = parsed.map(lambda v: v if isinstance(v, (pd.Timestamp, date, np.datetime64)) else pd.NaT)
    return pd.to_datetime(parsed, errors="coerce")


def _date_allowed(frame: pd.DataFrame) -> str:
    declared = frame.attrs.get("date_format")
    if declared:
        return f"a date written as declared ({declared})"
    return ("a date in ISO 8601 (YYYY-MM-DD); other formats only when declared (date_format, --date-format), "
            "never guessed: 05-04-2015 could be April or May")


def _dates(problems, table, frame, column, today, nullable=False, latest=True) -> pd.Series:
    """Parse a date column; report values that are not dates, implausibly early, or after today."""
    raw = frame[column]
    parsed = _parse_dates(raw)
    bad = parsed.isna() & (raw.notna() if nullable else True)
    _report(problems, table, frame, bad, column, _date_allowed(frame))
    earliest = pd.Timestamp(_limits().earliest_date)
    _report(problems, table, frame, parsed.notna() & (parsed < earliest), column,
            f"a date on or after {earliest.date()}")
    if latest:
        _report(problems, table, frame, parsed.notna() & (parsed > today), column,
                f"a date on or before today ({today.date()})")
    return parsed


def _in(problems, table, frame, column, allowed_values, nullable=False):
    values = frame[column]
    bad = ~values.isin(allowed_values) & (values.notna() if nullable else True)
    _report(problems, table, frame, bad, column, f"one of {list(allowed_values)}")


def _known_person(problems, table, frame, person_ids: set):
    _report(problems, table, frame, ~frame["person_id"].isin(person_ids), "person_id",
            "the id of a person in the persons table")


def _birth_years(today) -> tuple[int, int, str]:
    limits = _limits()
    high = today.year - limits.min_age_years
    return limits.birth_year_min, high, f"a whole year from {limits.birth_year_min} to {high}"


def validate_persons(persons: pd.DataFrame, today: pd.Timestamp, problems: list, extra=()) -> pd.Series | None:
    _required(problems, "persons", persons, PERSON_COLUMNS)
    _outside_contract(problems, "persons", persons, PERSON_COLUMNS, extra)
    has = persons.columns.__contains__  # columns are independent: check whichever are present
    if has("person_id"):
        ids = persons["person_id"]
        _report(problems, "persons", persons, ids.isna() | (ids.astype(str).str.strip() == ""),
                "person_id", "a non-empty pseudonymous id")
        _report(problems, "persons", persons, ids.duplicated(keep="first") & ids.notna(), "person_id",
                "an id that appears once")
    if has("birth_year"):
        low, high, allowed = _birth_years(today)
        _integers(problems, "persons", persons, "birth_year", low, high, allowed, nullable=False)
    for column, allowed in (("gender", GENDERS), ("origin", ORIGINS), ("benefit_group", BENEFIT_GROUPS)):
        if has(column):
            _in(problems, "persons", persons, column, allowed)
    if has("jobcenter"):
        _report(problems, "persons", persons,
                persons["jobcenter"].isna() | (persons["jobcenter"].astype(str).str.strip() == ""),
                "jobcenter", "a jobcentre name")
    if not (has("enrolled_on") and has("person_id")):
        return None
    enrolled = _dates(problems, "persons", persons, "enrolled_on", today)
    return pd.Series(enrolled.to_numpy(), index=persons["person_id"].to_numpy())


def validate_measurements(measurements: pd.DataFrame, schema: IndicatorSchema, person_ids: set,
                          enrolled: pd.Series | None, today: pd.Timestamp, problems: list):
    table = "measurements"
    if not _required(problems, table, measurements, MEASUREMENT_BASE_COLUMNS):
        return
    for column in measurements.columns:
        if column not in MEASUREMENT_BASE_COLUMNS and column not in schema:
            problems.append(Problem(table, None, str(column), _plain(column),
                                    f"an indicator of schema {schema.name!r}: {schema.keys}",
                                    measurements.attrs.get("file")))
    _known_person(problems, table, measurements, person_ids)
    _in(problems, table, measurements, "respondent", RESPONDENTS)
    measured = _dates(problems, table, measurements, "measured_at", today)
    if enrolled is not None:
        start = measurements["person_id"].map(enrolled[~enrolled.index.duplicated()])
        _report(problems, table, measurements, measured.notna() & start.notna() & (measured < start),
                "measured_at", "a date on or after the person's enrolled_on")
    is_caseworker = measurements["respondent"] == "caseworker"
    _report(problems, table, measurements,
            is_caseworker & (measurements["caseworker_id"].isna()
                             | (measurements["caseworker_id"].astype(str).str.strip() == "")),
            "caseworker_id", "a pseudonymous caseworker id on every caseworker row")
    key = measurements[["person_id", "respondent"]].assign(measured_at=measured)
    _report(problems, table, measurements, key.duplicated(keep="first"), "measured_at",
            "one measurement per person, date and respondent")
    for indicator in schema.indicators:
        if indicator.key not in measurements.columns:
            continue
        raw = measurements[indicator.key]
        present = raw.notna()
        _integers(problems, table, measurements, indicator.key, indicator.scale_min, indicator.scale_max,
                  indicator.allowed, nullable=True)
        for respondent in RESPONDENTS:
            if not indicator.answered_by(respondent):
                wrong = present & (measurements["respondent"] == respondent)
                _report(problems, table, measurements, wrong, indicator.key,
                        f"empty for a {respondent} row: answered only by {list(indicator.respondents)}")


def validate_activities(activities: pd.DataFrame, person_ids: set, today: pd.Timestamp, problems: list, extra=()):
    table = "activities"
    if not _required(problems, table, activities, ACTIVITY_COLUMNS):
        return
    _outside_contract(problems, table, activities, ACTIVITY_COLUMNS, extra)
    _known_person(problems, table, activities, person_ids)
    _in(problems, table, activities, "kind", ACTIVITY_KINDS)
    start = _dates(problems, table, activities, "start", today)
    # an end may lie ahead (a planned end); it must still be a date, and not before the start
    end = _dates(problems, table, activities, "end", today, nullable=True, latest=False)
    _report(problems, table, activities, end.notna() & start.notna() & (end < start), "end",
            "a date on or after start")


def validate_outcomes(outcomes: pd.DataFrame, person_ids: set, today: pd.Timestamp, problems: list, extra=()):
    table = "outcomes"
    if not _required(problems, table, outcomes, OUTCOME_COLUMNS):
        return
    _outside_contract(problems, table, outcomes, OUTCOME_COLUMNS, extra)
    _known_person(problems, table, outcomes, person_ids)
    _in(problems, table, outcomes, "status", OUTCOME_STATUSES)
    month = _dates(problems, table, outcomes, "month", today)
    _report(problems, table, outcomes, month.notna() & (month.dt.day != 1), "month",
            "the first day of a month (YYYY-MM-01)")
    _report(problems, table, outcomes,
            outcomes[["person_id"]].assign(month=month).duplicated(keep="first"), "month",
            "one status per person and month")


def find_problems(tables: dict[str, pd.DataFrame], schema: IndicatorSchema,
                  today: pd.Timestamp | None = None, extra_columns: dict[str, list[str]] | None = None) -> list[Problem]:
    """All problems in whichever of persons, measurements, activities, outcomes are given.
    `extra_columns` (table -> column names) declares columns beyond the contract to accept."""
    today = pd.Timestamp(today or pd.Timestamp.now().normalize())
    extra = extra_columns or {}
    problems: list[Problem] = []
    persons = tables.get("persons")
    enrolled = validate_persons(persons, today, problems, extra.get("persons", ())) if persons is not None else None
    person_ids = set(persons["person_id"]) if persons is not None and "person_id" in persons else set()
    if tables.get("measurements") is not None:
        validate_measurements(tables["measurements"], schema, person_ids, enrolled, today, problems)
    if tables.get("activities") is not None:
        validate_activities(tables["activities"], person_ids, today, problems, extra.get("activities", ()))
    if tables.get("outcomes") is not None:
        validate_outcomes(tables["outcomes"], person_ids, today, problems, extra.get("outcomes", ()))
    max_chars = _limits().max_string_chars
    for name, frame in tables.items():
        if frame is not None and name in ("persons", "measurements", "activities", "outcomes"):
            _text_caps(problems, name, frame, max_chars)
    return problems


def validate_tables(tables: dict[str, pd.DataFrame], schema: IndicatorSchema,
                    today: pd.Timestamp | None = None, extra_columns: dict[str, list[str]] | None = None) -> None:
    """Raise ValidationError listing every problem, or return quietly."""
    problems = find_problems(tables, schema, today, extra_columns)
    if problems:
        raise ValidationError(problems)


def citizen_problems(person: dict, ratings: list, spells: list, schema: IndicatorSchema,
                     today: pd.Timestamp) -> list[Problem]:
    """The table checks above for one citizen held as plain objects (features.citizen.Rating and
    Spell), without pandas: the service's per-request path. Rows are list positions; a test
    asserts the same problems as find_problems on the equivalent tables."""
    today = today if type(today) is date else pd.Timestamp(today).date()
    earliest = _limits().earliest_date
    problems: list[Problem] = []

    def too_early(table, row, column, day):
        if day < earliest:
            problems.append(Problem(table, row, column, str(day), f"a date on or after {earliest}"))

    low, high, allowed = _birth_years(today)
    if not low <= int(person["birth_year"]) <= high:
        problems.append(Problem("persons", 0, "birth_year", int(person["birth_year"]), allowed))
    if not str(person["jobcenter"]).strip():
        problems.append(Problem("persons", 0, "jobcenter", person["jobcenter"], "a jobcentre name"))
    enrolled = person["enrolled_on"]
    too_early("persons", 0, "enrolled_on", enrolled)
    if enrolled > today:
        problems.append(Problem("persons", 0, "enrolled_on", str(enrolled), f"a date on or before today ({today})"))
    # every answer known, on its scale and given by a respondent who answers it: the usual request
    answers_valid = _answers_valid(ratings, schema)
    known = schema.key_set
    if not answers_valid and not all(known.issuperset(r.values) for r in ratings):
        unknown = sorted({k for r in ratings for k in r.values if k not in known},
                         key=lambda k: next(i for i, r in enumerate(ratings) if k in r.values))
        for key in unknown:
            problems.append(Problem("measurements", None, key, key, f"an indicator of schema {schema.name!r}: {schema.keys}"))
    # the usual request breaks no rule below: a few whole-list checks say so, and only a request
    # that fails one of them is walked row by row and cell by cell to name its problems
    dates = [r.measured_at for r in ratings]
    if ratings and not (min(dates) >= earliest and min(dates) >= enrolled and max(dates) <= today
                        and len({(r.measured_at, r.respondent) for r in ratings}) == len(ratings)
                        and all((r.caseworker_id or "").strip() for r in ratings if r.respondent == "caseworker")):
        seen = set()
        for row, r in enumerate(ratings):
            too_early("measurements", row, "measured_at", r.measured_at)
            if r.measured_at > today:
                problems.append(Problem("measurements", row, "measured_at", str(r.measured_at), f"a date on or before today ({today})"))
            if r.measured_at < enrolled:
                problems.append(Problem("measurements", row, "measured_at", str(r.measured_at), "a date on or after the person's enrolled_on"))
            if r.respondent == "caseworker" and not (r.caseworker_id or "").strip():
                problems.append(Problem("measurements", row, "caseworker_id", r.caseworker_id,
                                        "a pseudonymous caseworker id on every caseworker row"))
            if (r.measured_at, r.respondent) in seen:
                problems.append(Problem("measurements", row, "measured_at", str(r.measured_at),
                                        "one measurement per person, date and respondent"))
            seen.add((r.measured_at, r.respondent))
    if not answers_valid:
        # one pass over the given answers; the few bad cells are then reported in schema order, row order
        flagged, scales = [], schema.scales
        for row, r in enumerate(ratings):
            answered = schema.answered_keys(r.respondent)
            for key, value in r.values.items():
                scale = scales.get(key)
                if value is None or scale is None:  # no answer, or a key reported above
                    continue
                if not (scale[0] <= value <= scale[1]) or key not in answered:
                    flagged.append((schema.position(key), row))
        for position, row in sorted(flagged):
            indicator, r = schema.indicators[position], ratings[row]
            value = r.values[indicator.key]
            if not (indicator.scale_min <= value <= indicator.scale_max):
                problems.append(Problem("measurements", row, indicator.key, value, indicator.allowed))
            if not indicator.answered_by(r.respondent):
                problems.append(Problem("measurements", row, indicator.key, value,
                                        f"empty for a {r.respondent} row: answered only by {list(indicator.respondents)}"))
    for row, s in enumerate(spells):
        too_early("activities", row, "start", s.start)
        if s.start > today:
            problems.append(Problem("activities", row, "start", str(s.start), f"a date on or before today ({today})"))
        if s.end is not None:
            too_early("activities", row, "end", s.end)
        if s.end is not None and s.end < s.start:
            problems.append(Problem("activities", row, "end", str(s.end), "a date on or after start"))
    return problems


def _answers_valid(ratings: list, schema: IndicatorSchema) -> bool:
    """True when no answer breaks its scale or its respondent rule: each row's (key, answer)
    pairs are among those its respondent may give (IndicatorSchema.valid_answers). False sends
    the rows to the cell-by-cell check, which names the problems (an unknown key, already
    reported, and a value that is not a whole number land there too)."""
    try:
        return all(r.values.items() <= schema.valid_answers(r.respondent) for r in ratings)
    except TypeError:  # an unhashable value: the cell-by-cell check reports it
        return False
