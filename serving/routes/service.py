"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.deps import Holder, model_ref

router = APIRouter(tags=["service"])


@router.get("/health")
async def health():
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "no model loaded"}})
async def ready(holder: Holder):
    """Readiness: a model is loaded and answering. "degraded" (still 200): the champion could not be
    loaded and the last version that passed the smoke check is served. Why a load failed is in
    the logs, not here (anyone may ask /ready)."""
    current = holder.current
    if current is None:
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": "no model loaded"})
    if holder.degraded:
        return {"status": "degraded", "reason": "the champion could not be loaded; serving the last good version",
                "model": model_ref(current)}
    return {"status": "ready", "model": model_ref(current)}
