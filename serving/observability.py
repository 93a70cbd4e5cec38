"""What the operations team sees: Prometheus metrics, JSON logs with a request id, an access log.

Metrics work with several workers: when PROMETHEUS_MULTIPROC_DIR is set (from the shell that
starts the service, before the workers fork; the folder emptied before each start) every
worker writes its samples to files there and `GET /metrics`, whichever worker answers it,
adds them up (prometheus-client's multiprocess mode). Without it, one process, the default
registry.

Logs and metrics carry no indicator values and no raw ids: requests are counted and logged by
route template (`/v1/citizens/{person_id}/score`, never the path with the id in it), input
problems by kind (the field's name, never its value).

Wiring (serving/main.py): `configure_logging()` once, `app.add_middleware(RequestObservability,
routes=...)` last (outermost, so it sees 401s, 413s and errors too); serving/routes/monitoring.py
answers `GET /metrics` with `metrics_response()` and publishes the job store's counts
(`publish_jobs`); the model holder calls `record_model_swap`, the score routes `record_score`
(and pass `window_observer` to score_citizen), serving.errors `record_input_problems`;
`record_job_state` is there for a job runner that counts transitions.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.responses import Response
from starlette.routing import Match

from bip.config import get_settings

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.encode()
# A client's id is kept only when it looks like an id (UUIDs, trace ids); anything else could
# smuggle text into the logs, so it is replaced by a fresh one.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("bip_request_id", default=None)

access_log = logging.getLogger("bip.access")
log = logging.getLogger("bip.serving")

# --- the series (names follow Prometheus conventions: unit suffix, _total for counters)
REQUESTS = Counter("bip_http_requests_total", "HTTP requests by route template, method and status",
                   ["method", "route", "status"])
LATENCY = Histogram("bip_http_request_duration_seconds", "Time to answer, by route template",
                    ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
JOBS = Counter("bip_jobs_total", "Jobs entering each state (queued, running, done, failed, cancelled, expired)",
               ["state"])
JOBS_NOW = Gauge("bip_jobs_in_state", "Jobs now in each state (from the job store, refreshed on each scrape)", ["state"],
                 multiprocess_mode="mostrecent")
# Info metrics do not work in multiprocess mode: a gauge per version, 1 while some live worker
# serves it, 0 once swapped out
MODEL = Gauge("bip_model_info", "Model version being served (1) or swapped out (0)",
              ["name", "version", "alias"], multiprocess_mode="livemax")
MODEL_SWAPS = Counter("bip_model_swaps_total", "Model swaps (a new version taken into service)", ["version"])
SCORES = Counter("bip_scores_total", "Scores answered, by readiness band", ["band"])
INPUT_PROBLEMS = Counter("bip_input_problems_total", "Problems found in rejected input, by kind", ["kind"])
RATE_LIMITED = Counter("bip_rate_limited_total", "Calls answered 429 (queue full or rate limit), by route",
                       ["route"])
DRIFT_PSI = Gauge("bip_drift_psi", "Population stability index of the scored window against the model's "
                  "training profile, per indicator, respondent and aspect (rating, change) and for the score",
                  ["feature"], multiprocess_mode="mostrecent")
DRIFT_P_VALUE = Gauge("bip_drift_p_value", "Chi-square test p-value of the scored window against the training "
                      "profile", ["feature"], multiprocess_mode="mostrecent")
ESTIMATED = Gauge("bip_estimated_performance", "Label-free estimate for the scored window (expected ROC AUC, "
                  "expected positive rate) from the calibrated scores", ["metric"], multiprocess_mode="mostrecent")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics_response(before: Callable[[], None] | None = None) -> Response:
    """`GET /metrics`: Prometheus text exposition, summed over every worker in multiprocess mode.
    `before` runs first (e.g. refreshing the drift gauges)."""
    if before is not None:
        try:
            before()
        except Exception:  # a failing refresh must not take the scrape down
            log.exception("metrics refresh failed")
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# --- calls from the rest of the service

def score_band(probability: float, edges: tuple[float, float] | None = None) -> str:
    """low / middle / high, the caseworker page's words (edges from Settings.score_bands)."""
    low, high = edges or get_settings().score_bands
    return "low" if probability < low else "middle" if probability < high else "high"


