"""Access hardening around the app: header size bound, failed-key rate limits, security headers,
aggregated audit of refused requests, offline API docs and an OpenAPI that says how to
authenticate and what every error looks like.

`install_security(app, settings, audit)` wires it all; serving.main calls it once, after the
other middleware, so these layers are the outermost: a 431 or 429 costs no key lookup, no body
read and no route.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import mmap
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match

from bip.config import Settings
from serving.audit import AuditLog
from serving.middleware import route_roles

# --- security headers

COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# pages: no inline or foreign script; inline style allowed (the evaluation report shown in the
# evaluator page's srcdoc iframe inherits this policy and carries its own <style>)
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'; "
            "object-src 'none'")
# Swagger UI and ReDoc inject styles and ReDoc searches in a blob worker; still no inline script
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'; object-src 'none'")
# an HTML answer of the API (the evaluation report) runs nothing, even when opened on its own
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _headers_for(path: str, content_type: str) -> tuple[tuple[bytes, bytes], ...]:
    """The security headers of an answer on `path` of `content_type`, as ASGI (name, value) bytes."""
    api = path.startswith(("/v1/", "/v2/")) or path in ("/health", "/ready", "/openapi.json")
    return _kind_headers(path.startswith(("/docs", "/redoc")), content_type.startswith("text/html"),
                         path.startswith("/v1/"), path.startswith("/static/"), api)


@functools.lru_cache(maxsize=None)  # 2**5 kinds of answer at most: built and encoded once each
def _kind_headers(docs: bool, html: bool, v1: bool, static: bool, api: bool) -> tuple[tuple[bytes, bytes], ...]:
    out = dict(COMMON_HEADERS)
    if docs:
        out["content-security-policy"] = DOCS_CSP
        out["x-frame-options"] = "DENY"
    elif html and v1:
        out["content-security-policy"] = REPORT_CSP
        out["x-frame-options"] = "SAMEORIGIN"
    elif html or static:
        out["content-security-policy"] = PAGE_CSP
        out["x-frame-options"] = "SAMEORIGIN"
    else:
        out["content-security-policy"] = API_CSP
        out["x-frame-options"] = "DENY"
    if api:
        out["cache-control"] = "no-store"  # scores concern people: no copies in caches
    return tuple((name.encode(), value.encode()) for name, value in out.items())


class SecurityHeaders:
    """Security headers on every response, suited to what it is (API, page, report, docs)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def sending(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                content_type = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
                headers += [(name, value) for name, value in _headers_for(scope["path"], content_type)
                            if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


# --- failed-key rate limit and header bound

class FailedKeys:
    """Failed API keys of every worker, in one SQLite file (WAL) beside the job store: one row per
    failure (client address, the key id the key claimed, time). Workers of one machine share it,
    so N workers give the budget once, not N times.

    The rules (docs/serving-load.md says why):
    - an address with `per_address` failures in the window is refused, whatever key it sends;
    - a key id with `per_key` failures in the window (guesses at one key's secret, e.g. from many
      addresses) is refused, but only to addresses that have failed themselves in the window. The
      owner, who knows the secret and sends no wrong keys, is never locked out by someone who
      only knows the key id; a distributed guesser gets one wrong guess per address.
    Only failures write; rows older than the window are deleted as failures are written. The
    request path reads a generation number that every failure raises after it is committed (8
    bytes in a file beside the store, mapped into memory): an address found clean at generation
    g stays clean while the generation is g, since failures only expire otherwise. So the usual
    request (a clean address, nothing failed since) costs a memory read, not a SQLite query, and
    a failure in any worker is seen by every worker at its next request."""

    def __init__(self, path: Path, per_address: int, per_key: int, window_s: float):
        self.path, self.per_address, self.per_key, self.window_s = Path(path), per_address, per_key, window_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection per worker, used from the event loop only (the gate is async middleware)
        self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a crash may lose the last failures; never corrupts
        self._db.execute("CREATE TABLE IF NOT EXISTS failure (address TEXT NOT NULL, key_id TEXT, at REAL NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS failure_address ON failure (address, at)")
        self._db.execute("CREATE INDEX IF NOT EXISTS failure_key ON failure (key_id, at)")
        self._lock = threading.Lock()
        self._generation = _Generation(self.path.with_name(self.path.name + ".generation"))
        self._clean: dict[str, int] = {}  # address -> the generation at which it had no failures

    def _wait(self, oldest: float | None, now: float) -> int:
        return max(1, math.ceil(oldest + self.window_s - now)) if oldest is not None else 1

    def retry_after(self, address: str, key_id: str | None, now: float | None = None) -> int:
        """Seconds until `address` may try again (with a key claiming `key_id`); 0 when it may now."""
        generation = self._generation.read()  # before the query: a failure after it raises it
        if self._clean.get(address) == generation:
            return 0
        now = time.time() if now is None else now
        since = now - self.window_s
        with self._lock:
            n, oldest = self._db.execute("SELECT COUNT(*), MIN(at) FROM failure WHERE address = ? AND at > ?",
                                         (address, since)).fetchone()
            if n == 0:  # a clean address is never refused
                if len(self._clean) >= 65536:  # bounded: many addresses only cost queries again
                    self._clean.clear()
                self._clean[address] = generation
                return 0
            if key_id is None:
                return self._wait(oldest, now) if n >= self.per_address else 0
            if n >= self.per_address:
                return self._wait(oldest, now)
            k, oldest_k = self._db.execute("SELECT COUNT(*), MIN(at) FROM failure WHERE key_id = ? AND at > ?",
                                           (key_id, since)).fetchone()
        return self._wait(oldest_k, now) if k >= self.per_key else 0

    def fail(self, address: str, key_id: str | None, now: float | None = None) -> None:
        """Count one failed key from `address` claiming `key_id` (None: no key id in it)."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("INSERT INTO failure VALUES (?, ?, ?)", (address, key_id, now))
            self._db.execute("DELETE FROM failure WHERE at <= ?", (now - self.window_s,))
            self._generation.advance()  # after the commit: whoever reads the new number sees the row


class _Generation:
    """A counter shared by the processes that map one small file: read without a system call,
    raised under an exclusive lock on the file, so it only ever grows (no raise can overwrite a
    later one with a smaller number)."""

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with _locked(self._fd):
            if os.fstat(self._fd).st_size < 8:
                os.ftruncate(self._fd, 8)
        self._map = mmap.mmap(self._fd, 8)

    def read(self) -> int:
        return int.from_bytes(self._map[:8], "little")

    def advance(self) -> None:
        with _locked(self._fd):
            self._map[:8] = (self.read() + 1).to_bytes(8, "little")


@contextlib.contextmanager
def _locked(fd: int):
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


KEY_ID = re.compile(rb"^bip_([0-9a-f]{8})_")


def _claimed_key_id(headers: list) -> str | None:
    """The key id a presented key claims (keys look like bip_<key id>_<secret>), for the per-key limit."""
    for name, value in headers:
        if name == b"x-api-key":
            found = KEY_ID.match(value)
            return found.group(1).decode() if found else None  # no key id: the address limit alone
    return None


def flat_routes(routes) -> list:
    """The routes with included routers opened up (FastAPI keeps them nested; main.py includes its
    routers without a prefix)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(flat_routes(inner.routes) if inner is not None else [route])
    return out


def _route_template(routes, scope) -> str:
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return f"{scope['method']} {getattr(route, 'path', '?')}"
    return f"{scope['method']} (no route)"


class AccessGate:
    """Outermost checks: header size (431), and failed-key limits per client address and per
    claimed key, shared by all workers (429 with Retry-After; FailedKeys) on /v1 routes. A 401 from authentication counts as a
    failure; refused requests reach the audit as counts per route template, not as lines."""

    def __init__(self, app, routes: list, audit: AuditLog, settings: Settings):
        self.app, self._routes, self.audit = app, routes, audit
        self.max_header_bytes = settings.max_header_bytes
        self.failures = FailedKeys(settings.failed_keys_db, settings.failed_keys_per_address,
                                   settings.failed_keys_per_key, settings.failed_keys_window_s)

    @property
    def routes(self) -> list:
        return flat_routes(self._routes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if size > self.max_header_bytes:
            response = JSONResponse(status_code=431, content={
                "detail": f"request headers of {size} bytes; at most {self.max_header_bytes} (BIP_MAX_HEADER_BYTES)"})
            return await response(scope, receive, send)
        if not scope["path"].startswith(("/v1/", "/v2/")):
            return await self.app(scope, receive, send)
        address = (scope.get("client") or ("unknown",))[0]
        claimed = _claimed_key_id(headers)
        wait = self.failures.retry_after(address, claimed)
        if wait:
            self.audit.refused(_route_template(self.routes, scope), 429)
            response = JSONResponse(status_code=429, headers={"Retry-After": str(wait)}, content={
                "detail": f"too many failed API keys from this address or for this key; try again in {wait} s"})
            return await response(scope, receive, send)
        status = {}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        if status.get("code") == 401:
            self.failures.fail(address, claimed)
            self.audit.refused(_route_template(self.routes, scope), 401)


# --- offline docs

ASSETS = "/docs-assets"
SWAGGER_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bip-score API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css"><link rel="icon" href="{ASSETS}/favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>"""
SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  persistAuthorization: false, tryItOutEnabled: false
});
"""
REDOC_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bip-score API</title>
<link rel="icon" href="{ASSETS}/favicon.png"></head>
<body><redoc spec-url="/openapi.json"></redoc><script src="{ASSETS}/redoc.standalone.js"></script></body></html>"""


def _offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the assets in the fastapi-offline package: no CDN, and
    no inline script, so the strict CSP holds there too."""
    import fastapi_offline
    static = Path(fastapi_offline.__file__).parent / "static"
    defaults = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in defaults]
    app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        return HTMLResponse(SWAGGER_HTML)

    @app.get("/docs/init.js", include_in_schema=False)
    async def swagger_init():
        return Response(SWAGGER_INIT, media_type="text/javascript")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return HTMLResponse(REDOC_HTML)


# --- OpenAPI: the key scheme and every error documented with its schema

ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what went wrong, in words"},
        "errors": {"type": "array", "description": "for bad input: every problem found (at most max_listed_problems)",
                   "items": {"$ref": "#/components/schemas/Problem"}},
    },
}
PROBLEM_SCHEMA = {
    "title": "Problem", "type": "object", "required": ["field", "value", "allowed"],
    "properties": {
        "field": {"type": "string", "description": "where: a JSON path (measurements.0.values.job_search) or "
                                                   "table[line].column for files"},
        "value": {"description": "the value found (shortened; non-finite numbers as text)"},
        "allowed": {"type": "string", "description": "what is allowed"},
    },
}
ERROR_TEXT = {
    400: "the body could not be parsed (e.g. a broken multipart form)",
    401: "missing or unknown API key (send it in X-API-Key)",
    403: "the key's role may not use this route, or the job belongs to another key",
    404: "not found",
    413: "over a size limit (body, rows, citizens or uncompressed bytes)",
    422: "bad input: every problem with its field, value and what is allowed",
    429: "too many failed API keys from this address or for this key, or the job queue is full (see Retry-After)",
    431: "request headers too large",
    503: "no model loaded, or the citizen source cannot be read now",
}


