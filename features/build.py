"""Point-in-time features for (person, as_of) from indicator histories.

Point-in-time rule: a feature for (person, as_of) uses only rows dated on or before as_of
(measurements by measured_at, activities by start; an activity's end counts only once it has
passed). The same code builds a whole cohort (vectorised: merge_asof and group-wise operations,
no loop per person) and one citizen's row at request time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contract import ACTIVITY_CLASSES, ACTIVITY_KINDS, BENEFIT_GROUPS, JOBCENTERS, ORIGINS
from features.schema import IndicatorSchema

DAYS_PER_YEAR = 365.25
_CW, _CIT = "caseworker", "citizen"


@dataclass(frozen=True)
class FeatureSpec:
    """The model's input columns, in order, with the group each explains under."""

    names: list[str]
    groups: list[str]            # indicator key, or the name of another input group
    monotone: list[int] = field(default_factory=list)  # +1: more ready never lowers the score

    @property
    def group_names(self) -> list[str]:
        return list(dict.fromkeys(self.groups))


def feature_spec(schema: IndicatorSchema) -> FeatureSpec:
    names, groups, monotone = [], [], []

    def add(name, group, mono=0):
        names.append(name), groups.append(group), monotone.append(mono)

    for indicator in schema.indicators:
        k = indicator.key
        sign = 1 if indicator.direction == "higher_is_more_ready" else -1
        add(f"{k}__cw_level", k, sign)
        add(f"{k}__cw_change_prev", k)
        add(f"{k}__cw_change_first", k)
        add(f"{k}__cw_slope", k)
        if indicator.answered_by(_CIT):
            add(f"{k}__cit_level", k, sign)
            add(f"{k}__cit_change_prev", k)
            add(f"{k}__gap", k)
    for name in ("n_measurements", "years_since_first", "mean_spacing_days", "days_since_last"):
        add(f"history__{name}", "measurement_history")
    for name in ("changes", "changed_at_last", "days_since_change"):
        add(f"caseworker__{name}", "caseworker_change")
    for kind in ACTIVITY_KINDS:
        for name in ("active", "months_exposed", "ever"):
            add(f"activity__{kind}__{name}", f"activity_{kind}")
    add("activity__parallel_with_job_oriented", "activity_parallel")
    add("person__age", "age")
    add("person__male", "gender")
    for origin in ORIGINS[1:]:
        add(f"person__origin_{origin}", "origin")
    for group in BENEFIT_GROUPS[1:]:
        add(f"person__benefit_{group}", "benefit_group")
    add("person__months_enrolled", "enrolment")
    for jobcenter in JOBCENTERS:
        add(f"jobcenter__{jobcenter}", "jobcenter")
    return FeatureSpec(names, groups, monotone)


def _as_datetime(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, format="ISO8601").astype("datetime64[s]")


def _respondent_history(measurements: pd.DataFrame, respondent: str, keys: list[str]) -> pd.DataFrame:
    """One row per measurement of this respondent with level, changes and slope per indicator."""
    rows = measurements.loc[measurements["respondent"] == respondent, ["person_id", "measured_at",
                                                                        "caseworker_id", *keys]]
    rows = rows.sort_values(["person_id", "measured_at"], kind="stable").reset_index(drop=True)
    values = rows[keys].apply(pd.to_numeric, errors="coerce").astype("float64")
    by_person = values.groupby(rows["person_id"], sort=False)
    level = by_person.ffill()
    level_by_person = level.groupby(rows["person_id"], sort=False)
    previous = level_by_person.shift(1)
    two_back = level_by_person.shift(2)
    first = level_by_person.transform("first")
    dates = rows["measured_at"]
    date_prev = dates.groupby(rows["person_id"], sort=False).shift(1)
    date_two = dates.groupby(rows["person_id"], sort=False).shift(2)
    years_two = ((dates - date_two).dt.days / DAYS_PER_YEAR).clip(lower=0.1)
    years_prev = ((dates - date_prev).dt.days / DAYS_PER_YEAR).clip(lower=0.1)
    slope = (level - two_back).div(years_two, axis=0)
    slope = slope.fillna((level - previous).div(years_prev, axis=0)).fillna(0.0)
    out = pd.DataFrame({"person_id": rows["person_id"], "measured_at": dates})
    for k in keys:
        out[f"{k}__level"] = level[k]
        out[f"{k}__change_prev"] = (level[k] - previous[k]).fillna(0.0)
        out[f"{k}__change_first"] = (level[k] - first[k]).fillna(0.0)
        out[f"{k}__slope"] = slope[k]
    if respondent == _CW:
        caseworker = rows["caseworker_id"].astype("string")
        prev_caseworker = caseworker.groupby(rows["person_id"], sort=False).shift(1)
        changed = (prev_caseworker.notna() & (caseworker != prev_caseworker)).astype(float)
        out["caseworker__changes"] = changed.groupby(rows["person_id"], sort=False).cumsum()
        out["caseworker__changed_at_last"] = changed
        change_date = dates.where(changed.astype(bool))
        out["caseworker__last_change"] = change_date.groupby(rows["person_id"], sort=False).ffill()
    return out


