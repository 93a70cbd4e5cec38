"""The model answering, and the admin's reload."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from serving.deps import Admin, CurrentModel, Holder, Reader, model_ref

router = APIRouter(tags=["model"])


@router.get("/v1/model")
async def model_info(caller: Reader, current: CurrentModel):
    """The model answering: name, version, alias, when trained, the training examples' rate of job
    or education within the default horizon (base_rate), its test metrics and the indicator schema."""
    meta = current.model.metadata
    return {**model_ref(current), "kind": current.model.kind, "horizon_months": current.model.horizon_months,
            "trained_at": meta.get("trained_at"), "run_id": meta.get("run_id"), "base_rate": meta.get("base_rate"),
            "metrics": meta.get("test_metrics", {}), "indicator_schema": current.model.schema.to_dict()}


@router.post("/v1/admin/reload", tags=["admin"], responses={409: {"description": "the champion was refused"}})
async def reload(caller: Admin, holder: Holder):
    """Load the champion now, in every worker. A model that fails to load or fails the smoke check
    is refused and the current one keeps serving."""
    ok, message = await run_in_threadpool(holder.load)
    if ok:
        await run_in_threadpool(holder.announce)  # every other worker follows within a second
    current = holder.current
    return JSONResponse(status_code=200 if ok else 409, content={
        "loaded": ok, "message": message, "serving": model_ref(current) if current else None})