_BANDS: dict = {}  # band -> its series, looked up once


def record_score(probability: float) -> None:
    """One answered score (the score and citizen routes call it)."""
    band = score_band(probability)
    series = _BANDS.get(band)
    if series is None:
        series = _BANDS[band] = SCORES.labels(band=band)
    series.inc()


def record_scores(probabilities: Iterable[float]) -> None:
    """Scores of a cohort, counted by band."""
    bands: dict[str, int] = {}
    edges = get_settings().score_bands
    for p in probabilities:
        band = score_band(float(p), edges)
        bands[band] = bands.get(band, 0) + 1
    for band, n in bands.items():
        SCORES.labels(band=band).inc(n)


def record_job_state(state: str) -> None:
    """A job entered `state` (the job runner calls it on every transition)."""
    JOBS.labels(state=state).inc()


def publish_jobs(counts: dict[str, int]) -> None:
    """Jobs now in each state, e.g. {"queued": 2, "running": 1} from the job store (call it in
    the /metrics `before` hook); pass every state, zeros included, so an emptied state reads 0."""
    for state, n in counts.items():
        JOBS_NOW.labels(state=state).set(n)


def record_rate_limited(route: str) -> None:
    """A call refused for rate (the middleware counts every 429 by itself; this is for refusals
    answered some other way)."""
    RATE_LIMITED.labels(route=route).inc()


def problem_kind(field: str, known: set[str] | None = None) -> str:
    """The kind of an input problem from its field path: `measurements[3].values.job_search` ->
    `indicator_rating`, `person.birth_year` -> `birth_year`. Names outside the contract become
    `other`, so a client cannot invent label values."""
    from features.contract import (ACTIVITY_COLUMNS, MEASUREMENT_BASE_COLUMNS, OUTCOME_COLUMNS,
                                   PERSON_COLUMNS)
    from features.schema import load_schema
    # the last named part: measurements[3].values.job_search and measurements.3.values.job_search alike
    parts = [p for p in re.sub(r"\[\d+\]", "", str(field)).split(".") if p and not p.isdigit()]
    last = parts[-1] if parts else "body"
    if known is None:
        known = set(PERSON_COLUMNS) | set(MEASUREMENT_BASE_COLUMNS) | set(ACTIVITY_COLUMNS) | set(OUTCOME_COLUMNS)
        known |= {"as_of", "measurements", "activities", "person", "body", "values"}
    if last in known:
        return last
    if last in load_schema():
        return "indicator_rating"
    return "other"


def record_input_problems(problems: list[dict]) -> None:
    """Count the problems of one rejected input by kind (the 422 handlers call it)."""
    for problem in problems:
        INPUT_PROBLEMS.labels(kind=problem_kind(problem.get("field", ""))).inc()


def record_model_swap(previous, current) -> None:
    """A new model was taken into service (the model holder calls it after its swap): one log
    line and the model-info gauge. `previous` and `current` are serving.holder.Loaded (or None)."""
    if previous is not None:
        MODEL.labels(name=previous.name, version=str(previous.version), alias=str(previous.alias)).set(0)
    MODEL.labels(name=current.name, version=str(current.version), alias=str(current.alias)).set(1)
    MODEL_SWAPS.labels(version=str(current.version)).inc()
    log.info("model swapped", extra={"fields": {
        "event": "model_swap", "model_name": current.name, "alias": current.alias,
        "from_version": previous.version if previous is not None else None, "to_version": current.version}})


