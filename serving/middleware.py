"""ASGI middleware: body limit, authentication before any body is read, and the audit trail."""

from __future__ import annotations

import time

from fastapi.responses import JSONResponse
from starlette.routing import Match, Route

from serving.audit import AuditLog
from serving.keys import Caller, KeyStore


class _BodyTooLarge(Exception):
    pass


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse(status_code=413, content={"detail": f"request body over {max_bytes} bytes (BIP_MAX_BODY_BYTES)"})


class BodyLimit:
    """413 for bodies over the limit, whether or not Content-Length is sent. Without it (a chunked
    body) the limit is found while the route reads; a route may catch that (FastAPI turns any
    error while reading into 400 "There was an error parsing the body"), so whatever the route
    then answers is dropped and the 413 goes out instead."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _too_large(self.max_bytes)(scope, receive, send)
        seen, over, started = 0, False, False

        async def limited():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _BodyTooLarge()
            return message

        async def sending(message):
            nonlocal started
            if over:  # the route's own answer to the refused read
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await _too_large(self.max_bytes)(scope, receive, send)


def route_roles(route) -> tuple[str, ...] | None:
    """The roles a route's `require(...)` dependency allows, or None for an open route."""
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dependant = stack.pop()
        roles = getattr(dependant.call, "roles", None)
        if roles is not None:
            return roles
        stack.extend(dependant.dependencies)
    return None


class Authenticate:
    """Checks the API key and the route's roles from the headers alone, before the route reads or
    parses a byte of the body: an unauthenticated 60 MB upload costs nothing. The caller is left in
    scope["state"]["caller"] for the route's dependency and the audit trail."""

    def __init__(self, app, routes: list, keys: KeyStore, require_keys: bool = True):
        self.app, self.routes, self.keys, self.require_keys = app, routes, keys, require_keys
        # the roles of each route, walked once; and the route of each (method, path) that a route
        # without path parameters answers (bounded by the routes; paths with ids are not kept)
        self._roles = {id(route): route_roles(route) for route in routes}
        self._static: dict[tuple[str, str], object] = {}

    def _route(self, scope):
        key = (scope["method"], scope["path"])
        found = self._static.get(key)
        if found is not None:
            return found
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                if isinstance(route, Route) and not route.param_convertors and len(self._static) < 1024:
                    self._static[key] = route
                return route
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = self._route(scope)
        roles = self._roles.get(id(route)) if route is not None else None
        if roles is None:
            return await self.app(scope, receive, send)
        key = dict(scope.get("headers") or []).get(b"x-api-key")
        caller = self.keys.lookup(key.decode("latin-1") if key else None)
        if caller is None and not self.require_keys:
            caller = Caller("anonymous", "admin")
        state = scope.setdefault("state", {})
        state["caller"] = caller
        if caller is None:
            response = JSONResponse(status_code=401, content={"detail": "missing or unknown API key (send it in X-API-Key)"},
                                    headers={"WWW-Authenticate": "APIKey"})
            return await response(scope, receive, send)
        if caller.role != "admin" and caller.role not in roles:
            response = JSONResponse(status_code=403, content={
                "detail": f"role {caller.role!r} may not use this route; allowed: {list(roles)}"})
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class AuditTrail:
    """One audit line per /v1/ and /v2/ (Open Inference Protocol) request once it is answered. The route is written as its template
    (/v1/jobs/{job_id}), never the raw path; routes put the person ids they touched in
    scope["state"]["person_ids"] and they are written as salted pseudonyms."""

    def __init__(self, app, audit: AuditLog, holder):
        self.app, self.audit, self.holder = app, audit, holder

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(("/v1/", "/v2/")):
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
            route = scope.get("route")
            template = getattr(route, "path", None) or "(no route)"
            self.audit.write(key_id=caller.key_id if caller else None, role=caller.role if caller else None,
                             route=f"{scope['method']} {template}", person_ids=state.get("person_ids", []),
                             model_version=current.version if current else None, status=status["code"],
                             latency_ms=1e3 * (time.perf_counter() - start))
