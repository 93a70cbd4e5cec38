"""The FastAPI app: thin routes over features + models, with auth, audit and safe reloads."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import pandas as pd
from fastapi import Body, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from features.build import latest_occasions, measurement_occasions
from features.schema import load_schema
from features.validation import find_problems
from serving.audit import AuditLog, load_salt
from serving.citizen import InputProblems, request_tables, score_citizen
from serving.examples import example_body
from serving.holder import Loaded, ModelHolder
from serving.keys import Caller, KeyStore
from serving.schemas import ScoreRequest, ScoreResponse
from serving.settings import Settings

log = logging.getLogger("bip.serving")
MAX_LISTED_PROBLEMS = 1000


class BodyLimit:
    """ASGI middleware: 413 for bodies over the limit, whether or not Content-Length is sent."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _too_large(self.max_bytes)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


class AuditTrail:
    """ASGI middleware: one audit line per /v1/ request, after the response has started.
    Routes put the person ids they touched and the caller in scope["state"]."""

    def __init__(self, app, audit: AuditLog, holder: ModelHolder):
        self.app, self.audit, self.holder = app, audit, holder

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        status = {"code": 500}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            caller: Caller | None = state.get("caller")
            current = self.holder.current
            self.audit.write(key_id=caller.key_id if caller else None, role=caller.role if caller else None,
                             route=f"{scope['method']} {scope['path']}", person_ids=state.get("person_ids", []),
                             model_version=current.version if current else None, status=status["code"],
                             latency_ms=1e3 * (time.perf_counter() - start))


class _BodyTooLarge(Exception):
    pass


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse(status_code=413, content={"detail": f"request body over {max_bytes} bytes"})


