from pathlib import Path

import pytest

from features.build import build_features, feature_spec
from features.schema import SchemaError, load_schema, schema_from_dict

SE8 = Path(__file__).parent / "se8.toml"


def test_default_schema_is_bips_eleven(schema):
    assert len(schema.keys) == 11
    assert len(schema.keys_for("citizen")) == 9
    assert "caseworker_belief" not in schema.keys_for("citizen")
    assert all(i.scale_min == 1 and i.scale_max == 5 for i in schema.indicators)
    assert schema["caseworker_belief"].label_da == "Sagsbehandlerens tro på job"


def test_another_instrument_loads_without_code_change():
    se8 = load_schema(SE8)
    assert len(se8.keys) == 8
    assert {i.scale_max for i in se8.indicators} == {10}
    spec = feature_spec(se8)
    assert {g for g in spec.groups if g in se8} == set(se8.keys)


def test_another_instrument_builds_features():
    import pandas as pd

    se8 = load_schema(SE8)
    persons = pd.DataFrame({"person_id": ["a"], "jobcenter": ["Aarhus"], "birth_year": [1980],
                            "gender": ["female"], "origin": ["danish"],
                            "benefit_group": ["aktivitetsparat_kontanthjaelp"], "enrolled_on": ["2020-01-01"]})
    rows = []
    for date, value in (("2020-01-05", 3), ("2020-04-05", 7)):
        rows.append({"person_id": "a", "measured_at": date, "respondent": "caseworker",
                     "caseworker_id": "c1", **{k: value for k in se8.keys}})
    measurements = pd.DataFrame(rows)
    activities = pd.DataFrame(columns=["person_id", "kind", "start", "end"])
    requests = pd.DataFrame({"person_id": ["a"], "as_of": ["2020-05-01"]})
    features = build_features(requests, persons, measurements, activities, se8)
    assert features.loc[0, "halsa__cw_level"] == 7
    assert features.loc[0, "halsa__cw_change_prev"] == 4


@pytest.mark.parametrize("mutation, message", [
    (lambda raw: raw["indicator"][0].update(respondents=["citizen"]), "caseworker"),
    (lambda raw: raw["indicator"][0].update(scale={"min": 5, "max": 1}), "below max"),
    (lambda raw: raw["indicator"].append(dict(raw["indicator"][0])), "duplicate"),
    (lambda raw: raw["indicator"][0].update(direction="sideways"), "direction"),
])
def test_malformed_schema_is_refused(mutation, message):
    raw = {"name": "x", "indicator": [{"key": "a", "label_da": "A", "label_en": "A",
                                       "respondents": ["caseworker"], "scale": {"min": 1, "max": 5},
                                       "direction": "higher_is_more_ready"}]}
    mutation(raw)
    with pytest.raises(SchemaError, match=message):
        schema_from_dict(raw)
