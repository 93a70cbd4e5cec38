"""Jobs: the state, the result and cancelling of heavy work (cohorts, evaluations)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from serving.deps import AnyRole, Jobs
from serving.jobs import JobStore, QueueFull, public_job
from serving.keys import Caller

router = APIRouter(tags=["jobs"])
RETRY_AFTER_S = 30


def staging_dir(jobs: JobStore) -> Path:
    """A private folder for one request's uploads before they become a job's inputs (or are scored inline)."""
    folder = jobs.folder / "staging" / secrets.token_hex(8)
    folder.mkdir(parents=True, mode=0o700)
    return folder


async def submit_job(jobs: JobStore, caller: Caller, kind: str, params: dict, staged: dict[str, Path]) -> JSONResponse:
    """Queue a job with the staged input files; 202 with its status URL, or 429 when the queue is full."""
    try:
        job_id = await run_in_threadpool(jobs.create, caller.key_id, kind,
                                         {**params, "inputs": {name: path.name for name, path in staged.items()}})
    except QueueFull as error:
        raise HTTPException(429, detail=f"too many jobs waiting: {error}; try again later",
                            headers={"Retry-After": str(RETRY_AFTER_S)})
    inputs = jobs.job_dir(job_id) / "input"
    inputs.mkdir()
    for path in staged.values():
        path.rename(inputs / path.name)
    await run_in_threadpool(jobs.dispatch)
    job = public_job(await run_in_threadpool(jobs.get, job_id))
    return JSONResponse(status_code=202, content=job, headers={"Location": job["status_url"]})


def _own_job(jobs: JobStore, job_id: str, caller: Caller) -> dict:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, detail=f"no job {job_id!r} (finished jobs are deleted after their retention period)")
    if job["owner"] != caller.key_id and caller.role != "admin":
        raise HTTPException(403, detail="this job belongs to another API key")
    return job


@router.get("/v1/jobs/{job_id}")
async def job_status(job_id: str, caller: AnyRole, jobs: Jobs):
    """State (queued, running, done, failed, cancelled), progress 0..1, a message, timings, the
    problems when failed, and the result URL when done."""
    await run_in_threadpool(jobs.dispatch)  # a poll also reaps dead jobs and starts waiting ones
    return public_job(await run_in_threadpool(_own_job, jobs, job_id, caller))


@router.get("/v1/jobs/{job_id}/result", responses={409: {"description": "the job is not done"}})
async def job_result(job_id: str, caller: AnyRole, jobs: Jobs,
                     format: str | None = Query(None, pattern="^(json|html)$",
                                                description="evaluations: json (evaluation.json) or html (the report)")):
    """The job's result, in the format asked for when it was submitted."""
    job = await run_in_threadpool(_own_job, jobs, job_id, caller)
    if job["state"] != "done":
        raise HTTPException(409, detail=f"job is {job['state']}; the result exists once it is done")
    folder = jobs.job_dir(job_id)
    if job["kind"] == "evaluation" and format == "html":
        return FileResponse(folder / "report.html", media_type="text/html; charset=utf-8")
    name = job["result_file"]
    return FileResponse(folder / name, media_type=job["media_type"], filename=name)


@router.delete("/v1/jobs/{job_id}")
async def cancel_job(job_id: str, caller: AnyRole, jobs: Jobs):
    """Cancel a waiting or running job; a finished job's result is deleted."""
    job = await run_in_threadpool(_own_job, jobs, job_id, caller)
    if job["state"] in ("done", "failed"):
        await run_in_threadpool(shutil.rmtree, jobs.job_dir(job_id), True)
        return {"job_id": job_id, "state": job["state"], "message": "result deleted"}
    state = await run_in_threadpool(jobs.cancel, job_id)
    return {"job_id": job_id, "state": state}
