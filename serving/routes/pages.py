"""The caseworker and evaluator pages, and the demo citizens they can pick from."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse

from serving.deps import Caseworker

router = APIRouter()
PAGES = Path(__file__).resolve().parent.parent / "pages"


@router.get("/", include_in_schema=False)
async def home():
    return RedirectResponse("/caseworker")


@router.get("/caseworker", include_in_schema=False)
async def caseworker_page():
    return FileResponse(PAGES / "caseworker.html")


@router.get("/evaluator", include_in_schema=False)
async def evaluator_page():
    return FileResponse(PAGES / "evaluator.html")


@router.get("/v1/demo/citizens", tags=["demo"])
def demo_citizens(request: Request, caller: Caseworker):
    """Synthetic citizens to try the caseworker page with (never real people)."""
    return {"citizens": request.app.state.citizens.listing(jobcenters=caller.jobcenters)}


@router.get("/v1/demo/citizens/{person_id}", tags=["demo"])
def demo_citizen(request: Request, person_id: str, caller: Caseworker):
    """One synthetic citizen's history, in the POST /v1/score format."""
    request.state.person_ids = [person_id]
    return request.app.state.citizens.body(person_id, jobcenters=caller.jobcenters)
