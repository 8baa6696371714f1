"""Comfy API v2 under ``/api/v2``: jobs, their events, assets, and health.

``v2_router`` builds the router over an open ``Orchestrator``; the app includes it.
Every route answers errors in the v2 envelope with v2 codes (``V2Route``), whatever the
app's own handlers do. Who may see and act on a job is the façade's one rule, as on
``/v1`` and the gateway: a token its owner's jobs, an admin token every job; anything
else reads as 404 ``not_found``, exactly like an id that does not exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.admission import QueueBound
from orchestrator.events import ProgressEvent
from orchestrator.jobs import Job, JobStatus, utcnow
from orchestrator.service import Following, Orchestrator
from orchestrator.settings import Settings
from orchestrator.tokens import Principal, TokenStore
from orchestrator.web.auth import Caller, Listener, caller
from orchestrator.web.body import InvalidJson, JsonBodyRoute, read_json
from orchestrator.web.openapi import inline_schema
from orchestrator.web.routing import FastRoute, FastRouter
from orchestrator.web.schemas import base_url
from orchestrator.web.v2 import asset_routes, events, mapping, schemas
from orchestrator.web.v2.assets import Assets, AssetStore
from orchestrator.web.v2.errors import InvalidBody, response, v2_error
from orchestrator.web.v2.idempotency import KeyStore, checked_key
from orchestrator.web.v2.queue import eta_ms, queue_position
from orchestrator.web.v2.submit import Submitter

DEFAULT_PAGE = 50  # jobs per page of GET /jobs when the client names no limit
# The submit reads its own body (to answer each mistake with the contract's code), so
# FastAPI cannot see the body's model: documented here.
_SUBMIT_DOC: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": inline_schema(schemas.SubmitRequest)}}}}


class V2Route(JsonBodyRoute):
    """A route whose every failure (auth, validation, ours) leaves in the v2 envelope, and
    whose JSON body goes through the one reader (``read_json``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def v2_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every failure gets its v2 answer
                return response(v2_error(exc))

        return v2_handler


@dataclass(frozen=True)
class V2:
    """What the v2 routes share: the façade, the settings, and the v2 views of the
    caller's input files (assets) and single-use keys, both kept by the core."""

    orch: Orchestrator
    settings: Settings
    assets: Assets
    keys: KeyStore
    now: Callable[[], datetime] = utcnow

    @classmethod
    def open(cls, orch: Orchestrator, settings: Settings) -> V2:
        return cls(orch=orch, settings=settings, assets=Assets(AssetStore(orch)),
                   keys=KeyStore(orch))

    def submitter(self) -> Submitter:
        return Submitter(self.orch, self.assets, self.keys, QueueBound(
            max_queued=self.settings.max_queued,
            max_per_owner=self.settings.max_queued_per_owner))

    def job_body(self, job: Job, base: str) -> dict[str, Any]:
        queued = job.status == JobStatus.QUEUED
        body = mapping.job_of(
            job, outputs=self.orch.outputs_of(job.id),
            latest=self.orch.latest_event(job.id, ProgressEvent),
            fraction=self.orch.progress_of(job),
            queue_position=queue_position(self.orch, job) if queued else None,
            base=base, now=self.now(), expires_at=self.orch.expiry_of(job),
            eta_ms=eta_ms(self.orch, job) if queued else None)
        return schemas.dump(body)


def v2_router(orch: Orchestrator, tokens: TokenStore, settings: Settings) -> APIRouter:
    """Every ``/api/v2`` route over ``orch``; callers authenticate with ``tokens``' bearer
    tokens (through the app's ``Services``, which must hold the same store)."""
    v2 = V2.open(orch, settings)
    router = FastRouter(prefix="/api/v2", route_class=V2Route, tags=["Comfy API v2"])
    _job_routes(router, v2)
    asset_routes.add(router, v2.assets, settings, v2.now)
    router.fast.append(asset_routes.content_route(v2.assets))
    router.add_api_route("/health", _health(v2), methods=["GET"], response_model=schemas.V2Health,
                         summary="Whether the service runs (no token needed)")
    return router


def _health(v2: V2) -> Callable[[], schemas.V2Health]:
    def health() -> schemas.V2Health:
        counts = v2.orch.pool_counts()
        return schemas.V2Health(status="ok" if counts.nodes_up else "degraded",
                                nodes_up=counts.nodes_up, nodes_total=counts.nodes_total,
                                queued=counts.queued)
    return health


# --- jobs ---------------------------------------------------------------------------------


def _job_routes(router: FastRouter, v2: V2) -> None:
    """Add the job routes, each a closure over ``v2``."""

    @router.post("/jobs", status_code=201, summary="Submit an API-format graph as a job",
                 openapi_extra=_SUBMIT_DOC)
    async def submit(request: Request, who: Caller,
                     idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        return await _submitted(v2, request, who, idempotency_key)

    @router.get("/jobs", summary="The caller's jobs (every owner's for an admin), newest "
                "first")
    def list_jobs(request: Request, who: Caller,
                  limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE,
                  cursor: str | None = None) -> dict[str, Any]:
        labels = metadata_filter(request.query_params.multi_items())
        page = v2.orch.jobs_for(who, metadata=labels or None, cursor=cursor,
                                limit=min(limit, v2.settings.max_page_size))
        base = base_url(request)
        return schemas.dump(schemas.JobPage(
            jobs=[mapping.summary_of(j, base) for j in page.jobs],
            next_cursor=page.next_cursor))

    @router.get("/jobs/{job_id}", summary="A job: status, progress and outputs so far")
    def get_job(job_id: str, request: Request, who: Caller) -> dict[str, Any]:
        return v2.job_body(v2.orch.job_for(who, job_id), base_url(request))

    @router.get("/jobs/{job_id}/workflow", summary="The graph behind a job")
    def get_workflow(job_id: str, who: Caller) -> dict[str, Any]:
        return schemas.dump(mapping.workflow_of(v2.orch.job_for(who, job_id)))

    @router.post("/jobs/{job_id}/cancel", summary="Cancel a job (idempotent)")
    def cancel(job_id: str, request: Request, who: Caller) -> dict[str, Any]:
        return v2.job_body(v2.orch.cancel_for(who, job_id), base_url(request))

    @router.get("/jobs/{job_id}/events", response_class=StreamingResponse,
                summary="The job's live state as Server-Sent Events",
                responses={200: {"content": {"text/event-stream": {}}}})
    async def job_events(job_id: str, request: Request, who: Listener) -> StreamingResponse:
        return await _event_stream(v2, request, who, job_id)

    router.fast += [
        FastRoute("/api/v2/jobs", _fast(v2, _submit_fast), methods=["POST"]),
        FastRoute("/api/v2/jobs/{job_id}/events", _fast(v2, _events_fast), methods=["GET"])]


# --- the hot routes, also served plainly (routing.FastRoute) ---------------------------------


async def _submitted(v2: V2, request: Request, who: Principal,
                     idempotency_key: str | None) -> JSONResponse:
    key = checked_key(idempotency_key)
    body = _json_body(await request.body())
    base = base_url(request)

    def answer() -> dict[str, Any]:  # one worker thread: admit, then the job's body
        return v2.job_body(v2.submitter().submit(who, body, key), base)

    return JSONResponse(await run_in_threadpool(answer), status_code=201)


async def _event_stream(v2: V2, request: Request, who: Principal,
                        job_id: str) -> StreamingResponse:
    """The stream, opened (access checked, subscribed, snapshot read) in one façade call,
    and its first frames made in the same worker thread."""
    translator = events.Translator(v2.orch, job_id, base_url(request),
                                   functools.partial(queue_position, v2.orch), v2.now)

    def open_stream() -> tuple[Following, list[events.Frame]]:
        opened = v2.orch.follow_for(who, job_id, keepalive=v2.settings.sse_keepalive_s)
        try:
            seen = opened.view  # the job as the stream's opening read found it
            return opened, translator.greet(seen.job if seen else None,
                                            seen.positions if seen else None)
        except BaseException:
            opened.sub.close()
            raise

    opened, greeting = await run_in_threadpool(open_stream)
    return StreamingResponse(
        events.stream(v2.orch, translator, keepalive=v2.settings.sse_keepalive_s,
                      opened=opened, greeting=greeting),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _submit_fast(v2: V2, request: Request) -> Response:
    _, who = caller(request)
    return await _submitted(v2, request, who, request.headers.get("idempotency-key"))


async def _events_fast(v2: V2, request: Request) -> Response:
    _, who = caller(request, stream=True)
    return await _event_stream(v2, request, who, request.path_params["job_id"])


def _fast(v2: V2, endpoint: Callable[[V2, Request], Coroutine[Any, Any, Response]]
          ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """A plain route's endpoint whose every failure leaves in the v2 envelope, as
    ``V2Route`` does for the documented one."""

    async def plain(request: Request) -> Response:
        try:
            return await endpoint(v2, request)
        except Exception as exc:  # noqa: BLE001 - every failure gets its v2 answer
            return response(v2_error(exc))

    return plain


def _json_body(raw: bytes) -> Any:
    try:
        return read_json(raw)
    except InvalidJson as exc:
        raise InvalidBody(f"{exc}; send " '{"workflow": {...}} as application/json',
                          details=exc.details) from exc


def metadata_filter(params: list[tuple[str, str]]) -> dict[str, str]:
    """The ``metadata[key]=value`` pairs of a query; 422 ``invalid_metadata_filter`` for
    a malformed one."""
    labels: dict[str, str] = {}
    for name, value in params:
        if not name.startswith("metadata"):
            continue
        key = name.removeprefix("metadata")
        if not (key.startswith("[") and key.endswith("]")) or len(key) < 3 or key[1:-1] in labels:
            raise InvalidBody(f"query parameter {name!r}: filter labels as metadata[key]=value, "
                              "each key once", code="invalid_metadata_filter")
        labels[key[1:-1]] = value
    return labels
