"""One citizen's score: request -> checked inputs -> feature rows -> score, interval, explanation.

The per-request path uses plain objects (no pandas); `request_tables` builds the contract tables
for the cohort route, where a request holds many citizens."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.citizen import CitizenFeatures
from features.validation import Problem, citizen_problems
from models.scoring import ScoringModel, cumulative_curve, sigmoid, sigmoid_scalar
from serving import texts
from serving.errors import InputProblems
from serving.schemas import Activity, Measurement, ScoreRequest


INTERVAL_METHOD = "95% model uncertainty: log-odds +- 1.96 SD across the 5 cross-validation models"


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


def citizen_inputs(request: ScoreRequest) -> tuple[dict, list[Measurement], list[Activity]]:
    """The person as a dict, and the measurements and activities as they came: a Measurement has
    the attributes of a Rating (measured_at, respondent, caseworker_id, values) and an Activity
    those of a Spell (kind, start, end), so no copy is made per row."""
    return request.person.model_dump(), request.measurements, request.activities


def check(request: ScoreRequest, person, ratings, spells, schema, today: date) -> date:
    """Every contract problem at once; returns the as_of to score."""
    problems = [{"field": problem_field(p), "value": p.to_dict()["value"], "allowed": p.allowed}
                for p in citizen_problems(person, ratings, spells, schema, today)]
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


def score_citizen(model: ScoringModel, request: ScoreRequest, today: date, observe=None) -> dict:
    """The per-request path: no pandas, one small float array, the boosters walked in two calls.
    `observe(feature_row, probability)`, when given, sees the scored row as a list of floats (the
    monitoring window)."""
    schema = model.schema
    person, ratings, spells = citizen_inputs(request)
    as_of = check(request, person, ratings, spells, schema, today)
    occasions = sorted({r.measured_at for r in ratings if r.measured_at <= as_of})
    previous = occasions[-2] if len(occasions) >= 2 else None
    builder, groups = _request_path(model)
    X = builder.rows(person, ratings, spells, [as_of] + ([previous] if previous else []))
    raw = model.raw_log_odds(X)  # every head, both rows: the explanation's source and the curve
    contributions, base = model.explain(X, raw=raw)
    log_odds = model.explained_log_odds(contributions, base)
    probability = sigmoid(log_odds)
    curve = cumulative_curve(raw[:1])[0]
    low, high = model.curve_interval(X[:1], curve)
    default = model.horizons.index(model.horizon_months)
    # plain floats from here: per-element numpy calls cost more than the arithmetic
    x, own = X[0].tolist(), contributions[0].tolist()
    score, score_log_odds = float(probability[0]), float(log_odds[0])
    if observe is not None:
        observe(x, score)
    parts = []
    for g, group in enumerate(groups):
        c = own[g]
        # percentage points this part moves the score: from the score without it to the score
        pp = 100 * (score - sigmoid_scalar(score_log_odds - c))
        active = _value(x, group.active)
        reason_da, reason_en = group.reasons(pp, _value(x, group.caseworker), _value(x, group.citizen),
                                             None if active is None else bool(active))
        parts.append({"group": group.name, "kind": group.kind, "contribution": c, "contribution_pp": pp,
                      "label_da": group.label_da, "label_en": group.label_en,
                      "reason_da": reason_da, "reason_en": reason_en})
    parts.sort(key=lambda p: -abs(p["contribution"]))
    return {
        "person_id": request.person.person_id,
        "as_of": as_of,
        "horizon_months": model.horizon_months,
        "probability": float(probability[0]),
        "interval": {"low": float(low[0, default]), "high": float(high[0, default]), "method": INTERVAL_METHOD},
        "curve": [{"horizon_months": horizon, "probability": sigmoid_scalar(float(curve[0, k])),
                   "interval": {"low": float(low[0, k]), "high": float(high[0, k]), "method": INTERVAL_METHOD}}
                  for k, horizon in enumerate(model.horizons)],
        "explanation": {"unit": "log_odds", "base_value": float(base[0]), "log_odds": float(log_odds[0]),
                        "contributions": parts},
        "change": _change(previous, probability, contributions, log_odds, groups),
    }


@dataclass(frozen=True)
class _Group:
    """What the answer says about one input group, fixed per model: its kind, names and the
    feature columns its reason quotes (None where it has none)."""
    name: str
    kind: str
    caseworker: int | None
    citizen: int | None
    active: int | None
    label_da: str
    label_en: str
    reasons: texts.GroupReasons


def _request_path(model: ScoringModel) -> tuple[CitizenFeatures, list[_Group]]:
    """The row builder and the groups' texts and columns, built once per loaded model and kept on
    it (transient: they go when the model goes)."""
    cached = model.__dict__.get("_citizen_features")
    if cached is None:
        builder = CitizenFeatures(model.schema)
        groups = []
        for group in model.groups:
            indicator = group in model.schema
            reasons = texts.GroupReasons(group, model.schema)
            groups.append(_Group(group, "indicator" if indicator else "other",
                                 builder.index.get(f"{group}__cw_level") if indicator else None,
                                 builder.index.get(f"{group}__cit_level") if indicator else None,
                                 builder.index.get(f"activity__{group[len('activity_'):]}__active"),
                                 reasons.da_label, reasons.en_label, reasons))
        cached = model._citizen_features = (builder, groups)
    return cached


def _value(x: list[float], index: int | None) -> float | None:
    if index is None or math.isnan(x[index]):
        return None
    return x[index]


def _change(previous, probability, contributions, log_odds, groups: list[_Group]) -> dict:
    if previous is None:
        return {"previous_as_of": None, "previous_probability": None, "drivers": []}
    delta = contributions[0] - contributions[1]
    change = delta.tolist()  # plain floats: the same sums as numpy's float64, without its per-element cost
    before = float(log_odds[1])
    drivers = []
    for g in np.argsort(-np.abs(delta)).tolist():
        if abs(change[g]) < 1e-9 or len(drivers) == 5:
            break
        group = groups[g]
        # percentage points this group's change alone moved the score, from the previous score
        pp = 100 * (sigmoid_scalar(before + change[g]) - sigmoid_scalar(before))
        drivers.append({"group": group.name, "label_da": group.label_da, "label_en": group.label_en,
                        "change": change[g], "change_pp": pp})
    return {"previous_as_of": previous, "previous_probability": float(probability[1]), "drivers": drivers}