def _needs_model(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if getattr(dependant.call, "__name__", "") == "_serving_model":
            return True
        stack.extend(dependant.dependencies)
    return False


def _codes(route: APIRoute, operation: dict) -> set[int]:
    codes = {413, 431}
    if route.dependant.query_params or route.dependant.body_params or route.dependant.path_params:
        codes.add(422)
    if route_roles(route) is not None:
        codes |= {401, 403, 429}
    if route.dependant.path_params or route.path.startswith("/v1/demo"):
        codes.add(404)
    if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
        codes.add(400)
    if _needs_model(route) or route.path.startswith(("/v1/citizens", "/v1/demo")):
        codes.add(503)  # no model, or the citizen source cannot be read
    return codes


def _reading_order(routes: list, documented: list | None) -> list:
    """The app's routes with the included routers in `documented` order (the app may match them
    in another order)."""
    if not documented:
        return routes
    rank = {id(router): i for i, router in enumerate(documented)}
    return sorted(routes, key=lambda route: rank.get(id(getattr(route, "original_router", None)), -1))


def secure_openapi(app: FastAPI, reading: list | None = None):
    """app.openapi: FastAPI's document plus the X-API-Key scheme on every keyed operation and the
    error responses each operation can give, all with the one error schema. `reading`: the
    routers in the order the document lists them."""

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=_reading_order(app.routes, reading))
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["APIKey"] = {
            "type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "an API key from `bip keys add --role caseworker|evaluator|admin`"}
        schemas = components.setdefault("schemas", {})
        schemas["Error"], schemas["Problem"] = ERROR_SCHEMA, PROBLEM_SCHEMA
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for route in flat_routes(app.routes):
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods:
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                roles = route_roles(route)
                if roles is not None:
                    operation["security"] = [{"APIKey": []}]
                    operation["description"] = (operation.get("description", "") +
                                                f"\n\nRoles: {', '.join(roles)} (admin may use every route).").strip()
                responses = operation.setdefault("responses", {})
                for code in sorted(_codes(route, operation)):
                    documented = responses.setdefault(str(code), {"description": ERROR_TEXT[code]})
                    if code == 422 or "content" not in documented:  # FastAPI's 422 model is not our body
                        documented["content"] = error
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    return openapi


def install_security(app: FastAPI, settings: Settings, audit: AuditLog, documented: list | None = None) -> None:
    """Wire the layers above into the app (call after the app's own middleware and routers);
    `documented`: the included routers in the OpenAPI document's order."""
    _offline_docs(app)
    app.state.audit = audit
    app.add_middleware(AccessGate, routes=app.router.routes, audit=audit, settings=settings)
    app.add_middleware(SecurityHeaders)  # outermost: every answer, 431 and 429 included, gets them
    app.openapi = secure_openapi(app, documented)
