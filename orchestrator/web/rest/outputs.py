"""``/v1/outputs`` and ``/v1/gallery``: output listing, metadata, bytes, thumbnails,
regenerate, delete.

A caller reads their own outputs and every public one, and deletes their own. Bytes are
served with the blob's sha256 as ETag (``If-None-Match`` → 304) and single byte ranges (206,
or 416 outside the file), so browsers cache them and video players can seek.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as PlainRequest

from orchestrator.errors import InputsNotShared
from orchestrator.outputs import OutputRecord
from orchestrator.service import THUMBNAIL_FORMAT
from orchestrator.tokens import Principal
from orchestrator.web import content
from orchestrator.web.auth import Caller, Services, Svc, caller
from orchestrator.web.body import JsonBodyRoute
from orchestrator.web.errors import Forbidden, InvalidRequest
from orchestrator.web.rest.jobs import job_out
from orchestrator.web.routing import FastRoute
from orchestrator.web.schemas import (
    JobOut,
    OutputOut,
    OutputPageOut,
    RegenerateRequest,
    base_url,
    checked_name,
)

router = APIRouter(tags=["outputs"], route_class=JsonBodyRoute)

# Outputs never change (content-addressed), so clients may keep them; private: per token.
CACHE_CONTROL = "private, max-age=31536000, immutable"
PUBLIC_VARIANT = "public"  # ETag suffix of the copy without embedded metadata
THUMBNAIL_MIME = f"image/{THUMBNAIL_FORMAT.lower()}"
THUMBNAIL_DEFAULT = 256  # pixels, longest side


def _record(svc: Services, who: Principal, output_id: str) -> OutputRecord:
    return svc.orch.output_for(who, checked_name(output_id, "output id"))


def _shown(records: list[OutputRecord], base: str) -> list[OutputOut]:
    return [OutputOut.of(r, base) for r in records]


@router.get("/v1/outputs", response_model=OutputPageOut,
            summary="Outputs the token may see, filtered, newest first")
def list_outputs(request: Request, svc: Svc, who: Caller, workflow: str | None = None,
                 owner: str | None = None, character: str | None = None,
                 conversation: str | None = None, job: str | None = None,
                 limit: Annotated[int, Query(ge=1)] = 50,
                 cursor: str | None = None) -> OutputPageOut:
    """Every given filter must match. A token sees its own outputs and public ones (so
    ``?owner=`` of another owner lists their public outputs); an admin sees all. Pass
    ``next_cursor`` back as ``cursor`` for the next page."""
    page = svc.orch.outputs_for(
        who, owner=owner, job_id=job, character=character, conversation=conversation,
        workflow=workflow, limit=min(limit, svc.settings.max_page_size), cursor=cursor)
    return OutputPageOut(outputs=_shown(page.outputs, base_url(request)),
                         next_cursor=page.next_cursor)


@router.get("/v1/outputs/{output_id}", response_model=OutputOut, summary="An output's metadata")
def get_output(output_id: str, request: Request, svc: Svc, who: Caller) -> OutputOut:
    """Another owner's output comes without the image values that made it."""
    return _shown([_record(svc, who, output_id)], base_url(request))[0]


@router.get("/v1/outputs/{output_id}/content", summary="An output's bytes",
            response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 206: {}, 304: {}, 416: {}})
