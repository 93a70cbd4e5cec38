"""The app factory: settings, lifespan, middleware and routers; nothing else lives here."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from bip.config import Settings, get_settings, use_settings
from features.sources import open_source
from monitoring.service import Monitor
from monitoring.window import flush_periodically
from serving.audit import AuditLog, load_salt
from serving.errors import install_error_handlers
from serving.holder import ModelHolder
from serving.jobs import JobStore
from serving.keys import KeyStore
from serving.middleware import AuditTrail, Authenticate, BodyLimit
from serving.observability import RequestObservability, configure_logging
from serving.routes import citizens, cohorts, evaluations, jobs, model, monitoring, pages, score, service, v2
from serving.security import install_security

log = logging.getLogger("bip.serving")
ROUTERS = (service, model, score, citizens, cohorts, evaluations, jobs, monitoring, pages, v2)  # the reading order
# matched first: FastAPI walks the included routers in turn (each a nested match), and POST
# /v1/score is most of the traffic; the OpenAPI document keeps the reading order (no two routes
# overlap, so the order changes no answer)
FIRST = (score,)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service: every dependency built from one Settings object (the environment by default)."""
    settings = settings or get_settings()
    use_settings(settings)  # code below the routes (model store, jobs) reads the same settings
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from models.store import configure_tracking
        configure_tracking()
        await run_in_threadpool(app.state.holder.load)
        if app.state.holder.current is not None:  # the drift reference, read before the first score
            await run_in_threadpool(app.state.monitor.profile, app.state.holder.current)
        tasks = [asyncio.create_task(_watch_champion(app)),
                 asyncio.create_task(flush_periodically(app.state.monitor.window))]  # idle workers' counts too
        yield
        for task in tasks:
            task.cancel()
        app.state.monitor.window.flush()  # this worker's last counts
        app.state.citizens.close()

    app = FastAPI(title="bip-score", version="0.2.0", lifespan=lifespan,
                  description="Explainable employment-likelihood scores from BIP progression measurements. "
                              "Send the API key in the X-API-Key header.")
    app.state.settings = settings
    app.state.holder = ModelHolder(settings.model_uri, settings.model_marker)
    app.state.jobs = JobStore(settings.jobs_dir, settings)
    app.state.citizens = open_source(settings.citizen_source)  # read-only, by person_id
    app.state.monitor = Monitor(settings)
    keys = KeyStore(settings.keys_file)
    audit = AuditLog(settings.audit_log, load_salt(settings.audit_salt_file), settings.audit_refused_interval_s)

    # outermost last: the key is checked from the headers first, then the audit wraps the call,
    # and the body limit sits next to the routes (so the audit and the metrics see its 413s)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditTrail, audit=audit, holder=app.state.holder)
    routes = [route for module in ROUTERS for route in module.router.routes]  # the routers as written, unprefixed
    app.add_middleware(Authenticate, routes=routes, keys=keys, require_keys=settings.require_keys)
    app.add_middleware(RequestObservability, routes=routes)  # outermost: sees every answer, 401s and 413s too
    install_error_handlers(app)
    citizens.install_citizen_handlers(app)
    for module in FIRST + tuple(module for module in ROUTERS if module not in FIRST):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "pages"), name="static")
    # outermost: header bound, failed-key limits, headers, docs (the OpenAPI document in reading order)
    install_security(app, settings, audit, documented=[module.router for module in ROUTERS])
    return app


MARKER_CHECK_S = 0.5


async def _watch_champion(app: FastAPI):
    """Follow the champion: the generation marker (a stat every half second) brings a reload or a
    local promotion to every worker within a second; the alias itself is asked every
    reload_interval_s (a promotion made on another machine)."""
    settings, holder = app.state.settings, app.state.holder
    since_alias = 0.0
    while True:
        await asyncio.sleep(MARKER_CHECK_S)
        since_alias += MARKER_CHECK_S
        try:
            if holder.announced():
                await run_in_threadpool(holder.reload_if_announced)
            if settings.reload_interval_s > 0 and since_alias >= settings.reload_interval_s:
                since_alias = 0.0
                await run_in_threadpool(holder.reload_if_changed)
                await run_in_threadpool(app.state.jobs.dispatch)  # and keep the job queue moving
        except Exception:  # a registry hiccup must not stop the watcher
            log.exception("champion check failed")
