"""The gateway's routes: ComfyUI's HTTP API and ``/ws`` in front of the pool.

Every route is served four times: with the token in the path (``/comfyui/<token>/...``,
because many ComfyUI clients take only a base address) or in an ``X-API-Key`` header at
``/comfyui/...`` (Comfy Cloud's clients send it that way), each with and without ComfyUI's
``/api`` prefix. Routes that take the token from a header are registered first, so a
literal segment such as ``api`` or ``history`` is never read as a token.

Bodies are read as JSON whatever their content type: ComfyUI's own examples post JSON with
urllib's default form content type.

A job's hot routes (``POST /prompt``, ``GET /history/{id}``, ``GET /view``) are also
served as plain routes (``routing.FastRoute``): the same endpoint, called with the caller
authenticated once, without dependency solving.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations
# at registration, and they name ``Who``, which exists only inside ``gateway_router``.

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.errors import JobNotFound
from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal, TokenStore
from orchestrator.web.body import read_json
from orchestrator.web.content import disposition, file_response
from orchestrator.web.errors import InvalidRequest
from orchestrator.web.gateway import errors, files, nodeinfo, versions
from orchestrator.web.gateway import jobs as job_views
from orchestrator.web.gateway.auth import TokenAuth, settings_of
from orchestrator.web.gateway.hub import ClientHub
from orchestrator.web.gateway.prompts import Gateway
from orchestrator.web.gateway.socket import socket_endpoint
from orchestrator.web.gateway.uploads import UploadStore
from orchestrator.web.routing import FastRoute, FastRouter, no_query

# A hot route's plain twin: the request and its caller in, the answer out.
Fast = Callable[[Request, Principal], Awaitable[Response]]

HEADER_PREFIXES = ("/comfyui", "/comfyui/api")
TOKEN_PREFIXES = ("/comfyui/{token}", "/comfyui/{token}/api")
TAG = "comfyui"


def absent() -> Response:
    """What a ComfyUI release answers a GET of a route it does not have (0.3.x: an empty
    404 from its catch-all)."""
    return Response(status_code=404)


def not_allowed() -> Response:
    """What releases before 0.26 answer a POST to ``/api/jobs/.../cancel``: aiohttp's 405,
    as a GET route (their catch-all, or 0.16's ``/api/jobs/{id}``) matches the path."""
    return Response("405: Method Not Allowed", status_code=405, media_type="text/plain")


@dataclass(frozen=True)
class Route:
    """One gateway route: its path below the prefix, methods and endpoint."""

    path: str
    methods: list[str]
    endpoint: Callable[..., Any]
    # ComfyUI serves its newer /api/jobs routes only under /api: no second, bare copy.
    api_only: bool = False
    fast: Fast | None = None  # served ahead as a plain route (see the module's docstring)
    fast_when: Callable[[Any], bool] | None = None  # which requests the plain route takes


async def json_body(request: Request) -> Any:
    """The body as JSON (None when empty), whatever the content type says; ``InvalidJson``
    (400) for what the service's one reader refuses: not JSON, NaN or Infinity, nesting
    deeper than any client needs."""
    raw = await request.body()
    if not raw.strip():
        return None
    return read_json(raw)


def gateway_router(orch: Orchestrator, tokens: TokenStore) -> APIRouter:
    """Every gateway route over ``orch``; uploads are kept in ``orch.data_dir``."""
    gw = Gateway(orch, UploadStore(orch), ClientHub(orch))
    auth = TokenAuth(tokens)
    routes = _prompt_routes(gw, auth) + _file_routes(gw, auth) + _info_routes(gw, auth)
    router = FastRouter(tags=[TAG])
    for prefixes in (HEADER_PREFIXES, TOKEN_PREFIXES):
        for route in routes:
            for prefix in prefixes[:1] if route.api_only else prefixes:
                router.add_api_route(prefix + route.path, route.endpoint,
                                     methods=route.methods,
                                     include_in_schema=prefix == TOKEN_PREFIXES[0])
                if route.fast is not None:
                    router.fast.append(FastRoute(
                        prefix + route.path, _plain(auth, route.fast),
                        methods=route.methods, when=route.fast_when or (lambda scope: True)))
        for prefix in prefixes:
            router.add_api_websocket_route(prefix + "/ws", socket_endpoint(gw, auth))
    return router


def _plain(auth: TokenAuth, fast: Fast) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await fast(request, auth.caller(request))
    return endpoint


def mount_gateway(app: FastAPI, orch: Orchestrator, tokens: TokenStore) -> None:
    """Add the gateway's routes to ``app``."""
    app.include_router(gateway_router(orch, tokens))


def _prompt_routes(gw: Gateway, auth: TokenAuth) -> list[Route]:
    Who = Annotated[Principal, Depends(auth.principal)]

    async def post_prompt(request: Request, who: Who) -> JSONResponse:
        try:
            body = await json_body(request)
        except InvalidRequest as exc:
            return JSONResponse(errors.error_body(errors.graph_error(
                "invalid_prompt", str(exc))), status_code=400)
        config = settings_of(request.app)
        gw.hub.bind(asyncio.get_running_loop())  # the prompt's relay runs on this loop
        status, answer = await run_in_threadpool(
            gw.submit, who, body, max_queued=config.max_queued,
            max_per_owner=config.max_queued_per_owner)
        return JSONResponse(answer, status_code=status)

    def get_prompt(who: Who) -> dict[str, Any]:
        return gw.queue_info()

    def get_queue(who: Who) -> dict[str, Any]:
        return gw.queue(who)

    async def post_queue(request: Request, who: Who) -> Response:
        await run_in_threadpool(gw.delete_queued, who, await json_body(request))
        return Response(status_code=200)

    async def post_interrupt(request: Request, who: Who) -> Response:
        body = await json_body(request)
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        await run_in_threadpool(gw.interrupt, who, str(prompt_id) if prompt_id else None)
        return Response(status_code=200)

    return [Route("/prompt", ["POST"], post_prompt, fast=post_prompt),
            Route("/prompt", ["GET"], get_prompt),
            Route("/queue", ["GET"], get_queue), Route("/queue", ["POST"], post_queue),
            Route("/interrupt", ["POST"], post_interrupt)] + _history_routes(gw, Who)


def _history_routes(gw: Gateway, Who: Any) -> list[Route]:
    def get_history(who: Who, max_items: int | None = None,
                    offset: int | None = None) -> dict[str, Any]:
        return gw.history(who, max_items, offset)

    def get_history_of(prompt_id: str, who: Who) -> dict[str, Any]:
        return gw.history_of(who, prompt_id)

    async def history_of_fast(request: Request, who: Principal) -> Response:
        found = await run_in_threadpool(gw.history_of, who, request.path_params["prompt_id"])
        return JSONResponse(found)

    return [Route("/history", ["GET"], get_history),
            Route("/history/{prompt_id}", ["GET"], get_history_of, fast=history_of_fast,
                  fast_when=no_query)] + _job_routes(gw, Who)


def _job_routes(gw: Gateway, Who: Any) -> list[Route]:
    """Newer ComfyUI's ``/api/jobs`` routes, each a plain 404 while the pool's ComfyUI is
    older than the release that brought it, as that release answers."""

    def list_jobs(request: Request, who: Who) -> Response:
        if not versions.has(gw.version(), versions.JOBS_API):
            return absent()
        try:
            query = job_views.parse_query(dict(request.query_params))
        except job_views.QueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(gw.jobs(who, query))

    def get_job(job_id: str, who: Who) -> Response:
        if not versions.has(gw.version(), versions.JOBS_API):
            return absent()
        try:
            return JSONResponse(gw.job(who, job_id))
        except JobNotFound:
            return JSONResponse({"error": "Job not found"}, status_code=404)

    return [Route("/api/jobs", ["GET"], list_jobs, api_only=True),
            Route("/api/jobs/{job_id}", ["GET"], get_job, api_only=True)
            ] + _cancel_routes(gw, Who)


def _cancel_routes(gw: Gateway, Who: Any) -> list[Route]:
    def cancel_job(job_id: str, who: Who) -> Response:
        version = gw.version()
        if not versions.has(version, versions.JOB_CANCEL):
            return not_allowed()
        return JSONResponse(gw.cancel_job(who, job_id))

    async def cancel_jobs(request: Request, who: Who) -> Response:
        version = await run_in_threadpool(gw.version)
        if not versions.has(version, versions.JOB_CANCEL):
            return not_allowed()
        try:
            body = await json_body(request)
        except InvalidRequest:
            return JSONResponse({"error": "Request body must be valid JSON"}, status_code=400)
        status, answer = await run_in_threadpool(gw.cancel_jobs, who, body)
        return JSONResponse(answer, status_code=status)

    return [Route("/api/jobs/cancel", ["POST"], cancel_jobs, api_only=True),
            Route("/api/jobs/{job_id}/cancel", ["POST"], cancel_job, api_only=True)]


def _file_routes(gw: Gateway, auth: TokenAuth) -> list[Route]:
    Who = Annotated[Principal, Depends(auth.principal)]

    def view(request: Request, who: Who) -> Response:
        found = files.find(gw.orch, gw.uploads, who,
                           files.view_address(dict(request.query_params)))
        return file_response(found.path, media_type=found.mime,
                             headers={"Content-Disposition": disposition(found.filename)})

    async def view_fast(request: Request, who: Principal) -> Response:
        return await run_in_threadpool(view, request, who)

    async def upload_image(request: Request, who: Who) -> dict[str, str]:
        limits = settings_of(request.app)
        async with request.form(max_files=1, max_fields=10,
                                max_part_size=limits.max_body_bytes) as form:
            image = form.get("image")
            data = None if isinstance(image, str) or image is None else \
                await image.read(limits.max_upload_bytes + 1)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            fields["filename"] = getattr(image, "filename", None) or ""
        return await run_in_threadpool(files.upload, gw.orch, gw.uploads, who, fields, data,
                                       max_bytes=limits.max_upload_bytes)

    return [Route("/view", ["GET"], view, fast=view_fast),
            Route("/upload/image", ["POST"], upload_image)]


def _info_routes(gw: Gateway, auth: TokenAuth) -> list[Route]:
    Who = Annotated[Principal, Depends(auth.principal)]
    orch = gw.orch

    def object_info(who: Who) -> dict[str, Any]:
        return orch.object_info()

    def object_info_of(node_class: str, who: Who) -> dict[str, Any]:
        return nodeinfo.object_info_of(orch, node_class)

    def system_stats(who: Who) -> dict[str, Any]:
        return nodeinfo.system_stats(orch)

    def embeddings(who: Who) -> list[str]:
        return nodeinfo.embeddings(orch)

    def model_folders(who: Who) -> list[str]:
        return nodeinfo.models(orch) or []

    def model_files(folder: str, who: Who) -> Any:
        found = nodeinfo.models(orch, folder)
        return Response(status_code=404) if found is None else found

    def features(request: Request, who: Who) -> dict[str, Any]:
        return nodeinfo.features(orch, settings_of(request.app).max_upload_bytes)

    return [Route("/object_info", ["GET"], object_info),
            Route("/object_info/{node_class}", ["GET"], object_info_of),
            Route("/system_stats", ["GET"], system_stats),
            Route("/embeddings", ["GET"], embeddings), Route("/models", ["GET"], model_folders),
            Route("/models/{folder}", ["GET"], model_files), Route("/features", ["GET"], features)]