def window_observer(monitor, current):
    """The `observe` callback of serving.citizen.score_citizen: counts the scored feature row (a
    list of floats) into the monitoring window (aggregates only). Monitoring never fails a score:
    a problem here is logged and the answer goes out."""
    def observe(row: list[float], probability: float) -> None:
        try:
            monitor.observe_row(current, row, probability)
        except Exception:
            log.exception("monitoring window: observation skipped")
    return observe


def publish_monitoring(report: dict) -> None:
    """Drift and label-free estimates of a monitoring report as gauges (on each scrape)."""
    if not report.get("available"):
        return
    for name, aspect in report["aspects"].items():
        DRIFT_PSI.labels(feature=name).set(aspect["psi"])
        DRIFT_P_VALUE.labels(feature=name).set(aspect["p_value"])
    for metric in ("roc_auc", "positive_rate", "brier"):
        value = report["estimated_performance"].get(metric)
        if value is not None:
            ESTIMATED.labels(metric=metric).set(value)
    ESTIMATED.labels(metric="n").set(report["estimated_performance"].get("n", 0))


# --- request ids, the access log and request metrics

def request_id() -> str | None:
    """The id of the request being handled (None outside one)."""
    return _request_id.get()


def _route_template(scope, routes) -> str:
    """The matched route's template; for answers given before routing (401, 403, 413) the route
    the path would have matched; `unmatched` otherwise (never the raw path: it may hold an id)."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] == Match.FULL), None)
    return getattr(route, "path", None) or "unmatched"


class RequestObservability:
    """ASGI middleware: request id (kept from X-Request-ID when well formed, else new; sent back
    in X-Request-ID), request count and latency by route template and status, 429s counted as
    rate-limited, and one access log line per request."""

    def __init__(self, app, routes: list | None = None):
        self.app, self.routes = app, routes or []
        # the series of each (method, route, status) once looked up: labels() joins and checks
        # the label values and takes a lock on every call (bounded: methods, templates, codes)
        self._series: dict[tuple[str, str, int], tuple] = {}

    def _series_of(self, method: str, route: str, code: int) -> tuple:
        key = (method, route, code)
        series = self._series.get(key)
        if series is None:
            series = (REQUESTS.labels(method=method, route=route, status=str(code)),
                      LATENCY.labels(method=method, route=route),
                      RATE_LIMITED.labels(route=route) if code == 429 else None)
            if len(self._series) < 4096:
                self._series[key] = series
        return series

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        sent = dict(scope.get("headers") or []).get(_REQUEST_ID_NAME, b"").decode("latin-1")
        rid = sent if _WELL_FORMED_ID.fullmatch(sent) else uuid.uuid4().hex
        token = _request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = {"code": 500}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _REQUEST_ID_NAME]
                message = {**message, "headers": headers + [(_REQUEST_ID_NAME, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - start
            route, method, code = _route_template(scope, self.routes), scope["method"], status["code"]
            requests, latency, rate_limited = self._series_of(method, route, code)
            requests.inc()
            latency.observe(elapsed)
            if rate_limited is not None:
                rate_limited.inc()
            if access_log.isEnabledFor(logging.INFO):
                # the record made and handled directly (Logger.makeRecord, Logger.handle: the
                # same filters and handlers): info() would also walk the stack for the caller's
                # file and line, which the JSON line does not carry
                access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, "request", (),
                                                        None, extra={"fields": {
                    "event": "access", "method": method, "route": route, "status": code,
                    "duration_ms": round(1e3 * elapsed, 3)}}))
            _request_id.reset(token)


# --- JSON logs

class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and the record's
    `fields` (passed as extra={"fields": {...}})."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        rid = _request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:  # orjson: a few microseconds a line less, on every request's access line
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # what orjson does not take (integers over 64 bits, keys that are not text)
            return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream=None) -> None:
    """JSON lines on stderr for the service's loggers and uvicorn's; uvicorn's own access log is
    off (RequestObservability writes one with the route template and the request id)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.set_name("bip-json")
    for name in ("bip", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if h.get_name() != "bip-json"] + [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True
