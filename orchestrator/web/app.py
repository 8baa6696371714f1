"""The FastAPI application: routes, limits, and the one place errors become responses.

``create_app`` wires an open ``Orchestrator`` and ``TokenStore`` into an app; the caller
owns both and closes them after the server stops. Every error a route raises is an
``OrchestratorError`` (ours, translated once) or a framework refusal (unknown route, bad
query parameter); both leave as the envelope ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from orchestrator.errors import OrchestratorError, QueueFull
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.tokens import TokenStore
from orchestrator.web import gateway, rest, v2
from orchestrator.web.auth import Services
from orchestrator.web.docs import mount_docs
from orchestrator.web.errors import TooManyRequests, body, envelope, queue_full
from orchestrator.web.gateway.routes import HEADER_PREFIXES
from orchestrator.web.limits import BodyLimit, Clock, Limits, comfy_error_body
from orchestrator.web.openapi import document
from orchestrator.web.routing import FastRoute, FastRouter, RouteIndex, with_fast_routes

TITLE = "comfy-orchestrator"
DESCRIPTION = (
    "Run ComfyUI workflows as durable jobs on a pool of ComfyUI nodes. Every route but "
    "`/v1/health` needs `Authorization: Bearer <token>` (`comfy-orch token create`)."
)
# Framework statuses and the error code each answers with.
_HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 429: "rate_limited"}


def create_app(orch: Orchestrator, tokens: TokenStore, settings: Settings, *,
               clock: Clock = time.monotonic) -> FastAPI:
    """The service's app over ``orch`` and ``tokens``; ``clock`` drives the rate limits."""
    # /docs is served with local assets (web/docs.py); FastAPI's own page needs a CDN
    app = FastAPI(title=TITLE, description=DESCRIPTION, version=_version(), docs_url=None,
                  redoc_url=None)
    mount_docs(app)
    limiter = Limits(settings, clock=clock, shared=orch.take_rate)  # replicas: the db's buckets
    app.state.services = Services(orch=orch, tokens=tokens, settings=settings, limiter=limiter)
    routes: list[BaseRoute] = []
    fast: list[FastRoute] = []
    for router in (rest.router(), gateway.gateway_router(orch, tokens),
                   v2.v2_router(orch, tokens, settings)):
        routes += flat_routes(router)
        fast += router.fast if isinstance(router, FastRouter) else []
    # The hot routes are served plainly ahead of their documented twins (routing.py).
    app.router.routes.append(RouteIndex(with_fast_routes(routes, fast)))
    app.openapi = _documented(app, routes)  # type: ignore[method-assign]
    app.add_exception_handler(OrchestratorError, _orchestrator_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(BodyLimit, limit_for=lambda kind: _body_limit(settings, kind))
    return app


def flat_routes(router: APIRouter) -> list[BaseRoute]:
    """``router``'s routes, and those of routers it includes, as one list.

    ``include_router`` keeps each included router as a nested matcher that scans its
    routes twice per request (to match, then to dispatch). Our routers carry their
    prefixes and tags on the routes themselves, so the flat list routes the same; the
    app then finds a request's route through one ``RouteIndex`` (``routing.py``).
    """
    routes: list[BaseRoute] = []
    for route in router.routes:
        original = getattr(route, "original_router", None)
        routes += flat_routes(original) if isinstance(original, APIRouter) else [route]
    return routes


def _documented(app: FastAPI, routes: list[BaseRoute]) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` over ``routes`` (the index hides them from FastAPI's own walk)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(title=app.title, version=app.version,
                                          description=app.description, routes=routes)
        return app.openapi_schema

    return openapi


def _version() -> str:
    try:
        return metadata.version("comfy-orchestrator")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _body_limit(settings: Settings, content_type: str) -> int:
    if content_type.lower().startswith("multipart/"):
        return settings.max_multipart_bytes
    return settings.max_body_bytes


async def _orchestrator_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrchestratorError)
    if isinstance(exc, QueueFull):
        exc = queue_full(exc)  # a 429 like the others, so the gateway's shape applies too
    env = envelope(exc)
    if isinstance(exc, TooManyRequests) and _on_gateway(request.url.path):
        return JSONResponse(comfy_error_body(exc), status_code=env.status, headers=env.headers)
    return JSONResponse(env.body, status_code=env.status, headers=env.headers)


def _on_gateway(path: str) -> bool:
    # ComfyUI clients get the gateway's refusals in ComfyUI's shape (see comfy_error_body).
    prefix = HEADER_PREFIXES[0]
    return path == prefix or path.startswith(prefix + "/")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return JSONResponse(body(code, str(exc.detail)), status_code=exc.status_code,
                        headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(e) for e in exc.errors()]
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    return JSONResponse(body("invalid_request", f"{first['field']}: {first['message']}",
                             {"errors": errors}), status_code=422)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug: the client gets the envelope and nothing of the traceback, which uvicorn logs.
    env = envelope(OrchestratorError("unexpected"))
    return JSONResponse(env.body, status_code=env.status)


def _field_error(error: Any) -> dict[str, str]:
    where = ".".join(str(part) for part in error.get("loc", ()))
    return {"field": where or "request", "message": str(error.get("msg", "invalid"))}
