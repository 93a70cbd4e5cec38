"""One mapping from input problems to API errors: 422 with every problem as field, value, allowed."""

from __future__ import annotations

import json
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bip.config import get_settings
from serving.observability import record_input_problems


class InputProblems(Exception):
    """Input that parses but breaks the data contract; carries every problem found."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


class TooLarge(Exception):
    """Input over a size limit: answered 413 naming the limit."""

    def __init__(self, field: str, value: str, allowed: str):
        self.problem = {"field": field, "value": value, "allowed": allowed}
        super().__init__(f"{field}: {value}; {allowed}")


def safe_value(value, limit: int = 200):
    """A value as it can be echoed in JSON: non-finite numbers, bytes and long text made safe and short."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, bytes)):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be encoded
        return text if len(text) <= limit else text[:limit] + "..."
    try:
        encoded = json.dumps(value, allow_nan=False, default=str)
    except (TypeError, ValueError):
        return str(value)[:limit]
    return value if len(encoded) <= limit else encoded[:limit] + "..."


def problems_from_pydantic(errors, prefix: str = "") -> list[dict]:
    """pydantic errors as API problems, the field as a dotted path (measurements.0.values.job_search)."""
    out = []
    for e in errors:
        location = [str(p) for p in e.get("loc", ()) if p != "body"]
        field = prefix + ".".join(location) if location else (prefix.rstrip(".") or "body")
        out.append({"field": field, "value": safe_value(e.get("input")), "allowed": e.get("msg", "a valid value")})
    return out


def table_problems(problems) -> list[dict]:
    """Table validation problems as API problems: field = table[row].column."""
    return [{"field": f"{p.table}[{p.row}].{p.column}" if p.row is not None else f"{p.table}.{p.column}",
             "value": safe_value(p.to_dict()["value"]), "allowed": p.allowed} for p in problems]


def problems_response(problems: list[dict], status: int = 422) -> JSONResponse:
    """The one error body for bad input: a count and at most max_listed_problems problems."""
    record_input_problems(problems)
    cap = get_settings().max_listed_problems
    return JSONResponse(status_code=status, content={
        "detail": f"{len(problems)} problem(s) in the input" + (f"; the first {cap} listed" if len(problems) > cap else ""),
        "errors": problems[:cap]})


def install_error_handlers(app: FastAPI) -> None:
    """Request-body errors and contract problems both answer 422 in the same shape."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return problems_response(problems_from_pydantic(error.errors()))

    @app.exception_handler(InputProblems)
    async def invalid_input(request: Request, error: InputProblems):
        return problems_response(error.problems)

    @app.exception_handler(TooLarge)
    async def too_large(request: Request, error: TooLarge):
        return problems_response([error.problem], status=413)
