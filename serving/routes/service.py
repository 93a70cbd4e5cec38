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
    """Readiness: a model is loaded and answering (the reason a load failed is in the logs)."""
    current = holder.current
    if current is None:
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": "no model loaded"})
    return {"status": "ready", "model": model_ref(current)}
