"""Validation of the four input tables against the indicator schema.

Every problem is reported, not just the first: each names the table, the row, the column, the
value and what is allowed. Checks are vectorised, so a national cohort validates in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

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
    table: str
    row: int | None
    column: str
    value: object
    allowed: str

    def __str__(self) -> str:
        where = f"{self.table}" + (f" row {self.row}" if self.row is not None else "")
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
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(value).date())
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _report(problems: list, table: str, frame: pd.DataFrame, mask, column: str, allowed: str,
            values: pd.Series | None = None):
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    values = frame[column] if values is None else values
    for row, value in zip(np.nonzero(mask)[0], values.to_numpy()[mask]):
        problems.append(Problem(table, int(row), column, _plain(value), allowed))


def _required(problems: list, table: str, frame: pd.DataFrame, columns: list[str]) -> bool:
    missing = [c for c in columns if c not in frame.columns]
    for column in missing:
        problems.append(Problem(table, None, column, None, "a column that must be present"))
    return not missing


def _dates(problems, table, frame, column, today, nullable=False) -> pd.Series:
    """Parse a date column; report unparseable values and dates after today."""
    raw = frame[column]
    parsed = pd.to_datetime(raw, errors="coerce", format="mixed") if not pd.api.types.is_datetime64_any_dtype(raw) else raw
    bad = parsed.isna() & (raw.notna() if nullable else True)
    _report(problems, table, frame, bad, column, "a date (YYYY-MM-DD)")
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


def validate_persons(persons: pd.DataFrame, today: pd.Timestamp, problems: list) -> pd.Series | None:
    _required(problems, "persons", persons, PERSON_COLUMNS)
    has = persons.columns.__contains__  # columns are independent: check whichever are present
    if has("person_id"):
        ids = persons["person_id"]
        _report(problems, "persons", persons, ids.isna() | (ids.astype(str).str.strip() == ""),
                "person_id", "a non-empty pseudonymous id")
        _report(problems, "persons", persons, ids.duplicated(keep="first") & ids.notna(), "person_id",
                "an id that appears once")
    if has("birth_year"):
        year = pd.to_numeric(persons["birth_year"], errors="coerce")
        _report(problems, "persons", persons,
                year.isna() | (year < 1900) | (year > today.year) | (year % 1 != 0),
                "birth_year", f"a whole year from 1900 to {today.year}")
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
            problems.append(Problem(table, None, column, column,
                                    f"an indicator of schema {schema.name!r}: {schema.keys}"))
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
        value = pd.to_numeric(raw, errors="coerce")
        present = raw.notna()
        off = present & (value.isna() | (value % 1 != 0) | (value < indicator.scale_min)
                         | (value > indicator.scale_max))
        _report(problems, table, measurements, off, indicator.key, indicator.allowed)
        for respondent in RESPONDENTS:
            if not indicator.answered_by(respondent):
                wrong = present & (measurements["respondent"] == respondent)
                _report(problems, table, measurements, wrong, indicator.key,
                        f"empty for a {respondent} row: answered only by {list(indicator.respondents)}")


def validate_activities(activities: pd.DataFrame, person_ids: set, today: pd.Timestamp, problems: list):
    table = "activities"
    if not _required(problems, table, activities, ACTIVITY_COLUMNS):
        return
    _known_person(problems, table, activities, person_ids)
    _in(problems, table, activities, "kind", ACTIVITY_KINDS)
    start = _dates(problems, table, activities, "start", today)
    end = pd.to_datetime(activities["end"], errors="coerce", format="mixed")
    _report(problems, table, activities, activities["end"].notna() & end.isna(), "end",
            "a date (YYYY-MM-DD) or empty while ongoing")
    _report(problems, table, activities, end.notna() & start.notna() & (end < start), "end",
            "a date on or after start")


def validate_outcomes(outcomes: pd.DataFrame, person_ids: set, problems: list):
    table = "outcomes"
    if not _required(problems, table, outcomes, OUTCOME_COLUMNS):
        return
    _known_person(problems, table, outcomes, person_ids)
    _in(problems, table, outcomes, "status", OUTCOME_STATUSES)
    month = pd.to_datetime(outcomes["month"], errors="coerce", format="mixed")
    _report(problems, table, outcomes, month.isna(), "month", "the first day of a month (YYYY-MM-01)")
    _report(problems, table, outcomes, month.notna() & (month.dt.day != 1), "month",
            "the first day of a month (YYYY-MM-01)")
    _report(problems, table, outcomes,
            outcomes[["person_id"]].assign(month=month).duplicated(keep="first"), "month",
            "one status per person and month")


def find_problems(tables: dict[str, pd.DataFrame], schema: IndicatorSchema,
                  today: pd.Timestamp | None = None) -> list[Problem]:
    """All problems in whichever of persons, measurements, activities, outcomes are given."""
    today = pd.Timestamp(today or pd.Timestamp.now().normalize())
    problems: list[Problem] = []
    persons = tables.get("persons")
    enrolled = validate_persons(persons, today, problems) if persons is not None else None
    person_ids = set(persons["person_id"]) if persons is not None and "person_id" in persons else set()
    if tables.get("measurements") is not None:
        validate_measurements(tables["measurements"], schema, person_ids, enrolled, today, problems)
    if tables.get("activities") is not None:
        validate_activities(tables["activities"], person_ids, today, problems)
    if tables.get("outcomes") is not None:
        validate_outcomes(tables["outcomes"], person_ids, problems)
    return problems


def validate_tables(tables: dict[str, pd.DataFrame], schema: IndicatorSchema,
                    today: pd.Timestamp | None = None) -> None:
    """Raise ValidationError listing every problem, or return quietly."""
    problems = find_problems(tables, schema, today)
    if problems:
        raise ValidationError(problems)


def citizen_problems(person: dict, ratings: list, spells: list, schema: IndicatorSchema,
                     today: pd.Timestamp) -> list[Problem]:
    """The table checks above for one citizen held as plain objects (features.citizen.Rating and
    Spell), without pandas: the service's per-request path. Rows are list positions; a test
    asserts the same problems as find_problems on the equivalent tables."""
    today = pd.Timestamp(today).date()
    problems: list[Problem] = []
    if int(person["birth_year"]) > today.year or int(person["birth_year"]) < 1900:
        problems.append(Problem("persons", 0, "birth_year", int(person["birth_year"]), f"a whole year from 1900 to {today.year}"))
    if not str(person["jobcenter"]).strip():
        problems.append(Problem("persons", 0, "jobcenter", person["jobcenter"], "a jobcentre name"))
    enrolled = person["enrolled_on"]
    if enrolled > today:
        problems.append(Problem("persons", 0, "enrolled_on", str(enrolled), f"a date on or before today ({today})"))
    unknown = sorted({k for r in ratings for k in r.values if k not in schema},
                     key=lambda k: next(i for i, r in enumerate(ratings) if k in r.values))
    for key in unknown:
        problems.append(Problem("measurements", None, key, key, f"an indicator of schema {schema.name!r}: {schema.keys}"))
    seen = set()
    for row, r in enumerate(ratings):
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
    for indicator in schema.indicators:
        for row, r in enumerate(ratings):
            value = r.values.get(indicator.key)
            if value is None:
                continue
            if not (indicator.scale_min <= value <= indicator.scale_max):
                problems.append(Problem("measurements", row, indicator.key, value, indicator.allowed))
            if not indicator.answered_by(r.respondent):
                problems.append(Problem("measurements", row, indicator.key, value,
                                        f"empty for a {r.respondent} row: answered only by {list(indicator.respondents)}"))
    for row, s in enumerate(spells):
        if s.start > today:
            problems.append(Problem("activities", row, "start", str(s.start), f"a date on or before today ({today})"))
        if s.end is not None and s.end < s.start:
            problems.append(Problem("activities", row, "end", str(s.end), "a date on or after start"))
    return problems
