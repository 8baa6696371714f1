"""``/v1/jobs``: submit (JSON or multipart with input images), read, list, cancel, retry,
and follow a job's events.

A submit is parsed and its wire limits checked (prompt length, images opened with Pillow)
here; the façade's ``admit`` then checks the rest in the core's one order (graph shape,
pre-flight, queue bound) before anything is stored, so a refused request leaves no blob
and no job behind. Who may read or act on a job is the façade's ``*_for`` rule.

The submit and the event stream are a job's hot path: ``fast_routes`` serves both as
plain routes (``routing.FastRoute``) that authenticate once and make one façade call in
one worker thread; the documented routes below answer the same through the same code.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request as PlainRequest

from orchestrator.errors import AccessDenied
from orchestrator.jobs import ItemStatus, Job, JobStatus, Visibility
from orchestrator.service import Admission
from orchestrator.tokens import Principal
from orchestrator.web import sse
from orchestrator.web.auth import Caller, Listener, Services, Svc, caller
from orchestrator.web.body import JsonBodyRoute, read_json
from orchestrator.web.errors import Forbidden, InvalidRequest, UnsupportedMedia
from orchestrator.web.limits import check_image, check_prompts
from orchestrator.web.routing import FastRoute, no_query
from orchestrator.web.schemas import (
    PLACEHOLDER_RE,
    JobOut,
    JobPageOut,
    JobRequest,
    base_url,
    checked_name,
    parse_model,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=JsonBodyRoute)

IDEMPOTENCY_KEY_MAX = 255
_FORM_FIELDS = frozenset(JobRequest.model_fields)
_JSON_FIELDS = frozenset({"values", "graph", "metadata"})
_INT_FIELDS = frozenset({"count", "priority"})
_FORM_INT = re.compile(r"-?[0-9]{1,6}")

_SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": JobRequest.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object",
                "description": "the JobRequest fields as form fields (values, graph and "
                               "metadata as JSON text), plus one image file per image "
                               "placeholder, named after it (e.g. char_avatar)",
                "additionalProperties": {"type": "string", "format": "binary"},
            }},
        },
    },
}


@router.post("", status_code=202, response_model=JobOut, openapi_extra=_SUBMIT_DOC,
             summary="Submit a job (JSON, or multipart with input images)")
async def submit_job(request: Request, svc: Svc, who: Caller,
                     idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    """202 with the job and its ``Location``; replaying an ``Idempotency-Key`` returns the
    job made the first time (header ``Idempotent-Replayed: true``)."""
    return await _submitted(request, svc, who, idempotency_key)


async def _submit_fast(request: PlainRequest) -> JSONResponse:
    svc, who = caller(request)
    return await _submitted(request, svc, who, request.headers.get("idempotency-key"))


async def _submitted(request: PlainRequest, svc: Services, who: Principal,
                     idempotency_key: str | None) -> JSONResponse:
    key = _checked_key(idempotency_key)
    job_request, images = await _read_submit(request, svc)
    check_prompts(job_request.values, svc.settings.max_prompt_chars)
    replayed, body = await run_in_threadpool(_submit_answer, svc, who, job_request, images,
                                             key, base_url(request))
    headers = {"Location": body["url"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=202, headers=headers)


def _submit_answer(svc: Services, who: Principal, req: JobRequest, images: dict[str, bytes],
                   key: str | None, base: str) -> tuple[bool, dict[str, Any]]:
    """Admit the job and make its answer: one worker thread, the job read once."""
    handle, job = svc.orch.admit_read(_admission(svc, who, req, images, key))
    return handle.replayed, job_out(svc, job, base).model_dump(mode="json")


def job_out(svc: Services, job: Job, base: str) -> JobOut:
    """The job's answer, with its progress and each queued image's place in the queue."""
    positions = {item.index: svc.orch.queue_position(item.id) for item in job.items
                 if item.status == ItemStatus.QUEUED}
    etas = {index: svc.orch.eta_s(job, ahead) for index, ahead in positions.items()
            if ahead is not None}
    return JobOut.of(job, base, progress=svc.orch.progress_of(job), positions=positions,
                     etas=etas, expires=svc.orch.expiry_of(job))


def _checked_key(key: str | None) -> str | None:
    if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX:
        raise InvalidRequest(f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} characters")
    return key


def _admission(svc: Services, who: Principal, req: JobRequest, images: dict[str, bytes],
               key: str | None) -> Admission:
    return Admission(
        workflow=req.workflow, graph=req.graph, values=req.values, count=req.count,
        images=images, owner=who.owner, visibility=Visibility(req.visibility),
        character=req.character, conversation=req.conversation, priority=req.priority,
        metadata=req.metadata,
        idempotency_key=key, bound=svc.queue_bound(), source="graph")


async def _read_submit(request: PlainRequest, svc: Services) -> tuple[JobRequest, dict[str, bytes]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return parse_model(JobRequest, read_json(await request.body())), {}
    if kind == "multipart/form-data":
        limits = svc.settings
        async with request.form(max_files=limits.max_upload_files, max_fields=50,
                                max_part_size=limits.max_body_bytes) as form:
            return await _read_form(form, svc)
    raise UnsupportedMedia(f"send application/json or multipart/form-data, not {kind!r}")


async def _read_form(form: FormData, svc: Services) -> tuple[JobRequest, dict[str, bytes]]:
    fields: dict[str, Any] = {}
    images: dict[str, bytes] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            images[_image_name(name)] = check_image(
                name, await value.read(svc.settings.max_upload_bytes + 1),
                svc.settings.max_upload_bytes)
        elif name in _JSON_FIELDS:
            fields[name] = read_json(value, where=f"form field {name!r}")
        elif name in _INT_FIELDS:
            fields[name] = _form_int(name, value)
        elif name in _FORM_FIELDS:
            fields[name] = value
        else:
            raise InvalidRequest(f"unknown form field {name!r}; fields are "
                                 f"{', '.join(sorted(_FORM_FIELDS))} plus image files")
    return parse_model(JobRequest, fields, where="form"), images


def _form_int(name: str, text: str) -> int:
    # A form carries text: only plain ASCII digits are a number, never "true" or "²".
    if not _FORM_INT.fullmatch(text.strip()):
        raise InvalidRequest(f"form field {name!r} must be a whole number, got {text[:40]!r}",
                             details={"field": name})
    return int(text)


def _image_name(field: str) -> str:
    if not PLACEHOLDER_RE.fullmatch(field):
        raise InvalidRequest(f"file field {field!r} must be named after an image placeholder "
                             "(letters, digits, '_')")
    return field


@router.get("", response_model=JobPageOut, summary="List jobs, newest first")
def list_jobs(request: Request, svc: Svc, who: Caller,
              status: JobStatus | None = None, workflow: str | None = None,
              character: str | None = None, conversation: str | None = None,
              owner: str | None = None, limit: Annotated[int, Query(ge=1)] = 50,
              cursor: str | None = None) -> JobPageOut:
    """The caller's jobs (every owner's, or ``?owner=``'s, for an admin; another owner is
    403 for other tokens); pass ``next_cursor`` back as ``cursor`` for the next page."""
    try:
        page = svc.orch.jobs_for(who, owner=owner, status=status, workflow=workflow,
                                 character=character, conversation=conversation,
                                 limit=min(limit, svc.settings.max_page_size), cursor=cursor)
    except AccessDenied:
        raise Forbidden("listing another owner's jobs needs an admin token; leave out "
                        "?owner= to list your own") from None
    base = base_url(request)
    return JobPageOut(jobs=[job_out(svc, j, base) for j in page.jobs],
                      next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobOut, summary="Read a job")
def get_job(job_id: str, request: Request, svc: Svc, who: Caller) -> JobOut:
    return job_out(svc, svc.orch.job_for(who, checked_name(job_id, "job id")),
                   base_url(request))


@router.delete("/{job_id}", response_model=JobOut, summary="Cancel a job")
def cancel_job(job_id: str, request: Request, response: Response, svc: Svc,
               who: Caller) -> JobOut:
    """Queued images never run; running ones are interrupted. 202 while canceling, 200 once
    the job is terminal (also for a job that had already ended)."""
    job = svc.orch.cancel_for(who, checked_name(job_id, "job id"))
    response.status_code = 200 if job.status.terminal else 202
    return job_out(svc, job, base_url(request))


@router.post("/{job_id}/retry", status_code=202, response_model=JobOut,
             summary="Run a finished job's failed or canceled images again")
def retry_job(job_id: str, request: Request, svc: Svc, who: Caller) -> JobOut:
    handle = svc.orch.retry_for(who, checked_name(job_id, "job id"))
    return job_out(svc, handle.get(), base_url(request))


@router.get("/{job_id}/events", summary="The job's events as Server-Sent Events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(job_id: str, svc: Svc, who: Listener,
                     last_event_id: Annotated[str | None, Header()] = None,
                     after: Annotated[int | None, Query(ge=0)] = None) -> StreamingResponse:
    """A snapshot, then each event (``id:`` is its number). Reconnect with
    ``Last-Event-ID`` (or ``?after=``) to get what was missed. Ends after the job ends."""
    return await _event_stream(svc, who, job_id, last_event_id, after)


async def _events_fast(request: PlainRequest) -> StreamingResponse:
    svc, who = caller(request, stream=True)
    return await _event_stream(svc, who, request.path_params["job_id"],
                               request.headers.get("last-event-id"), None)


async def _event_stream(svc: Services, who: Principal, job_id: str,
                        last_event_id: str | None, after: int | None) -> StreamingResponse:
    """The stream, opened (access checked, subscribed, snapshot read) in one façade call."""
    checked_name(job_id, "job id")
    try:
        resume = sse.parse_last_event_id(last_event_id)
    except InvalidRequest:
        await run_in_threadpool(svc.orch.job_for, who, job_id)  # a 404 goes first
        raise
    events = await run_in_threadpool(
        functools.partial(svc.orch.follow_for, who, job_id,
                          resume if resume is not None else after,
                          keepalive=svc.settings.sse_keepalive_s))
    return StreamingResponse(
        sse.stream(events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def fast_routes() -> list[FastRoute]:
    """The submit and the event stream as plain routes (see the module's docstring); a
    stream asked with ``?after=`` goes to the documented route, which checks it."""
    return [FastRoute("/v1/jobs", _submit_fast, methods=["POST"]),
            FastRoute("/v1/jobs/{job_id}/events", _events_fast, methods=["GET"],
                      when=no_query)]
