"""Intervention evaluations: always a job."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from serving.deps import AppSettings, Evaluator, Holder, Jobs, Reader
from serving.errors import InputProblems
from serving.routes.jobs import staging_dir, submit_job
from serving.uploads import check_cohort_columns, check_tables, declared_format, save_uploads

router = APIRouter(tags=["evaluations"])


@router.post("/v1/evaluations", status_code=202,
             responses={202: {"description": "the evaluation was queued; poll its status_url"},
                        413: {"description": "over a size limit"}, 429: {"description": "job queue full"}})
async def evaluations(
    caller: Evaluator, settings: AppSettings, jobs: Jobs, holder: Holder,
    cohort: UploadFile | None = File(None, description="generic mode: one row per unit (.csv or .parquet)"),
    treatment: str | None = Form(None, max_length=200, description="generic mode: the 0/1 treatment column"),
    outcome: str | None = Form(None, max_length=200, description="generic mode: the outcome column"),
    covariates: str | None = Form(None, max_length=10_000, description="generic mode: comma-separated covariates"),
    subgroups: str | None = Form(None, max_length=2_000, description="generic mode: comma-separated subgroup columns"),
    persons: UploadFile | None = File(None, description="BIP mode: persons table"),
    measurements: UploadFile | None = File(None, description="BIP mode: measurements table"),
    activities: UploadFile | None = File(None, description="BIP mode: activities table"),
    outcomes: UploadFile | None = File(None, description="BIP mode: outcomes (register) table"),
    kind: str | None = Form(None, max_length=64, description="BIP mode: 'all' or one intervention kind"),
    design: str = Form("observational", pattern="^(observational|randomized)$",
                       description="generic mode: observational (AIPW) or randomized"),
    language: str = Form("da", pattern="^(da|en)$", description="the report's first language (it has a switch)"),
    sep: str | None = Form(None, max_length=16, description="CSV separator when not ',' (e.g. ';' or tab)"),
    encoding: str | None = Form(None, max_length=16, description="CSV encoding when not UTF-8: cp1252 or latin-1"),
    date_format: str | None = Form(None, max_length=32, description="dates when not ISO 8601: dd-mm-yyyy, dd.mm.yyyy, ... "
                                   "(never guessed)"),
    horizon: int = Form(12, ge=1, le=60),
    estimand: str = Form("ATT", pattern="^(ATT|ATE)$"),
    seed: int = Form(0, ge=0, le=2**32 - 1),
    with_score: bool = Form(False, description="BIP mode: add the served model's score as a covariate"),
    policy: bool = Form(False, description="BIP mode: also learn which intervention for whom (a depth-2 rule "
                        "with its value beside current practice)"),
    capacity: str | None = Form(None, max_length=2_000, description="with policy: places per kind, e.g. "
                                "mentor=300,loentilskud=0.05 (decision points, or a share below 1)"),
    format: str = Query("json", pattern="^(json|html)$", description="the result's default format"),
):
    """The same estimate as `bip evaluate`, as a job: generic mode (a cohort file and column names)
    or BIP mode (the four tables and an intervention kind). Answers 202 with the job's status URL;
    the result is evaluation.json (or ?format=html, the report)."""
    targeting = _targeting(policy, capacity, kind)   # refused before any upload is read
    staged_dir = staging_dir(jobs)
    try:
        if kind is not None:
            uploads = {"persons": persons, "measurements": measurements, "activities": activities, "outcomes": outcomes}
            file_format = declared_format(sep, encoding, date_format)
            staged = await run_in_threadpool(save_uploads, uploads, staged_dir)
            await run_in_threadpool(check_tables, staged, ("persons", "measurements", "outcomes"), settings,
                                    "evaluation", file_format)
            current = holder.current
            params = {"mode": "bip", "file_format": file_format,
                      "kind": kind, "horizon": horizon, "estimand": estimand, "seed": seed,
                      "model_uri": current.pinned_uri if (with_score and current) else None, "policy": targeting}
        else:
            if cohort is None or not treatment or not outcome:
                raise InputProblems([{"field": "cohort", "value": None, "allowed": "generic mode: a cohort file with "
                                      "treatment and outcome; BIP mode: the four tables with kind"}])
            file_format = declared_format(sep, encoding, date_format)  # the job reads the cohort in it too
            staged = await run_in_threadpool(save_uploads, {"cohort": cohort}, staged_dir)
            await run_in_threadpool(check_tables, staged, ("cohort",), settings, "evaluation", file_format)
            named = {"treatment": [treatment], "outcome": [outcome],
                     "covariates": [c.strip() for c in covariates.split(",")] if covariates else [],
                     "subgroups": [c.strip() for c in subgroups.split(",")] if subgroups else []}
            await run_in_threadpool(check_cohort_columns, staged["cohort"], named, file_format)
            params = {"mode": "generic", "treatment": treatment, "outcome": outcome, "estimand": estimand, "seed": seed,
                      "design": design, "file_format": file_format, "covariates": named["covariates"] or None,
                      "subgroups": named["subgroups"] or None}
        return await submit_job(jobs, caller, "evaluation", {**params, "format": format, "language": language}, staged)
    finally:
        shutil.rmtree(staged_dir, ignore_errors=True)


def _targeting(policy: bool, capacity: str | None, kind: str | None) -> dict | None:
    """The policy option of a BIP-mode evaluation, or a 422 naming the field."""
    from evaluation.estimate import EvaluationInputError
    from evaluation.policy import check_policy_parameters, parse_capacity
    if not policy:
        if capacity:
            raise InputProblems([{"field": "capacity", "value": capacity, "allowed": "only with policy=true"}])
        return None
    if kind is None:
        raise InputProblems([{"field": "policy", "value": True, "allowed": "BIP mode only (the four tables and kind)"}])
    try:
        places = parse_capacity(capacity)
        check_policy_parameters([], places, 2)
    except EvaluationInputError as error:
        raise InputProblems([error.to_dict()])
    return {"capacity": places, "depth": 2}


@router.get("/v1/evaluations/published", responses={404: {"description": "no evaluation is published"}})
async def published(caller: Reader):
    """The published evaluation's effects by readiness band (and jobcentre), in percentage points
    with 95% intervals: what starting each kind did for similar citizens on average. Not a
    prediction for one citizen, and never derived from the score's explanation."""
    from evaluation.tracking import published_effects
    effects = await run_in_threadpool(published_effects)
    if effects is None:
        raise HTTPException(404, detail="no evaluation is published yet (bip evaluate-publish RUN_ID)")
    return effects
