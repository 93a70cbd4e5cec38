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
from numba import njit

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


_CASEWORKER, _CITIZEN = 1, 2  # respondent codes for the kernel
_RESPONDENT_CODES = {"caseworker": _CASEWORKER, "citizen": _CITIZEN}


@njit(cache=True)
def _indicator_features(values, respondent, days, as_of_days, cit_columns, cw_level, cw_change_prev,
                        cw_change_first, cw_slope, cit_level, cit_change_prev, gap, X):
    """The per-indicator features of build_features for each as_of, written into X[a].

    values (n, K): the ratings in date order, NaN where not answered; respondent (n,) codes;
    days (n,) and as_of_days (A,): dates as day numbers. Per key and respondent the answers are
    forward-filled over that respondent's rows dated on or before as_of: level is the last filled
    value, previous and two_back the ones before it, first the first answer; the same float
    operations in the same order as build_features' columns."""
    n, K = values.shape
    nan = np.nan
    cw = np.empty(K)
    for a in range(as_of_days.shape[0]):
        for k in range(K):
            level = previous = two_back = first = nan
            n_cw, d1, d2, d3 = 0, 0, 0, 0
            for i in range(n):
                if days[i] > as_of_days[a]:
                    break
                if respondent[i] != _CASEWORKER:
                    continue
                two_back, previous = previous, level
                v = values[i, k]
                if not np.isnan(v):
                    level = v
                    if np.isnan(first):
                        first = v
                n_cw += 1
                d3, d2, d1 = d2, d1, days[i]
            cw[k] = level
            X[a, cw_level[k]] = level
            if n_cw == 0:  # with no caseworker rating yet, the others stay NaN (as in build_features)
                continue
            change = level - previous
            X[a, cw_change_prev[k]] = 0.0 if np.isnan(change) else change
            change = level - first
            X[a, cw_change_first[k]] = 0.0 if np.isnan(change) else change
            slope = nan
            if n_cw > 2:  # change per year over the last two intervals, else the last one, else 0
                slope = (level - two_back) / max((d1 - d3) / DAYS_PER_YEAR, 0.1)
            if np.isnan(slope) and n_cw > 1:
                slope = (level - previous) / max((d1 - d2) / DAYS_PER_YEAR, 0.1)
            X[a, cw_slope[k]] = 0.0 if np.isnan(slope) else slope
        for j in range(cit_columns.shape[0]):
            k = cit_columns[j]
            level = previous = nan
            for i in range(n):
                if days[i] > as_of_days[a]:
                    break
                if respondent[i] == _CITIZEN:
                    previous = level
                    if not np.isnan(values[i, k]):
                        level = values[i, k]
            X[a, cit_level[j]] = level
            change = level - previous
            X[a, cit_change_prev[j]] = 0.0 if np.isnan(change) else change
            X[a, gap[j]] = level - cw[k]


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
        """The feature row at one as_of (see rows)."""
        return self.rows(person, ratings, spells, [as_of])[0]

    def rows(self, person: dict, ratings: list[Rating], spells: list[Spell], as_ofs: list[date]) -> np.ndarray:
        """(len(as_ofs), features): one row per as_of from one pass over the ratings. A rating is
        anything with measured_at, respondent, caseworker_id and values (a Rating, or the
        request's Measurement), a spell anything with kind, start and end."""
        ordered = sorted(ratings, key=lambda r: r.measured_at)  # stable: same-day rows keep their order
        dates = [r.measured_at for r in ordered]
        # a missing answer (None) becomes NaN; answers are whole numbers, checked before features are built
        values = np.array([list(map(r.values.get, self.keys)) for r in ordered],
                          dtype=np.float64).reshape(len(ordered), len(self.keys))
        respondent = np.array([_RESPONDENT_CODES.get(r.respondent, 0) for r in ordered], dtype=np.int64)
        days = np.array([d.toordinal() for d in dates], dtype=np.int64)
        X = np.full((len(as_ofs), len(self.spec.names)), NAN)
        _indicator_features(values, respondent, days, np.array([d.toordinal() for d in as_ofs], dtype=np.int64),
                            self._cit_columns, self._cw_level, self._cw_change_prev, self._cw_change_first,
                            self._cw_slope, self._cit_level, self._cit_change_prev, self._gap, X)
        for x, as_of in zip(X, as_ofs):
            known = bisect_right(dates, as_of)
            caseworker = [r for r in ordered[:known] if r.respondent == "caseworker"]
            self._history_features(x, dates[:known], as_of)
            self._caseworker_features(x, caseworker, as_of)
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
