"""One citizen's feature rows without pandas: the request-time twin of build.build_features.

The service scores one citizen per request; building a DataFrame pipeline for that costs ~150 ms,
this costs well under a millisecond. A test asserts both give the same numbers on every occasion
of a simulated cohort, so the two cannot drift apart.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date

import numpy as np

from features.build import DAYS_PER_YEAR, FeatureSpec, feature_spec
from features.contract import ACTIVITY_CLASSES, ACTIVITY_KINDS, BENEFIT_GROUPS, JOBCENTERS, ORIGINS
from features.schema import IndicatorSchema

NAN = float("nan")
_DAYS_PER_MONTH = DAYS_PER_YEAR / 12


@dataclass(frozen=True)
class Rating:
    measured_at: date
    respondent: str
    caseworker_id: str | None
    values: dict  # indicator key -> int or None


@dataclass(frozen=True)
class Spell:
    kind: str
    start: date
    end: date | None


class _History:
    """One respondent's ratings in date order as a (ratings x keys) matrix, forward-filled once
    per request, so the (level, previous, two_back, first) of any date prefix is a slice: what
    build_features computes per indicator, done for all indicators at once."""

    def __init__(self, ratings: list[Rating], keys: list[str]):
        self.ratings = ratings
        self.dates = [r.measured_at for r in ratings]
        n, k = len(ratings), len(keys)
        # a missing answer (None) becomes NaN; ratings are ints (checked before features are built)
        values = np.array([[r.values.get(key) for key in keys] for r in ratings], dtype=np.float64).reshape(n, k)
        valid = ~np.isnan(values)
        columns = np.arange(k)
        last = np.where(valid, np.arange(n)[:, None], 0)  # before a first answer, row 0 holds NaN too
        if n:
            np.maximum.accumulate(last, axis=0, out=last)
        self.filled = values[last, columns]
        if n:
            self.first_row = np.where(valid.any(axis=0), valid.argmax(axis=0), n)
            self.first_value = values[np.minimum(self.first_row, n - 1), columns]
        else:
            self.first_row, self.first_value = np.zeros(k, dtype=np.intp), np.full(k, NAN)
        self._none = np.full(k, NAN)

    def count(self, as_of: date) -> int:
        """How many of the ratings are dated on or before as_of."""
        return bisect_right(self.dates, as_of)

    def at(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(level, previous, two_back, first) per key over the first n ratings, NaN where absent."""
        return (self.filled[n - 1] if n > 0 else self._none, self.filled[n - 2] if n > 1 else self._none,
                self.filled[n - 3] if n > 2 else self._none, np.where(self.first_row < n, self.first_value, NAN))


def _nan0(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), 0.0, x)


def _slopes(level, previous, two_back, dates: list[date]) -> np.ndarray:
    """Change per year over the last two intervals, else the last one, else 0 (as build_features)."""
    out = np.zeros(len(level))
    if len(dates) > 1:
        value = (level - previous) / max((dates[-1] - dates[-2]).days / DAYS_PER_YEAR, 0.1)
        out = np.where(np.isnan(value), out, value)
    if len(dates) > 2:
        value = (level - two_back) / max((dates[-1] - dates[-3]).days / DAYS_PER_YEAR, 0.1)
        out = np.where(np.isnan(value), out, value)
    return out


