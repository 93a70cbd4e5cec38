"""Point-in-time features: values, and no row dated after as_of can change a feature."""

import numpy as np
import pandas as pd

from features.build import build_features, feature_spec, measurement_occasions


def _tables_as_of(tables, as_of):
    """What a system would have known at as_of: later rows gone, later ends unknown."""
    m = tables["measurements"]
    a = tables["activities"].copy()
    a = a[a["start"] <= as_of]
    a.loc[a["end"] > as_of, "end"] = pd.NaT
    return m[m["measured_at"] <= as_of], a


def test_no_future_row_changes_a_past_feature(tables, schema):
    persons, m, a = tables["persons"], tables["measurements"], tables["activities"]
    occasions = measurement_occasions(m)
    rng = np.random.default_rng(0)
    requests = occasions.iloc[rng.choice(len(occasions), 60, replace=False)].reset_index(drop=True)
    requests["as_of"] = requests["as_of"] + pd.to_timedelta(rng.integers(0, 80, len(requests)), unit="D")
    full = build_features(requests, persons, m, a, schema)
    for i, row in requests.iterrows():
        past_m, past_a = _tables_as_of(tables, row["as_of"])
        alone = build_features(requests.iloc[[i]], persons, past_m, past_a, schema)
        pd.testing.assert_series_equal(full.iloc[i], alone.iloc[0], check_names=False)


def test_adding_future_rows_changes_nothing(tables, schema):
    persons, m, a = tables["persons"], tables["measurements"], tables["activities"]
    requests = measurement_occasions(m).groupby("person_id").nth(1).reset_index(drop=True)
    before = build_features(requests, persons, m, a, schema)
    future = m.merge(requests, on="person_id")
    future = future[future["measured_at"] <= future["as_of"]].drop(columns="as_of")
    future["measured_at"] = future["measured_at"] + pd.Timedelta(days=3000)
    future[schema.keys] = future[schema.keys].where(future[schema.keys].isna(), 1)
    later = pd.DataFrame({"person_id": requests["person_id"], "kind": "loentilskud",
                          "start": requests["as_of"] + pd.Timedelta(days=1), "end": pd.NaT})
    after = build_features(requests, persons, pd.concat([m, future]), pd.concat([a, later]), schema)
    pd.testing.assert_frame_equal(before, after)


def test_hand_computed_history():
    from features.schema import load_schema
    schema = load_schema()
    persons = pd.DataFrame({"person_id": ["p"], "jobcenter": ["Faxe"], "birth_year": [1980], "gender": ["male"],
                            "origin": ["danish"], "benefit_group": ["aktivitetsparat_kontanthjaelp"],
                            "enrolled_on": [pd.Timestamp("2014-01-01")]})
    base = {k: 2 for k in schema.keys}
    rows = [
        {"person_id": "p", "measured_at": pd.Timestamp("2014-01-10"), "respondent": "caseworker", "caseworker_id": "a", **base},
        {"person_id": "p", "measured_at": pd.Timestamp("2014-04-10"), "respondent": "caseworker", "caseworker_id": "a",
         **base, "job_search": 3},
        {"person_id": "p", "measured_at": pd.Timestamp("2014-07-10"), "respondent": "caseworker", "caseworker_id": "b",
         **base, "job_search": 5},
        {"person_id": "p", "measured_at": pd.Timestamp("2014-07-10"), "respondent": "citizen", "caseworker_id": "b",
         **{k: 4 for k in schema.keys_for("citizen")}},
    ]
    activities = pd.DataFrame({"person_id": ["p", "p"], "kind": ["virksomhedspraktik", "mentor"],
                               "start": pd.to_datetime(["2014-02-01", "2014-07-01"]),
                               "end": pd.to_datetime(["2014-03-31", pd.NaT])})
    requests = pd.DataFrame({"person_id": ["p"], "as_of": [pd.Timestamp("2014-08-09")]})
    f = build_features(requests, persons, pd.DataFrame(rows), activities, schema).iloc[0]
    assert f["job_search__cw_level"] == 5
    assert f["job_search__cw_change_prev"] == 2 and f["job_search__cw_change_first"] == 3
    assert np.isclose(f["job_search__cw_slope"], 3 / (181 / 365.25))
    assert f["job_search__cit_level"] == 4 and f["job_search__gap"] == -1
    assert f["history__n_measurements"] == 3 and f["history__days_since_last"] == 30
    assert f["caseworker__changes"] == 1 and f["caseworker__changed_at_last"] == 1
    assert f["caseworker__days_since_change"] == 30
    assert f["activity__virksomhedspraktik__active"] == 0 and f["activity__virksomhedspraktik__ever"] == 1
    assert np.isclose(f["activity__virksomhedspraktik__months_exposed"], 58 / (365.25 / 12))
    assert f["activity__mentor__active"] == 1 and f["activity__parallel_with_job_oriented"] == 0
    assert f["person__age"] == 34 and f["person__male"] == 1 and f["jobcenter__Faxe"] == 1


def test_spec_groups_every_feature_under_an_indicator_or_other_group(schema):
    spec = feature_spec(schema)
    assert len(spec.names) == len(set(spec.names)) == len(spec.groups) == len(spec.monotone)
    indicator_groups = [g for g in spec.group_names if g in schema]
    assert indicator_groups == schema.keys
    assert all(spec.monotone[i] == 1 for i, n in enumerate(spec.names) if n.endswith("_level"))


def test_request_time_builder_equals_the_cohort_builder(tables, schema):
    from features.citizen import CitizenFeatures, Rating, Spell
    persons, m, a = tables["persons"], tables["measurements"], tables["activities"]
    occasions = measurement_occasions(m)
    rng = np.random.default_rng(5)
    requests = occasions.copy()
    # every occasion, plus as many at random days between measurements
    shifted = occasions.assign(as_of=occasions["as_of"] + pd.to_timedelta(rng.integers(1, 120, len(occasions)), unit="D"))
    requests = pd.concat([requests, shifted], ignore_index=True)
    expected = build_features(requests, persons, m, a, schema).to_numpy()
    builder = CitizenFeatures(schema)
    by_person_m = {p: g for p, g in m.groupby("person_id")}
    by_person_a = {p: g for p, g in a.groupby("person_id")}
    person_rows = persons.set_index("person_id")
    got = np.empty_like(expected)
    for i, (person_id, as_of) in enumerate(requests.itertuples(index=False)):
        rows = by_person_m[person_id]
        ratings = [Rating(r.measured_at.date(), r.respondent, r.caseworker_id,
                          {k: None if pd.isna(getattr(r, k)) else int(getattr(r, k)) for k in schema.keys})
                   for r in rows.itertuples()]
        spells = [Spell(r.kind, r.start.date(), None if pd.isna(r.end) else r.end.date())
                  for r in by_person_a.get(person_id, a.iloc[:0]).itertuples()]
        p = person_rows.loc[person_id]
        person = {"birth_year": p.birth_year, "gender": p.gender, "origin": p.origin,
                  "benefit_group": p.benefit_group, "enrolled_on": p.enrolled_on.date(), "jobcenter": p.jobcenter}
        got[i] = builder.row(person, ratings, spells, as_of.date())
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)
