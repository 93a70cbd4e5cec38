"""Citizens read by person_id from the citizen source (features/sources.py), and scored.

A caseworker key bound to jobcentres reads only citizens enrolled there; any other person gets the
same 404 as an unknown one. Reads block on the database, so these routes run in the thread pool.
Nothing read is kept: the history is scored and dropped."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from features.sources import CitizenNotFound, CitizenSource, CitizenSourceUnavailable
from serving.citizen import score_citizen
from serving.deps import AppSettings, Caseworker, CurrentModel, model_ref
from serving.errors import InputProblems, problems_from_pydantic
from serving.observability import record_score, window_observer
from serving.schemas import ScoreRequest, ScoreResponse

log = logging.getLogger("bip.serving")
router = APIRouter(tags=["citizens"])
NOT_FOUND = "no citizen with this person_id that this key may read"
PersonId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$",
                               description="the pseudonymous person id")]


async def _source(request: Request) -> CitizenSource:
    return request.app.state.citizens


Citizens = Annotated[CitizenSource, Depends(_source)]


def install_citizen_handlers(app: FastAPI) -> None:
    """Unknown (or out-of-jobcentre) citizen -> 404, one answer for both; unreadable source -> 503."""

    @app.exception_handler(CitizenNotFound)
    async def not_found(request: Request, error: CitizenNotFound):
        return JSONResponse(status_code=404, content={"detail": NOT_FOUND})

    @app.exception_handler(CitizenSourceUnavailable)
    async def unavailable(request: Request, error: CitizenSourceUnavailable):
        log.warning("citizen source unavailable: %s", error)  # the URL with its password masked
        return JSONResponse(status_code=503, content={"detail": "the citizen source cannot be read now; "
                                                                "an operator can see why in the logs"})


@router.get("/v1/citizens")
def list_citizens(source: Citizens, caller: Caseworker, settings: AppSettings,
                  limit: int = Query(None, ge=1, description="at most this many (default and ceiling: "
                                                             "BIP_CITIZEN_LISTING)")):
    """Citizens this key may read, by person_id: jobcenter, number of measurement occasions, last one."""
    limit = min(limit or settings.citizen_listing, settings.citizen_listing)
    return {"citizens": source.listing(limit=limit, jobcenters=caller.jobcenters)}


@router.get("/v1/citizens/{person_id}")
def citizen_history(request: Request, person_id: PersonId, source: Citizens, caller: Caseworker):
    """One citizen's history in the POST /v1/score format."""
    request.state.person_ids = [person_id]
    return source.body(person_id, jobcenters=caller.jobcenters)


@router.get("/v1/citizens/{person_id}/score", response_model=ScoreResponse,
            responses={404: {"description": "unknown, or not in this key's jobcentres"},
                       422: {"description": "the stored history breaks the data contract (fields named)"}})
def score_stored_citizen(request: Request, person_id: PersonId, source: Citizens, caller: Caseworker,
                         current: CurrentModel,
                         as_of: date | None = Query(None, description="default: the last measurement")):
    """The stored citizen's score, interval and explanation: the same answer POST /v1/score gives
    for the same history."""
    request.state.person_ids = [person_id]
    result = score_from_source(source, current.model, person_id, caller.jobcenters, as_of,
                               observe=window_observer(request.app.state.monitor, current))
    record_score(result["probability"])
    return JSONResponse({**result, "model": model_ref(current)})


def score_from_source(source: CitizenSource, model, person_id: str, jobcenters=None,
                      as_of: date | None = None, today: date | None = None, observe=None) -> dict:
    """Read one citizen from `source` (CitizenNotFound outside `jobcenters`) and score the history
    as POST /v1/score would; a stored history that breaks the contract raises InputProblems."""
    body = source.body(person_id, jobcenters=jobcenters)
    body["as_of"] = as_of.isoformat() if as_of else None
    try:
        score_request = ScoreRequest.model_validate(body)
    except ValidationError as error:
        raise InputProblems(problems_from_pydantic(error.errors()))
    return jsonable_encoder(score_citizen(model, score_request, today or date.today(), observe=observe))