def get_content(output_id: str, svc: Svc, who: Caller,
                range: Annotated[str | None, Header()] = None,
                if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The bytes with their own content type; ``Range: bytes=a-b`` for a part.

    The owner gets the file as ComfyUI wrote it; anyone else (an admin too) gets it
    without the graph ComfyUI embeds (prompt text, input images), with its own ETag, and
    ranges count in that copy's bytes."""
    return _content(svc, who, output_id, range, if_none_match)


async def _content_fast(request: PlainRequest) -> Response:
    svc, who = caller(request)
    headers = request.headers
    return await run_in_threadpool(_content, svc, who, request.path_params["output_id"],
                                   headers.get("range"), headers.get("if-none-match"))


def fast_routes() -> list[FastRoute]:
    """An output's bytes as a plain route (see ``routing.FastRoute``): one worker thread
    reads the record and, for a small file, its bytes."""
    return [FastRoute("/v1/outputs/{output_id}/content", _content_fast, methods=["GET"])]


def _content(svc: Services, who: Principal, output_id: str, range: str | None,
             if_none_match: str | None) -> Response:
    """``get_content``'s answer; blocking (a worker thread). A small file is read here
    and sent whole (no further thread hop per chunk); a large one is streamed."""
    record = _record(svc, who, output_id)
    public = svc.orch.gets_public_copy(who, record)
    etag = content.etag_of(record.sha256, PUBLIC_VARIANT if public else "")
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes"}
    if content.not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    path = svc.orch.output_file(who, record).path
    size = path.stat().st_size
    span = content.parse_range(range, size)
    first, last = span or (0, size - 1)
    headers |= {"Content-Length": str(last - first + 1),
                "Content-Disposition": content.disposition(record.filename)}
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if size <= content.INLINE_MAX_BYTES:
        data = b"".join(content.file_chunks(path, first, last))
        if len(data) == last - first + 1:  # else the file changed under us: stream it
            return Response(data, media_type=record.mime, status_code=206 if span else 200,
                            headers=headers)
    return StreamingResponse(content.file_chunks(path, first, last), media_type=record.mime,
                             status_code=206 if span else 200, headers=headers)


@router.get("/v1/outputs/{output_id}/thumbnail", summary="A small preview of an image output",
            response_class=FileResponse, responses={200: {"content": {THUMBNAIL_MIME: {}}}})
def get_thumbnail(output_id: str, svc: Svc, who: Caller,
                  size: Annotated[int, Query(ge=16, le=1024)] = THUMBNAIL_DEFAULT,
                  if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """Longest side ``size`` pixels; 404 for outputs that are not images."""
    record = _record(svc, who, output_id)
    etag = content.etag_of(record.sha256, f"thumb{size}")
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if content.not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    path = svc.orch.output_thumbnail(record, size)
    return content.file_response(path, media_type=THUMBNAIL_MIME, headers=headers)


@router.post("/v1/outputs/{output_id}/regenerate", status_code=202, response_model=JobOut,
             summary="Run an output's workflow again, with a new or a given seed")
def regenerate(output_id: str, body: RegenerateRequest, request: Request, response: Response,
               svc: Svc, who: Caller) -> JobOut:
    """A new job owned by the caller, with the output's values; ``seed`` null → random.

    Another owner's (public) output is regenerated from its workflow and values only:
    403 when it was made from their input images or from a graph of their own, which
    stay theirs as they do in the image's served bytes. A raw graph gets the new seed in
    its seed inputs; 422 when it has none (it would make the same image)."""
    try:
        handle = svc.orch.regenerate_for(who, checked_name(output_id, "output id"),
                                         body.seed, bound=svc.queue_bound())
    except InputsNotShared as exc:
        raise Forbidden(str(exc), details={"output": exc.output_id,
                                           "inputs": exc.inputs}) from None
    out = job_out(svc, handle.get(), base_url(request))
    response.headers["Location"] = out.url
    return out


@router.delete("/v1/outputs/{output_id}", status_code=204, summary="Delete an output")
def delete_output(output_id: str, svc: Svc, who: Caller) -> Response:
    """The owner's (or, with an admin token, anyone's) output record goes; its bytes go
    too unless another output, a job's input image, a v2 asset or a gateway upload uses
    the same content. Another owner's output answers 404, public or not."""
    svc.orch.delete_output(who, checked_name(output_id, "output id"))
    return Response(status_code=204)


@router.get("/v1/gallery", response_model=OutputPageOut, tags=["gallery"],
            summary="A character's public gallery, or a conversation's private one")
def gallery(request: Request, svc: Svc, who: Caller, character: str | None = None,
            conversation: str | None = None, limit: Annotated[int, Query(ge=1)] = 50,
            cursor: str | None = None) -> OutputPageOut:
    """``?character=`` lists its public outputs for anyone; ``?conversation=`` lists the
    caller's outputs in that conversation (every owner's for an admin). Newest first."""
    if (character is None) == (conversation is None):
        raise InvalidRequest("give exactly one of ?character= and ?conversation=")
    page = svc.orch.gallery_for(who, character=character, conversation=conversation,
                                limit=min(limit, svc.settings.max_page_size), cursor=cursor)
    return OutputPageOut(outputs=_shown(page.outputs, base_url(request)),
                         next_cursor=page.next_cursor)