class CitizenFeatures:
    """Builds rows in FeatureSpec order for one citizen at any as_of. The column positions are
    worked out once per schema (one builder per loaded model), not per request."""

    def __init__(self, schema: IndicatorSchema):
        self.schema = schema
        self.spec: FeatureSpec = feature_spec(schema)
        self.index = {name: i for i, name in enumerate(self.spec.names)}
        self.citizen_keys = schema.keys_for("citizen")
        self.keys = keys = schema.keys
        at = lambda suffix, ks: np.array([self.index[f"{k}__{suffix}"] for k in ks], dtype=np.intp)  # noqa: E731
        self._cw_level, self._cw_change_prev, self._cw_change_first, self._cw_slope = (
            at(s, keys) for s in ("cw_level", "cw_change_prev", "cw_change_first", "cw_slope"))
        self._cit_level, self._cit_change_prev, self._gap = (
            at(s, self.citizen_keys) for s in ("cit_level", "cit_change_prev", "gap"))
        self._cit_columns = np.array([keys.index(k) for k in self.citizen_keys], dtype=np.intp)
        self._history_slots = tuple(self.index[f"history__{n}"] for n in
                                    ("n_measurements", "years_since_first", "mean_spacing_days", "days_since_last"))
        self._caseworker_slots = tuple(self.index[f"caseworker__{n}"] for n in
                                       ("changes", "changed_at_last", "days_since_change"))
        self._activity_slots = [(kind, *(self.index[f"activity__{kind}__{n}"] for n in ("active", "months_exposed", "ever")))
                                for kind in ACTIVITY_KINDS]
        self._parallel_slot = self.index["activity__parallel_with_job_oriented"]
        self._person_slots = (self.index["person__age"], self.index["person__male"], self.index["person__months_enrolled"])
        self._one_hot = [("origin", [(v, self.index[f"person__origin_{v}"]) for v in ORIGINS[1:]]),
                         ("benefit_group", [(v, self.index[f"person__benefit_{v}"]) for v in BENEFIT_GROUPS[1:]]),
                         ("jobcenter", [(v, self.index[f"jobcenter__{v}"]) for v in JOBCENTERS])]

    def row(self, person: dict, ratings: list[Rating], spells: list[Spell], as_of: date) -> np.ndarray:
        return self.rows(person, ratings, spells, [as_of])[0]

    def rows(self, person: dict, ratings: list[Rating], spells: list[Spell], as_ofs: list[date]) -> np.ndarray:
        """(len(as_ofs), features): one row per as_of from one pass over the ratings."""
        ordered = sorted(ratings, key=lambda r: r.measured_at)  # stable: same-day rows keep their order
        dates = [r.measured_at for r in ordered]
        caseworker = _History([r for r in ordered if r.respondent == "caseworker"], self.keys)
        citizen = _History([r for r in ordered if r.respondent == "citizen"], self.citizen_keys)
        X = np.full((len(as_ofs), len(self.spec.names)), NAN)
        for x, as_of in zip(X, as_ofs):
            n_cw, n_cit = caseworker.count(as_of), citizen.count(as_of)
            level, previous, two_back, first = caseworker.at(n_cw)
            x[self._cw_level] = level
            if n_cw:  # with no caseworker rating yet, these stay NaN (as in build_features)
                x[self._cw_change_prev] = _nan0(level - previous)
                x[self._cw_change_first] = _nan0(level - first)
                x[self._cw_slope] = _slopes(level, previous, two_back, caseworker.dates[:n_cw])
            c_level, c_previous, _, _ = citizen.at(n_cit)
            x[self._cit_level] = c_level
            x[self._cit_change_prev] = _nan0(c_level - c_previous)
            x[self._gap] = c_level - level[self._cit_columns]
            self._history_features(x, dates[:bisect_right(dates, as_of)], as_of)
            self._caseworker_features(x, caseworker.ratings[:n_cw], as_of)
            self._activity_features(x, spells, as_of)
            self._person_features(x, person, as_of)
        return X

    def _history_features(self, x: np.ndarray, known: list[date], as_of: date):
        dates = sorted(set(known))
        n = len(dates)
        span = (dates[-1] - dates[0]).days if n else NAN
        n_slot, years_slot, spacing_slot, last_slot = self._history_slots
        x[n_slot] = float(n)
        x[years_slot] = span / DAYS_PER_YEAR
        x[spacing_slot] = span / max(n - 1, 1) if n > 1 else 0.0
        x[last_slot] = float((as_of - dates[-1]).days) if n else NAN

    def _caseworker_features(self, x: np.ndarray, caseworker: list[Rating], as_of: date):
        changes, changed, last_change = 0.0, 0.0, None
        for before, row in zip(caseworker, caseworker[1:]):
            changed = float(before.caseworker_id is not None and row.caseworker_id != before.caseworker_id)
            if changed:
                changes += 1
                last_change = row.measured_at
        changes_slot, at_last_slot, since_slot = self._caseworker_slots
        x[changes_slot] = changes
        x[at_last_slot] = changed if len(caseworker) > 1 else 0.0
        x[since_slot] = float((as_of - last_change).days) if last_change else 9999.0

    def _activity_features(self, x: np.ndarray, spells: list[Spell], as_of: date):
        active = dict.fromkeys(ACTIVITY_KINDS, 0.0)
        ever = dict.fromkeys(ACTIVITY_KINDS, 0.0)
        months = dict.fromkeys(ACTIVITY_KINDS, 0.0)
        for spell in spells:
            if spell.kind not in active or spell.start > as_of:
                continue
            ongoing = spell.end is None or spell.end >= as_of
            stop = as_of if ongoing else spell.end
            active[spell.kind] = max(active[spell.kind], float(ongoing))
            ever[spell.kind] = 1.0
            months[spell.kind] += (stop - spell.start).days / _DAYS_PER_MONTH
        for kind, active_slot, months_slot, ever_slot in self._activity_slots:
            x[active_slot], x[months_slot], x[ever_slot] = active[kind], months[kind], ever[kind]
        job = any(active[k] > 0 for k in ACTIVITY_KINDS if ACTIVITY_CLASSES[k] == "job_oriented")
        other = any(active[k] > 0 for k in ACTIVITY_KINDS if ACTIVITY_CLASSES[k] != "job_oriented")
        x[self._parallel_slot] = float(job and other)

    def _person_features(self, x: np.ndarray, person: dict, as_of: date):
        age_slot, male_slot, enrolled_slot = self._person_slots
        x[age_slot] = float(as_of.year - int(person["birth_year"]))
        x[male_slot] = float(person["gender"] == "male")
        for field, slots in self._one_hot:
            for value, slot in slots:
                x[slot] = float(person[field] == value)
        x[enrolled_slot] = (as_of - person["enrolled_on"]).days / _DAYS_PER_MONTH
