"""One citizen's score with its explanation."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Body, Request
from fastapi.routing import APIRoute

from features.schema import load_schema
from serving.citizen import score_citizen
from serving.deps import Caseworker, CurrentModel, JSONAnswer, model_ref
from serving.examples import example_body
from serving.observability import record_score, window_observer
from serving.schemas import ScoreRequest, ScoreResponse


class ScoreRoute(APIRoute):
    """POST /v1/score's route with a short lane for the usual request: a caller the middleware
    accepted, a loaded model, Content-Type application/json and a body that pydantic parses and
    validates from the bytes in one step. Such a request goes straight to the endpoint with the
    values FastAPI's dependencies would give (the caller from the scope, the holder's model, the
    body as ScoreRequest), skipping the generic dependency solving and the json.loads + dict
    validation, about a sixth of the answer's time. Everything else (no caller, no model, another
    content type, a body that does not parse or validate, a body that cannot be read) goes to
    FastAPI's own handler, so every refusal is FastAPI's, word for word. Parsing from bytes
    accepts no body that json.loads + validation refuses and gives the same values where both
    accept (tests/test_score_route.py); it refuses a few that they accept (a UTF-8 BOM, UTF-16),
    which then take the long lane. The OpenAPI document is built from the route as declared."""

    def get_route_handler(self):
        standard = super().get_route_handler()
        endpoint = self.endpoint

        async def handler(request: Request):
            caller = request.scope.get("state", {}).get("caller")
            current = request.app.state.holder.current
            if caller is not None and current is not None and request.headers.get("content-type") == "application/json":
                try:
                    body = ScoreRequest.model_validate_json(await request.body())
                except Exception:  # refused, or unreadable: FastAPI's handler answers as it always did
                    return await standard(request)
                return await endpoint(request=request, caller=caller, current=current, body=body)
            return await standard(request)

        return handler


router = APIRouter(tags=["scores"], route_class=ScoreRoute)
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