def _latest(requests: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """For each request, the history row of the latest measurement on or before as_of."""
    left = requests[["person_id", "as_of", "_row"]].sort_values("as_of", kind="stable")
    right = history.sort_values("measured_at", kind="stable")
    merged = pd.merge_asof(left, right, left_on="as_of", right_on="measured_at", by="person_id",
                           direction="backward")
    return merged.set_index("_row").sort_index()


def _occasion_history(measurements: pd.DataFrame) -> pd.DataFrame:
    """Count and spacing of measurement occasions (dates with any respondent)."""
    occasions = measurements[["person_id", "measured_at"]].drop_duplicates()
    occasions = occasions.sort_values(["person_id", "measured_at"], kind="stable").reset_index(drop=True)
    group = occasions.groupby("person_id", sort=False)["measured_at"]
    occasions["history__n_measurements"] = group.cumcount() + 1.0
    occasions["_first"] = group.transform("first")
    return occasions


def _activity_features(requests: pd.DataFrame, activities: pd.DataFrame, strictly_before: bool = False) -> pd.DataFrame:
    out = pd.DataFrame(0.0, index=requests["_row"].to_numpy(),
                       columns=[f"activity__{k}__{n}" for k in ACTIVITY_KINDS
                                for n in ("active", "months_exposed", "ever")])
    if len(activities):
        spells = activities[["person_id", "kind", "start", "end"]].copy()
        spells["start"] = _as_datetime(spells["start"])
        spells["end"] = _as_datetime(spells["end"])
        pairs = requests[["person_id", "as_of", "_row"]].merge(spells, on="person_id")
        # strictly_before: an activity starting on as_of is the treatment an evaluator studies,
        # not a covariate
        pairs = pairs[(pairs["start"] < pairs["as_of"]) if strictly_before else (pairs["start"] <= pairs["as_of"])]
        # an end after as_of is unknown at as_of: the spell is simply ongoing then
        ongoing = pairs["end"].isna() | (pairs["end"] >= pairs["as_of"])
        stop = pairs["end"].where(~ongoing, pairs["as_of"])
        pairs = pairs.assign(active=ongoing.astype(float), ever=1.0,
                             months=(stop - pairs["start"]).dt.days / (DAYS_PER_YEAR / 12))
        summary = pairs.groupby(["_row", "kind"]).agg(active=("active", "max"), ever=("ever", "max"),
                                                     months_exposed=("months", "sum"))
        for name in ("active", "months_exposed", "ever"):
            wide = summary[name].unstack("kind")
            for kind in wide.columns.intersection(ACTIVITY_KINDS):
                out.loc[wide.index, f"activity__{kind}__{name}"] = wide[kind].fillna(0.0).to_numpy()
    job = [f"activity__{k}__active" for k in ACTIVITY_KINDS if ACTIVITY_CLASSES[k] == "job_oriented"]
    other = [f"activity__{k}__active" for k in ACTIVITY_KINDS if ACTIVITY_CLASSES[k] != "job_oriented"]
    out["activity__parallel_with_job_oriented"] = ((out[job].max(axis=1) > 0)
                                                  & (out[other].max(axis=1) > 0)).astype(float)
    return out


def build_features(requests: pd.DataFrame, persons: pd.DataFrame, measurements: pd.DataFrame,
                   activities: pd.DataFrame, schema: IndicatorSchema,
                   activities_strictly_before: bool = False) -> pd.DataFrame:
    """Features for each (person_id, as_of) request, in FeatureSpec order.

    Parameters
    ----------
    requests : DataFrame with person_id and as_of; a request before the person's first
        measurement gets levels of NaN.
    persons, measurements, activities : validated contract tables.

    Returns
    -------
    DataFrame (len(requests), len(spec.names)) of float64, index aligned with `requests`.
    """
    spec = feature_spec(schema)
    requests = requests[["person_id", "as_of"]].copy()
    requests["as_of"] = _as_datetime(requests["as_of"])
    requests["_row"] = np.arange(len(requests))
    measurements = measurements.copy()
    measurements["measured_at"] = _as_datetime(measurements["measured_at"])
    measurements = measurements[measurements["person_id"].isin(requests["person_id"])]
    result = pd.DataFrame(index=np.arange(len(requests)))
    caseworker = _latest(requests, _respondent_history(measurements, _CW, schema.keys))
    citizen = _latest(requests, _respondent_history(measurements, _CIT, schema.keys_for(_CIT)))
    for indicator in schema.indicators:
        k = indicator.key
        for part in ("level", "change_prev", "change_first", "slope"):
            result[f"{k}__cw_{part}"] = caseworker[f"{k}__{part}"].to_numpy()
        if indicator.answered_by(_CIT):
            result[f"{k}__cit_level"] = citizen[f"{k}__level"].to_numpy()
            result[f"{k}__cit_change_prev"] = citizen[f"{k}__change_prev"].fillna(0.0).to_numpy()
            result[f"{k}__gap"] = (citizen[f"{k}__level"] - caseworker[f"{k}__level"]).to_numpy()
    occasions = _latest(requests, _occasion_history(measurements))
    as_of = requests["as_of"].to_numpy()
    n = occasions["history__n_measurements"].fillna(0.0).to_numpy()
    span_days = (occasions["measured_at"] - occasions["_first"]).dt.days.to_numpy(dtype=float)
    result["history__n_measurements"] = n
    result["history__years_since_first"] = span_days / DAYS_PER_YEAR
    result["history__mean_spacing_days"] = np.where(n > 1, span_days / np.maximum(n - 1, 1), 0.0)
    result["history__days_since_last"] = (as_of - occasions["measured_at"].to_numpy()) / np.timedelta64(1, "D")
    result["caseworker__changes"] = caseworker["caseworker__changes"].fillna(0.0).to_numpy()
    result["caseworker__changed_at_last"] = caseworker["caseworker__changed_at_last"].fillna(0.0).to_numpy()
    since_change = (as_of - caseworker["caseworker__last_change"].to_numpy()) / np.timedelta64(1, "D")
    result["caseworker__days_since_change"] = np.nan_to_num(since_change, nan=9999.0)
    result = result.join(_activity_features(requests, activities, activities_strictly_before).reset_index(drop=True))
    result = result.join(_person_features(requests, persons))
    result.index = requests.index
    return result[spec.names].astype("float64")


def _person_features(requests: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    person = requests[["person_id", "as_of"]].merge(
        persons.drop_duplicates("person_id"), on="person_id", how="left")
    out = pd.DataFrame(index=np.arange(len(requests)))
    out["person__age"] = (person["as_of"].dt.year - pd.to_numeric(person["birth_year"])).to_numpy(dtype=float)
    out["person__male"] = (person["gender"] == "male").to_numpy(dtype=float)
    for origin in ORIGINS[1:]:
        out[f"person__origin_{origin}"] = (person["origin"] == origin).to_numpy(dtype=float)
    for group in BENEFIT_GROUPS[1:]:
        out[f"person__benefit_{group}"] = (person["benefit_group"] == group).to_numpy(dtype=float)
    enrolled = _as_datetime(person["enrolled_on"])
    out["person__months_enrolled"] = ((person["as_of"] - enrolled).dt.days / (DAYS_PER_YEAR / 12)).to_numpy()
    for jobcenter in JOBCENTERS:
        out[f"jobcenter__{jobcenter}"] = (person["jobcenter"] == jobcenter).to_numpy(dtype=float)
    return out


def age_band(age: pd.Series) -> pd.Series:
    return pd.cut(age, bins=[0, 29, 39, 49, 200], labels=["18-29", "30-39", "40-49", "50+"]).astype(str)


def measurement_occasions(measurements: pd.DataFrame) -> pd.DataFrame:
    """Every (person_id, as_of) at which the person was measured, sorted."""
    occasions = measurements[["person_id", "measured_at"]].drop_duplicates()
    occasions = occasions.rename(columns={"measured_at": "as_of"})
    occasions["as_of"] = _as_datetime(occasions["as_of"])
    return occasions.sort_values(["person_id", "as_of"], kind="stable").reset_index(drop=True)


def latest_occasions(measurements: pd.DataFrame) -> pd.DataFrame:
    """Each person's latest measurement date."""
    return measurement_occasions(measurements).groupby("person_id", as_index=False).last()


GROUP_COLUMNS = ["jobcenter", "gender", "age_band", "origin"]


def add_group_columns(frame: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """The reporting groups (jobcenter, gender, age band at as_of, origin) added to rows keyed by
    person_id and as_of; the one place scores get their groups."""
    people = persons.drop_duplicates("person_id").set_index("person_id")
    out = frame.copy()
    for column in ("jobcenter", "gender", "origin"):
        out[column] = out["person_id"].map(people[column])
    birth_year = pd.to_numeric(out["person_id"].map(people["birth_year"]))
    out["age_band"] = age_band(_as_datetime(out["as_of"]).dt.year - birth_year)
    return out
