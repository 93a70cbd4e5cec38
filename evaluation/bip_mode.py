"""BIP mode: intervention cohorts from the four tables (sequential, as-of-start design).

For every measurement occasion whose outcome horizon is observed and where the person is not
already in the intervention kind: treated = a spell of that kind starts within `window_days`
from the occasion; comparison = it does not. Covariates are the point-in-time features at the
occasion, with activities counted only if they started before it (a start on the day is the
treatment, not a covariate). Outcome: job or education within the horizon. Nothing after the
occasion enters the covariates.

The occasions, their features and their progression outcomes do not depend on the kind, so
`build_occasion_table` builds them once for every kind (one column pair per kind says who is
eligible and who is treated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.estimate import EvaluationInputError
from features.build import age_band, build_features, feature_spec, measurement_occasions
from features.contract import ACTIVITY_KINDS
from features.labels import label_occasions
from features.schema import IndicatorSchema

BANDS = ["low", "middle", "high"]


def covariate_names(schema: IndicatorSchema) -> list[str]:
    """A compact pre-treatment covariate set: ratings, changes, gaps, history, earlier
    activities, person, jobcentre."""
    names = feature_spec(schema).names
    return [n for n in names if not n.endswith("__cw_slope") and not n.endswith("__cw_change_first")]


def check_kinds(kind: str) -> list[str]:
    """'all' or one kind -> the kinds to evaluate."""
    if kind == "all":
        return list(ACTIVITY_KINDS)
    if kind not in ACTIVITY_KINDS:
        raise EvaluationInputError("kind", kind, f"'all' or one of {list(ACTIVITY_KINDS)}")
    return [kind]


def build_occasion_table(tables: dict[str, pd.DataFrame], schema: IndicatorSchema, kinds: list[str],
                         horizon: int = 12, window_days: int = 31, model=None,
                         follow_ups: dict[str, tuple[int, int]] | None = None,
                         bands: tuple[float, float] | None = None, progression: bool = True) -> pd.DataFrame:
    """One row per labelled measurement occasion: the covariates, the outcome `job_{horizon}m`,
    `eligible__{kind}` and `treated__{kind}` per kind, jobcenter, age_band, readiness (the model's
    probability, or the mean caseworker rating without a model), readiness_band and, with
    `progression`, the change_* outcomes at each follow-up."""
    occasions = label_occasions(measurement_occasions(tables["measurements"]), tables["outcomes"], horizon)
    features = build_features(occasions, tables["persons"], tables["measurements"], tables["activities"], schema,
                              activities_strictly_before=True)
    frame = occasions.rename(columns={"label": f"job_{horizon}m"}).reset_index(drop=True)
    features = features.reset_index(drop=True)
    columns = {c: features[c] for c in covariate_names(schema)}
    for kind in kinds:
        columns[f"eligible__{kind}"] = features[f"activity__{kind}__active"].to_numpy() == 0
        columns[f"treated__{kind}"] = _starts_within(frame, tables["activities"], kind, window_days)
    persons = tables["persons"].drop_duplicates("person_id").set_index("person_id")
    columns["jobcenter"] = frame["person_id"].map(persons["jobcenter"])
    columns["age_band"] = age_band(features["person__age"])
    readiness = _readiness(model, features, schema)
    columns["readiness"] = readiness
    cuts = bands or ((0.03, 0.10) if model is not None else (2.5, 3.5))
    columns["readiness_band"] = pd.cut(readiness, [-np.inf, cuts[0], cuts[1], np.inf], labels=BANDS).astype(str)
    frame = pd.concat([frame, pd.DataFrame(columns, index=frame.index)], axis=1)
    del features
    if progression:
        frame = _progression(frame, tables, schema, model, follow_ups or {"3m": (45, 135), "6m": (135, 225)})
    return frame


def build_intervention_cohort(tables: dict[str, pd.DataFrame], schema: IndicatorSchema, kind: str,
                              horizon: int = 12, window_days: int = 31, model=None) -> pd.DataFrame:
    """One kind's cohort: its eligible occasions with a `treated` column."""
    check_kinds(kind)
    table = build_occasion_table(tables, schema, [kind], horizon, window_days, model)
    cohort = table[table[f"eligible__{kind}"]].rename(columns={f"treated__{kind}": "treated"})
    return cohort.drop(columns=[f"eligible__{kind}"]).reset_index(drop=True)


def _starts_within(cohort: pd.DataFrame, activities: pd.DataFrame, kind: str, window_days: int) -> np.ndarray:
    spells = activities.loc[activities["kind"] == kind, ["person_id", "start"]]
    spells = spells.assign(start=pd.to_datetime(spells["start"]).astype("datetime64[s]")).sort_values("start")
    left = cohort[["person_id", "as_of"]].assign(_row=np.arange(len(cohort))).sort_values("as_of")
    matched = pd.merge_asof(left, spells, left_on="as_of", right_on="start", by="person_id", direction="forward")
    matched = matched.set_index("_row").sort_index()
    return ((matched["start"] - matched["as_of"]).dt.days < window_days).fillna(False).to_numpy().astype(int)


def _readiness(model, features: pd.DataFrame, schema: IndicatorSchema) -> np.ndarray:
    """The readiness score at the occasion: the model's probability when a model is given, else
    the mean caseworker rating."""
    if model is not None:
        return model.probability(features[model.spec.names].to_numpy())
    return features[[f"{k}__cw_level" for k in schema.keys]].mean(axis=1).to_numpy()


def _progression(cohort: pd.DataFrame, tables: dict, schema: IndicatorSchema, model,
                 follow_ups: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Change in each caseworker rating (and in the score) from the occasion to the first
    measurement `lo`-`hi` days later (per follow-up); empty when there is none."""
    m = tables["measurements"]
    cw = m[m["respondent"] == "caseworker"][["person_id", "measured_at", *schema.keys]].copy()
    cw["measured_at"] = pd.to_datetime(cw["measured_at"]).astype("datetime64[s]")
    cw = cw.sort_values("measured_at")
    base = cohort[["person_id", "as_of"]].assign(_row=np.arange(len(cohort)))
    changes = {}
    now = pd.merge_asof(base.sort_values("as_of"), cw, left_on="as_of", right_on="measured_at", by="person_id",
                        direction="backward").set_index("_row").sort_index()
    for label, (lo, hi) in follow_ups.items():
        target = base.assign(look=(base["as_of"] + pd.Timedelta(days=lo + 1)).astype("datetime64[s]")).sort_values("look")
        later = pd.merge_asof(target, cw, left_on="look", right_on="measured_at", by="person_id",
                              direction="forward").set_index("_row").sort_index()
        too_late = (later["measured_at"] - cohort["as_of"]).dt.days > hi
        for k in schema.keys:
            changes[f"change_{k}_{label}"] = (later[k] - now[k]).where(~too_late).astype("float32").to_numpy()
        if model is not None:
            requests = pd.DataFrame({"person_id": cohort["person_id"], "as_of": later["measured_at"]})
            has = requests["as_of"].notna() & ~too_late
            score = np.full(len(cohort), np.nan)
            if has.any():
                score[has.to_numpy()] = model.score_frame(requests[has].reset_index(drop=True), tables)["probability"].to_numpy()
            changes[f"change_score_{label}"] = score - cohort["readiness"].to_numpy()
    return pd.concat([cohort, pd.DataFrame(changes, index=cohort.index)], axis=1)
