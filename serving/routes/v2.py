"""The Open Inference Protocol (KServe V2 REST) beside the domain API: health, the champion's
metadata and inference on feature rows (serving.inference has the protocol; a caseworker key
as for /v1/score)."""

from __future__ import annotations

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from serving import inference
from serving.deps import AppSettings, Caseworker, CurrentModel, Holder
from serving.holder import Loaded
from serving.observability import log, record_scores

router = APIRouter(tags=["open inference protocol (v2)"])
INLINE_ROWS = 16  # a few rows are scored on the event loop (sub-millisecond); more in a thread


@router.get("/v2/health/live")
async def live():
    """Liveness: the process answers."""
    return {"live": True}


@router.get("/v2/health/ready")
async def ready(holder: Holder):
    """Readiness: a model is loaded (503 before)."""
    return JSONResponse(status_code=200 if holder.current is not None else 503,
                        content={"ready": holder.current is not None})


def _served(name: str, current: Loaded) -> JSONResponse | None:
    if name != current.name:
        problem = {"field": "model_name", "value": name, "allowed": f"{current.name!r} (the model served)"}
        return JSONResponse(status_code=404, content=inference.InferenceError(404, [problem]).body())
    return None


@router.get("/v2/models/{name}")
async def model_metadata(name: str, caller: Caseworker, current: CurrentModel):
    """The champion's metadata: the input tensor (features in the model's order) and outputs."""
    return _served(name, current) or inference.metadata(current.name, current.version, current.model)


@router.get("/v2/models/{name}/ready")
async def model_ready(name: str, caller: Caseworker, current: CurrentModel):
    """The champion is loaded and answers inference."""
    return _served(name, current) or {"name": current.name, "ready": True}


@router.post("/v2/models/{name}/infer", responses={
    400: {"description": "a wrong shape, datatype, value or input/output name: {error, detail, errors}"}})
async def infer(name: str, request: Request, caller: Caseworker, current: CurrentModel, settings: AppSettings,
                body: dict = Body(openapi_examples={"rows": {"summary": "one row of features in the model's order",
                                                            "value": {"inputs": [{"name": "features", "shape": [1, 3],
                                                                                  "datatype": "FP64",
                                                                                  "data": [0.1, None, 2]}]}}})):
    """Probabilities per horizon (and their interval) for rows of features (see GET /v2/models/{name})."""
    refused = _served(name, current)
    if refused is not None:
        return refused
    try:
        X = inference.feature_rows(body, current.model, settings.max_cohort_citizens)
        outputs = inference.requested_outputs(body)
    except inference.InferenceError as error:
        return JSONResponse(status_code=error.status, content=error.body())
    results = (inference.infer(current.model, X, outputs) if len(X) <= INLINE_ROWS
               else await run_in_threadpool(inference.infer, current.model, X, outputs))
    default = current.model.horizons.index(current.model.horizon_months)
    probability = results["probability"][:, default] if "probability" in results else None
    if probability is not None:
        record_scores(probability)
        try:
            request.app.state.monitor.observe(current, X, probability)
        except Exception:  # monitoring never fails a score
            log.exception("monitoring window: observation skipped")
    return inference.response(current.name, current.version, body.get("id"), results)
