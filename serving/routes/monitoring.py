"""Operations: Prometheus metrics for the scraper, drift and label-free estimates for people."""

from __future__ import annotations

from fastapi import APIRouter, Request

from serving.deps import CurrentModel, Evaluator
from serving.observability import metrics_response, publish_jobs, publish_monitoring

router = APIRouter()


@router.get("/metrics", tags=["service"], include_in_schema=False)
async def metrics(request: Request):
    """Prometheus text exposition, every worker's counts added up (no key: expose it to the
    scraper only; it holds no personal data)."""
    state = request.app.state

    def refresh():
        publish_jobs(state.jobs.counts())
        current = state.holder.current
        if current is not None:  # drift and estimates recomputed at most every 30 s per worker
            publish_monitoring(state.monitor.report(current, max_age_s=30))

    return metrics_response(before=refresh)


@router.get("/v1/monitoring", tags=["model"])
async def monitoring(request: Request, caller: Evaluator, current: CurrentModel):
    """Drift of what the service scored in the last BIP_MONITORING_WINDOW_DAYS days against the
    served model's training profile: PSI and a chi-square p-value per indicator, respondent and
    aspect (rating, change) and for the score; watch from PSI 0.1, act from 0.25, each only when
    p < 0.01. With the label-free estimate of performance from the calibrated scores. Roles
    evaluator and admin."""
    return request.app.state.monitor.report(current)
