"""Many citizens at once: small cohorts answered inline, larger ones as jobs."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from serving.deps import AppSettings, CurrentModel, Evaluator, Jobs, model_ref
from serving.routes.jobs import staging_dir, submit_job
from serving.errors import TooLarge
from serving.observability import record_scores
from serving.uploads import check_tables, count_json_lines, declared_format, save_uploads
from serving.work import MEDIA_TYPES, cohort_tables, render_scores, score_cohort

router = APIRouter(tags=["scores"])
TABLE_FILE = "a .csv or .parquet file"


@router.post("/v1/cohorts/score", status_code=200,
             responses={202: {"description": "a job was queued (larger cohorts); poll its status_url"},
                        413: {"description": "over a size limit"}, 429: {"description": "job queue full"}})
async def score_cohort_route(
    request: Request, caller: Evaluator, current: CurrentModel, settings: AppSettings, jobs: Jobs,
    persons: UploadFile | None = File(None, description=f"persons table ({TABLE_FILE})"),
    measurements: UploadFile | None = File(None, description=f"measurements table ({TABLE_FILE})"),
    activities: UploadFile | None = File(None, description=f"activities table ({TABLE_FILE})"),
    sep: str | None = Form(None, max_length=16, description="CSV separator when not ',' (e.g. ';' or tab)"),
    encoding: str | None = Form(None, max_length=16, description="CSV encoding when not UTF-8: cp1252 or latin-1"),
    date_format: str | None = Form(None, max_length=32, description="dates when not ISO 8601: dd-mm-yyyy, dd.mm.yyyy, ... "
                                   "(never guessed)"),
    explain: bool = Query(False, description="add contributions per indicator and group"),
    at: str = Query("latest", pattern="^(latest|every)$", description="latest: one row per person; every: per measurement"),
    format: str = Query("json", pattern="^(json|csv|parquet)$", description="answer format"),
    with_groups: bool = Query(False, description="add jobcenter, gender, age_band and origin to each row"),
):
    """Many citizens at once: JSON lines (one /v1/score body per line, content type
    application/x-ndjson) or the tables as CSV or Parquet files (multipart form). Up to
    BIP_INLINE_COHORT_CITIZENS citizens are answered at once; larger cohorts become a job (202)."""
    file_format = declared_format(sep, encoding, date_format)
    staged_dir = staging_dir(jobs)
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            uploads = {"persons": persons, "measurements": measurements, "activities": activities}
            staged = await run_in_threadpool(save_uploads, uploads, staged_dir)
            rows = await run_in_threadpool(check_tables, staged, ("persons", "measurements"), settings,
                                           "cohort_score", file_format)
            citizens = rows["persons"]
        else:
            raw = await request.body()
            citizens = count_json_lines(raw)
            if citizens > settings.max_cohort_citizens:
                raise TooLarge("body", f"{citizens} lines", f"at most {settings.max_cohort_citizens} citizens "
                               "per request (BIP_MAX_COHORT_CITIZENS)")
            staged = {"body": staged_dir / "body.jsonl"}
            staged["body"].write_bytes(raw)
        ref = model_ref(current)
        if citizens > settings.inline_cohort_citizens:
            params = {"at": at, "explain": explain, "format": format, "with_groups": with_groups,
                      "file_format": file_format,
                      "model": ref, "model_uri": current.pinned_uri}
            return await submit_job(jobs, caller, "cohort_score", params, staged)

        def inline():
            tables = cohort_tables(staged, current.model.schema, file_format=file_format)
            request.state.person_ids = tables["persons"]["person_id"].unique().tolist()
            frame = score_cohort(current.model, current.version, tables, at, explain, with_groups)
            record_scores(frame["probability"])
            return render_scores(frame, format, ref)

        return Response(await run_in_threadpool(inline), media_type=MEDIA_TYPES[format])
    finally:
        shutil.rmtree(staged_dir, ignore_errors=True)