def _errors_from_pydantic(errors, prefix: str = "") -> list[dict]:
    out = []
    for e in errors:
        location = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        field = prefix + ".".join(location) if location else (prefix.rstrip(".") or "body")
        value = e.get("input")
        try:
            value = jsonable_encoder(value)
            if len(json.dumps(value)) > 200:
                value = json.dumps(value)[:200] + "..."
        except Exception:
            value = str(value)[:200]
        out.append({"field": field, "value": value, "allowed": e.get("msg", "a valid value")})
    return out


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    holder = ModelHolder(settings.model_uri)
    keys = KeyStore(settings.keys_file)
    audit = AuditLog(settings.audit_log, load_salt(settings.audit_salt_file))
    schema_for_docs = load_schema()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from models.store import configure_tracking
        configure_tracking()
        await run_in_threadpool(holder.load)
        task = asyncio.create_task(_watch_champion()) if settings.reload_interval_s > 0 else None
        yield
        if task:
            task.cancel()

    async def _watch_champion():
        while True:
            await asyncio.sleep(settings.reload_interval_s)
            try:
                await run_in_threadpool(holder.reload_if_changed)
            except Exception:  # a registry hiccup must not stop the watcher
                log.exception("champion check failed")

    app = FastAPI(title="bip-score", version="0.1.0", lifespan=lifespan,
                  description="Explainable employment-likelihood scores from BIP progression measurements. "
                              "Send the API key in the X-API-Key header.")
    app.state.holder = holder
    app.add_middleware(AuditTrail, audit=audit, holder=holder)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    pages = Path(__file__).parent / "pages"
    app.mount("/static", StaticFiles(directory=pages), name="static")
    demo = DemoCohort(settings.demo_data)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": "invalid request",
                                                      "errors": _errors_from_pydantic(error.errors())})

    @app.exception_handler(InputProblems)
    async def invalid_input(request: Request, error: InputProblems):
        return JSONResponse(status_code=422, content={
            "detail": f"{len(error.problems)} problem(s) in the input",
            "errors": error.problems[:MAX_LISTED_PROBLEMS]})

    # dependencies are async (they never block): a sync one would cost a thread hop per request
    def require(*roles: str):
        async def dependency(request: Request) -> Caller:
            key = request.headers.get("x-api-key")
            caller = keys.lookup(key)
            if caller is None:
                if not settings.require_keys:
                    caller = Caller("anonymous", "admin")
                else:
                    raise HTTPException(401, detail="missing or unknown API key (send it in X-API-Key)")
            request.state.caller = caller
            if caller.role != "admin" and caller.role not in roles:
                raise HTTPException(403, detail=f"role {caller.role!r} may not use this route; allowed: {list(roles)}")
            return caller
        return dependency

    async def serving_model() -> Loaded:
        current = holder.current
        if current is None:
            raise HTTPException(503, detail=f"no model loaded: {holder.last_error}")
        return current

    def model_ref(current: Loaded) -> dict:
        return {"name": current.name, "version": current.version, "alias": current.alias}

    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/caseworker")

    @app.get("/caseworker", include_in_schema=False)
    def caseworker_page():
        return FileResponse(pages / "caseworker.html")

    @app.get("/evaluator", include_in_schema=False)
    def evaluator_page():
        return FileResponse(pages / "evaluator.html")

    @app.get("/v1/demo/citizens", tags=["demo"])
    def demo_citizens(caller: Caller = Depends(require("caseworker"))):
        """Synthetic citizens to try the caseworker page with (never real people)."""
        return {"citizens": demo.listing()}

    @app.get("/v1/demo/citizens/{person_id}", tags=["demo"])
    def demo_citizen(person_id: str, caller: Caller = Depends(require("caseworker"))):
        """One synthetic citizen's history, in the POST /v1/score format."""
        return demo.body(person_id)

    @app.get("/health", tags=["service"])
    def health():
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"])
    def ready():
        """Readiness: a model is loaded."""
        current = holder.current
        if current is None:
            return JSONResponse(status_code=503, content={"status": "not ready", "reason": holder.last_error})
        return {"status": "ready", "model": model_ref(current)}

    @app.get("/v1/model", tags=["model"])
    def model_info(current: Loaded = Depends(serving_model), caller: Caller = Depends(require("caseworker", "evaluator"))):
        """The model answering: name, version, alias, when trained, its test metrics and the indicator schema."""
        meta = current.model.metadata
        return {**model_ref(current), "kind": current.model.kind, "horizon_months": current.model.horizon_months,
                "trained_at": meta.get("trained_at"), "run_id": meta.get("run_id"),
                "metrics": meta.get("test_metrics", {}), "indicator_schema": current.model.schema.to_dict()}

    @app.post("/v1/score", response_model=ScoreResponse, tags=["scores"])
    async def score(request: Request,
              body: ScoreRequest = Body(openapi_examples={"citizen": {"summary": "A citizen with two measurements",
                                                                      "value": example_body(schema_for_docs)}}),
              caller: Caller = Depends(require("caseworker")), current: Loaded = Depends(serving_model)):
        """One citizen's probability of job or education within the horizon, its interval, and the
        explanation: base_value + sum(contributions) == log_odds."""
        request.state.person_ids = [body.person.person_id]
        # sub-millisecond and single-threaded by design: scored on the event loop, no thread hop;
        # the answer is built to the ScoreResponse schema and sent as it is
        result = score_citizen(current.model, body, date.today())
        result["as_of"] = result["as_of"].isoformat()
        change = result["change"]
        if change["previous_as_of"] is not None:
            change["previous_as_of"] = change["previous_as_of"].isoformat()
        return JSONResponse({**result, "model": model_ref(current)})

    @app.post("/v1/cohorts/score", tags=["scores"])
    async def score_cohort(
        request: Request,
        persons: UploadFile | None = File(None, description="persons table (.csv or .parquet)"),
        measurements: UploadFile | None = File(None, description="measurements table (.csv or .parquet)"),
        activities: UploadFile | None = File(None, description="activities table (.csv or .parquet)"),
        explain: bool = Query(False, description="add contributions per indicator and group"),
        at: str = Query("latest", pattern="^(latest|every)$", description="latest: one row per person; every: per measurement"),
        format: str = Query("json", pattern="^(json|csv|parquet)$", description="answer format"),
        with_groups: bool = Query(False, description="add jobcenter, gender, age_band and origin to each row"),
        caller: Caller = Depends(require("evaluator")),
        current: Loaded = Depends(serving_model),
    ):
        """Many citizens at once: JSON lines (one /v1/score body per line, content type
        application/x-ndjson) or the tables as CSV or Parquet files (multipart form)."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            tables = await _read_uploads(persons, measurements, activities)
        else:
            tables = _tables_from_json_lines(await request.body(), current.model.schema)
        frame = await run_in_threadpool(_score_tables, current, tables, explain, at, settings)
        request.state.person_ids = frame["person_id"].unique().tolist()
        if with_groups:
            frame = _with_groups(frame, tables["persons"])
        return _answer(frame, format, current, model_ref)

    @app.post("/v1/evaluations", tags=["evaluations"])
    async def evaluations(
        request: Request,
        cohort: UploadFile | None = File(None, description="generic mode: one row per unit (.csv or .parquet)"),
        treatment: str | None = Form(None, description="generic mode: the 0/1 treatment column"),
        outcome: str | None = Form(None, description="generic mode: the outcome column"),
        covariates: str | None = Form(None, description="generic mode: comma-separated covariates (default: all others)"),
        subgroups: str | None = Form(None, description="generic mode: comma-separated subgroup columns"),
        persons: UploadFile | None = File(None, description="BIP mode: persons table"),
        measurements: UploadFile | None = File(None, description="BIP mode: measurements table"),
        activities: UploadFile | None = File(None, description="BIP mode: activities table"),
        outcomes: UploadFile | None = File(None, description="BIP mode: outcomes (register) table"),
        kind: str | None = Form(None, description="BIP mode: the intervention kind"),
        horizon: int = Form(12, ge=1, le=60),
        estimand: str = Form("ATT", pattern="^(ATT|ATE)$"),
        seed: int = Form(0),
        format: str = Query("json", pattern="^(json|html)$", description="json: evaluation.json; html: the report"),
        caller: Caller = Depends(require("evaluator")),
    ):
        """The same estimate as `bip evaluate`: generic mode (a cohort file and column names) or BIP
        mode (the four tables and an intervention kind)."""
        from evaluation.estimate import EvaluationInputError, public_result
        from evaluation.report import render_report
        from evaluation.run import evaluate_generic, evaluate_intervention
        try:
            if kind is not None:
                tables = await _read_uploads(persons, measurements, activities, outcomes=outcomes)
                tables.setdefault("activities", pd.DataFrame(columns=["person_id", "kind", "start", "end"]))
                problems = find_problems(tables, schema_for_docs, pd.Timestamp(date.today()))
                if problems:
                    raise InputProblems(table_problems(problems))
                request.state.person_ids = tables["persons"]["person_id"].tolist()
                current = holder.current
                result = await run_in_threadpool(evaluate_intervention, tables, schema_for_docs, kind, horizon,
                                                 estimand, seed, current.model if current else None)
                title = f"Effect of starting {kind} on job or education within {horizon} months"
            else:
                if cohort is None or not treatment or not outcome:
                    raise EvaluationInputError("cohort", None, "a cohort file with treatment and outcome, "
                                               "or the four tables with kind")
                frame = _read_table(await cohort.read(), cohort.filename, "cohort")
                result = await run_in_threadpool(evaluate_generic, frame, treatment, outcome,
                                                 covariates.split(",") if covariates else None, estimand, seed,
                                                 subgroups.split(",") if subgroups else None)
                title = f"Effect of {treatment} on {outcome}"
        except EvaluationInputError as error:
            raise InputProblems([error.to_dict()])
        if format == "html":
            return Response(render_report(result, title), media_type="text/html")
        return JSONResponse(public_result(result))

    @app.post("/v1/admin/reload", tags=["admin"])
    def reload(caller: Caller = Depends(require("admin"))):
        """Load the champion now. A model that fails to load or fails the smoke check is refused
        and the current one keeps serving."""
        ok, message = holder.load()
        current = holder.current
        status = 200 if ok else 409
        return JSONResponse(status_code=status, content={"loaded": ok, "message": message,
                                                         "serving": model_ref(current) if current else None})

    return app


def _read_table(raw: bytes, filename: str | None, field: str) -> pd.DataFrame:
    try:
        if (filename or "").endswith(".parquet") or raw[:4] == b"PAR1":
            return pd.read_parquet(io.BytesIO(raw))
        return pd.read_csv(io.BytesIO(raw))
    except Exception as error:
        raise InputProblems([{"field": field, "value": filename,
                              "allowed": f"a readable CSV or Parquet file ({error.__class__.__name__})"}])


async def _read_uploads(persons, measurements, activities, outcomes=None) -> dict[str, pd.DataFrame]:
    tables, problems = {}, []
    uploads = [("persons", persons), ("measurements", measurements), ("activities", activities)]
    required = {"persons", "measurements"} | ({"outcomes"} if outcomes is not None else set())
    if outcomes is not None:
        uploads.append(("outcomes", outcomes))
    for name, upload in uploads:
        if upload is None:
            if name in required:
                problems.append({"field": name, "value": None, "allowed": "a .csv or .parquet file"})
            continue
        try:
            tables[name] = _read_table(await upload.read(), upload.filename, name)
        except InputProblems as error:
            problems += error.problems
    if problems:
        raise InputProblems(problems)
    for name in ("measurements", "activities"):
        for column in ("measured_at", "start", "end"):
            if name in tables and column in tables[name]:
                tables[name][column] = pd.to_datetime(tables[name][column], errors="coerce", format="mixed")
    if "persons" in tables and "enrolled_on" in tables["persons"]:
        tables["persons"]["enrolled_on"] = pd.to_datetime(tables["persons"]["enrolled_on"], errors="coerce", format="mixed")
    if "outcomes" in tables and "month" in tables["outcomes"]:
        tables["outcomes"]["month"] = pd.to_datetime(tables["outcomes"]["month"], errors="coerce", format="mixed")
    return tables


def _tables_from_json_lines(raw: bytes, schema) -> dict[str, pd.DataFrame]:
    parts = {"persons": [], "measurements": [], "activities": []}
    problems = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines()):
        if not line.strip():
            continue
        try:
            request = ScoreRequest.model_validate_json(line)
        except PydanticValidationError as error:
            problems += _errors_from_pydantic(error.errors(), prefix=f"line[{number}].")
            continue
        for name, table in request_tables(request, schema).items():
            parts[name].append(table)
    if problems:
        raise InputProblems(problems)
    if not parts["persons"]:
        raise InputProblems([{"field": "body", "value": None, "allowed": "at least one citizen (one JSON object per line)"}])
    return {name: pd.concat(frames, ignore_index=True) if frames else None for name, frames in parts.items()}


def _score_tables(current: Loaded, tables: dict, explain: bool, at: str, settings: Settings) -> pd.DataFrame:
    model = current.model
    if tables.get("activities") is None:
        tables.pop("activities", None)
    problems = find_problems(tables, model.schema, pd.Timestamp(date.today()))
    if problems:
        raise InputProblems(table_problems(problems))
    n = tables["persons"]["person_id"].nunique()
    if n > settings.max_cohort_citizens:
        raise HTTPException(413, detail=f"{n} citizens; at most {settings.max_cohort_citizens} per request")
    measured = tables["measurements"]
    requests = latest_occasions(measured) if at == "latest" else measurement_occasions(measured)
    frame = model.score_frame(requests, tables, explain=explain)
    frame.insert(3, "model_version", current.version)
    return frame


def table_problems(problems) -> list[dict]:
    """Table validation problems as API errors: field = table[row].column."""
    return [{"field": f"{p.table}[{p.row}].{p.column}" if p.row is not None else f"{p.table}.{p.column}",
             "value": p.to_dict()["value"], "allowed": p.allowed} for p in problems]


def _with_groups(frame: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    from features.build import age_band
    people = persons.drop_duplicates("person_id").set_index("person_id")
    out = frame.copy()
    for column in ("jobcenter", "gender", "origin"):
        out[column] = out["person_id"].map(people[column])
    age = pd.to_datetime(out["as_of"]).dt.year - pd.to_numeric(out["person_id"].map(people["birth_year"]))
    out["age_band"] = age_band(age)
    return out


class DemoCohort:
    """The synthetic cohort behind the caseworker page's chooser; read once, on first use."""

    def __init__(self, folder):
        self.folder = Path(folder) if folder else None
        self._tables = None

    def _load(self) -> dict:
        if self._tables is None:
            if self.folder is None or not (self.folder / "persons.parquet").exists():
                raise HTTPException(404, detail=f"no demo cohort at {self.folder} (run bip simulate)")
            self._tables = {name: pd.read_parquet(self.folder / f"{name}.parquet")
                            for name in ("persons", "measurements", "activities")}
        return self._tables

    def listing(self, limit: int = 200) -> list[dict]:
        tables = self._load()
        counts = tables["measurements"].groupby("person_id")["measured_at"].nunique()
        persons = tables["persons"].head(limit)
        return [{"person_id": p, "jobcenter": j, "measurements": int(counts.get(p, 0))}
                for p, j in zip(persons["person_id"], persons["jobcenter"])]

    def body(self, person_id: str) -> dict:
        tables = self._load()
        person = tables["persons"][tables["persons"]["person_id"] == person_id]
        if person.empty:
            raise HTTPException(404, detail=f"no demo citizen {person_id!r}")
        return citizen_body(tables, person_id)


