"""Shared dependencies of the routes, as Annotated aliases (the FastAPI template's deps module).

Authentication and the role check run in serving.middleware.Authenticate before the body is read;
`require` marks a route with its roles and hands the checked caller to it."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response

from bip.config import Settings
from serving.holder import Loaded, ModelHolder
from serving.jobs import JobStore
from serving.keys import Caller


def require(*roles: str):
    """A dependency for a route open to `roles` (admin may use every route)."""

    async def caller(request: Request) -> Caller:
        found = request.scope.get("state", {}).get("caller")
        if found is None:  # the middleware answers 401 first; this guards a route mounted without it
            raise HTTPException(401, detail="missing or unknown API key (send it in X-API-Key)")
        return found

    caller.roles = roles
    return caller


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def _jobs(request: Request) -> JobStore:
    return request.app.state.jobs


async def _serving_model(request: Request) -> Loaded:
    holder: ModelHolder = request.app.state.holder
    current = holder.current
    if current is None:
        raise HTTPException(503, detail=f"no model loaded: {holder.last_error}")
    return current


Caseworker = Annotated[Caller, Depends(require("caseworker"))]
Evaluator = Annotated[Caller, Depends(require("evaluator"))]
Admin = Annotated[Caller, Depends(require("admin"))]
Reader = Annotated[Caller, Depends(require("caseworker", "evaluator"))]
AnyRole = Annotated[Caller, Depends(require("caseworker", "evaluator", "admin"))]
CurrentModel = Annotated[Loaded, Depends(_serving_model)]
AppSettings = Annotated[Settings, Depends(_settings)]
Holder = Annotated[ModelHolder, Depends(_holder)]
Jobs = Annotated[JobStore, Depends(_jobs)]


def model_ref(current: Loaded) -> dict:
    """name, version and alias of the model answering."""
    return {"name": current.name, "version": current.version, "alias": current.alias}


class JSONAnswer(Response):
    """A JSON answer encoded with orjson (several times faster than json for the score's nested
    answer; the hot routes use it). A non-finite float would be written as null (scores are finite)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
