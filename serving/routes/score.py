"""One citizen's score with its explanation."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Body, Request

from features.schema import load_schema
from serving.citizen import score_citizen
from serving.deps import Caseworker, CurrentModel, JSONAnswer, model_ref
from serving.examples import example_body
from serving.observability import record_score, window_observer
from serving.schemas import ScoreRequest, ScoreResponse

router = APIRouter(tags=["scores"])
_EXAMPLE = {"citizen": {"summary": "A citizen with two measurements", "value": example_body(load_schema())}}


@router.post("/v1/score", response_model=ScoreResponse)
async def score(request: Request, caller: Caseworker, current: CurrentModel,
                body: ScoreRequest = Body(openapi_examples=_EXAMPLE)):
    """One citizen's probability of job or education within the horizon, its interval, and the
    explanation: base_value + sum(contributions) == log_odds."""
    request.state.person_ids = [body.person.person_id]
    # sub-millisecond and single-threaded by design: scored on the event loop, no thread hop;
    # the answer is built to the ScoreResponse schema and sent as it is
    result = score_citizen(current.model, body, date.today(),
                           observe=window_observer(request.app.state.monitor, current))
    record_score(result["probability"])
    result["as_of"] = result["as_of"].isoformat()
    change = result["change"]
    if change["previous_as_of"] is not None:
        change["previous_as_of"] = change["previous_as_of"].isoformat()
    return JSONAnswer({**result, "model": model_ref(current)})
