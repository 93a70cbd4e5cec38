"""One citizen's score: request -> validated tables -> features -> score, interval, explanation."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from features.validation import Problem, find_problems
from models.scoring import ScoringModel, sigmoid
from serving import texts
from serving.schemas import ScoreRequest


class InputProblems(Exception):
    """Input that parses but breaks the data contract; carries every problem found."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


_TABLE_TO_FIELD = {"persons": "person", "measurements": "measurements", "activities": "activities"}


def problem_field(p: Problem) -> str:
    """A request path for a table problem: measurements[3].values.job_search, person.gender ..."""
    base = _TABLE_TO_FIELD.get(p.table, p.table)
    if p.table == "persons":
        return f"person.{p.column}"
    where = f"{base}[{p.row}]" if p.row is not None else base
    if p.table == "measurements" and p.column not in ("person_id", "measured_at", "respondent", "caseworker_id"):
        return f"{where}.values.{p.column}"
    return f"{where}.{p.column}"


def request_tables(request: ScoreRequest, schema) -> dict[str, pd.DataFrame]:
    """The contract tables for one citizen, in request order (so row numbers map to fields)."""
    person = request.person.model_dump()
    person_id = person["person_id"]
    persons = pd.DataFrame([{**person, "enrolled_on": pd.Timestamp(person["enrolled_on"])}])
    rows = []
    for m in request.measurements:
        row = {"person_id": person_id, "measured_at": pd.Timestamp(m.measured_at),
               "respondent": m.respondent, "caseworker_id": m.caseworker_id}
        row.update({k: v for k, v in m.values.items()})
        rows.append(row)
    measurements = pd.DataFrame(rows)
    for key in schema.keys:
        if key not in measurements:
            measurements[key] = np.nan
    activities = pd.DataFrame(
        [{"person_id": person_id, "kind": a.kind, "start": pd.Timestamp(a.start),
          "end": pd.Timestamp(a.end) if a.end else pd.NaT} for a in request.activities],
        columns=["person_id", "kind", "start", "end"])
    return {"persons": persons, "measurements": measurements, "activities": activities}


def check(request: ScoreRequest, tables: dict, schema, today: date) -> date:
    """Every contract problem at once; returns the as_of to score."""
    problems = [{"field": problem_field(p), "value": p.to_dict()["value"], "allowed": p.allowed}
                for p in find_problems(tables, schema, pd.Timestamp(today))]
    if not any(m.respondent == "caseworker" for m in request.measurements):
        problems.append({"field": "measurements", "value": None,
                         "allowed": "at least one caseworker measurement"})
    dates = sorted(m.measured_at for m in request.measurements)
    as_of = request.as_of or dates[-1]
    if as_of < dates[0]:
        problems.append({"field": "as_of", "value": str(as_of),
                         "allowed": f"a date on or after the first measurement ({dates[0]})"})
    if as_of > today:
        problems.append({"field": "as_of", "value": str(as_of), "allowed": f"a date on or before today ({today})"})
    if problems:
        raise InputProblems(problems)
    return as_of


def score_citizen(model: ScoringModel, request: ScoreRequest, today: date) -> dict:
    schema = model.schema
    tables = request_tables(request, schema)
    as_of = check(request, tables, schema, today)
    occasions = sorted({m.measured_at for m in request.measurements if m.measured_at <= as_of})
    previous = occasions[-2] if len(occasions) >= 2 else None
    asked = [as_of] + ([previous] if previous else [])
    requests = pd.DataFrame({"person_id": request.person.person_id, "as_of": [pd.Timestamp(d) for d in asked]})
    features = model.features(requests, tables)
    X = features.to_numpy()
    contributions, base = model.explain(X)
    log_odds = model.explained_log_odds(contributions, base)
    probability = sigmoid(log_odds)
    low, high = model.interval(X[:1], log_odds[:1])
    groups = model.groups
    parts = []
    for g, group in enumerate(groups):
        c = float(contributions[0, g])
        pp = 100 * float(probability[0] - sigmoid(log_odds[0] - c))
        kind = "indicator" if group in schema else "other"
        caseworker = _value(features, 0, f"{group}__cw_level") if kind == "indicator" else None
        citizen = _value(features, 0, f"{group}__cit_level") if kind == "indicator" else None
        label_da, label_en = texts.labels(group, schema)
        active = _value(features, 0, f"activity__{group[len('activity_'):]}__active")
        reason_da, reason_en = texts.reasons(group, schema, pp, caseworker, citizen,
                                             None if active is None else bool(active))
        parts.append({"group": group, "kind": kind, "contribution": c, "contribution_pp": pp,
                      "label_da": label_da, "label_en": label_en, "reason_da": reason_da, "reason_en": reason_en})
    parts.sort(key=lambda p: -abs(p["contribution"]))
    return {
        "person_id": request.person.person_id,
        "as_of": as_of,
        "horizon_months": model.horizon_months,
        "probability": float(probability[0]),
        "interval": {"low": float(low[0]), "high": float(high[0]),
                     "method": "95% model uncertainty: log-odds +- 1.96 SD across the 5 cross-validation models"},
        "explanation": {"unit": "log_odds", "base_value": float(base[0]), "log_odds": float(log_odds[0]),
                        "contributions": parts},
        "change": _change(previous, probability, contributions, log_odds, groups, schema),
    }


def _value(features: pd.DataFrame, row: int, column: str):
    if column not in features:
        return None
    value = features.iloc[row][column]
    return None if pd.isna(value) else float(value)


def _change(previous, probability, contributions, log_odds, groups, schema) -> dict:
    if previous is None:
        return {"previous_as_of": None, "previous_probability": None, "drivers": []}
    delta = contributions[0] - contributions[1]
    drivers = []
    for g in np.argsort(-np.abs(delta)):
        if abs(delta[g]) < 1e-9 or len(drivers) == 5:
            break
        label_da, label_en = texts.labels(groups[g], schema)
        # percentage points this group's change alone moved the score, from the previous score
        pp = 100 * float(sigmoid(log_odds[1] + delta[g]) - sigmoid(log_odds[1]))
        drivers.append({"group": groups[g], "label_da": label_da, "label_en": label_en,
                        "change": float(delta[g]), "change_pp": pp})
    return {"previous_as_of": previous, "previous_probability": float(probability[1]), "drivers": drivers}