def citizen_body(tables: dict, person_id: str) -> dict:
    """One citizen's tables as a POST /v1/score body."""
    p = tables["persons"].set_index("person_id").loc[person_id]
    m = tables["measurements"][tables["measurements"]["person_id"] == person_id].sort_values(["measured_at", "respondent"])
    a = tables["activities"][tables["activities"]["person_id"] == person_id]
    keys = [c for c in m.columns if c not in ("person_id", "measured_at", "respondent", "caseworker_id")]
    day = lambda d: None if pd.isna(d) else str(pd.Timestamp(d).date())  # noqa: E731
    return {
        "person": {"person_id": person_id, "jobcenter": p["jobcenter"], "birth_year": int(p["birth_year"]),
                   "gender": p["gender"], "origin": p["origin"], "benefit_group": p["benefit_group"],
                   "enrolled_on": day(p["enrolled_on"])},
        "measurements": [{"measured_at": day(r["measured_at"]), "respondent": r["respondent"],
                          "caseworker_id": None if pd.isna(r["caseworker_id"]) else r["caseworker_id"],
                          "values": {k: None if pd.isna(r[k]) else int(r[k]) for k in keys}}
                         for _, r in m.iterrows()],
        "activities": [{"kind": r["kind"], "start": day(r["start"]), "end": day(r["end"])} for _, r in a.iterrows()],
        "as_of": None,
    }


def _answer(frame: pd.DataFrame, format: str, current: Loaded, model_ref) -> Response:
    if format == "csv":
        return Response(frame.to_csv(index=False), media_type="text/csv")
    if format == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return Response(buffer.getvalue(), media_type="application/vnd.apache.parquet")
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    return JSONResponse({"model": model_ref(current), "count": len(records), "scores": records})
