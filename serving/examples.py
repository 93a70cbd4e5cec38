"""A worked example citizen: the OpenAPI example and the smoke check share it."""

from __future__ import annotations

from features.schema import IndicatorSchema
from serving.schemas import ScoreRequest


def example_body(schema: IndicatorSchema) -> dict:
    def ratings(respondent: str, base: int) -> dict:
        keys = schema.keys_for(respondent)
        return {k: min(schema[k].scale_max, max(schema[k].scale_min, base + (i % 2))) for i, k in enumerate(keys)}

    return {
        "person": {"person_id": "demo-0001", "jobcenter": "Aarhus", "birth_year": 1984, "gender": "female",
                   "origin": "danish", "benefit_group": "aktivitetsparat_kontanthjaelp", "enrolled_on": "2015-01-12"},
        "measurements": [
            {"measured_at": "2015-01-12", "respondent": "caseworker", "caseworker_id": "cw-aar-07", "values": ratings("caseworker", 2)},
            {"measured_at": "2015-01-12", "respondent": "citizen", "caseworker_id": "cw-aar-07", "values": ratings("citizen", 3)},
            {"measured_at": "2015-04-14", "respondent": "caseworker", "caseworker_id": "cw-aar-07", "values": ratings("caseworker", 3)},
            {"measured_at": "2015-04-14", "respondent": "citizen", "caseworker_id": "cw-aar-07", "values": ratings("citizen", 3)},
        ],
        "activities": [{"kind": "virksomhedspraktik", "start": "2015-04-14", "end": None}],
        "as_of": None,
    }


def example_request(schema: IndicatorSchema) -> ScoreRequest:
    return ScoreRequest.model_validate(example_body(schema))
