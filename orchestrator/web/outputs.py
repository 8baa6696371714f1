"""``/v1/outputs`` and ``/v1/gallery``: output listing, metadata, bytes, thumbnails,
regenerate, delete.

A caller reads their own outputs and every public one, and deletes their own. Bytes are
served with the blob's sha256 as ETag (``If-None-Match`` → 304) and single byte ranges (206,
or 416 outside the file), so browsers cache them and video players can seek.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from orchestrator import embedded
from orchestrator.errors import JobNotFound, WorkflowNotFound
from orchestrator.jobs import Job
from orchestrator.outputs import THUMBNAIL_FORMAT, OutputRecord
from orchestrator.store import OutputPage
from orchestrator.tokens import Principal
from orchestrator.web import content
from orchestrator.web.auth import Caller, Services, Svc, visible_output
from orchestrator.web.body import JsonBodyRoute
from orchestrator.web.errors import Forbidden, InvalidRequest
from orchestrator.web.jobs import check_queue, job_out
from orchestrator.web.schemas import (
    JobOut,
    OutputOut,
    OutputPageOut,
    RegenerateRequest,
    base_url,
    checked_name,
)
from placeholders import CATALOG, ValueType

router = APIRouter(tags=["outputs"], route_class=JsonBodyRoute)

# Outputs never change (content-addressed), so clients may keep them; private: per token.
CACHE_CONTROL = "private, max-age=31536000, immutable"
PUBLIC_VARIANT = "public"  # ETag suffix of the copy without embedded metadata
THUMBNAIL_MIME = f"image/{THUMBNAIL_FORMAT.lower()}"
THUMBNAIL_DEFAULT = 256  # pixels, longest side


def _record(svc: Services, who: Principal, output_id: str) -> OutputRecord:
    return visible_output(svc.orch, who, checked_name(output_id, "output id"))


def _shown(svc: Services, who: Principal, records: list[OutputRecord], base: str
           ) -> list[OutputOut]:
    """Records as the caller may see them: another owner's without the image values
    (an avatar sent as base64 text) that made them; prompts and settings stay."""
    return [OutputOut.of(r if r.owner == who.owner else _without_images(svc, r), base)
            for r in records]


def _without_images(svc: Services, record: OutputRecord) -> OutputRecord:
    images = _image_placeholders(svc, record.workflow)
    return record.model_copy(update={"values": {
        name: value for name, value in record.values.items() if name not in images}})


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
    page = svc.orch.store.list_outputs(
        owner=owner, job_id=job, character=character, conversation=conversation,
        workflow=workflow, visible_to=None if who.admin else who.owner,
        limit=min(limit, svc.settings.max_page_size), cursor=cursor)
    return OutputPageOut(outputs=_shown(svc, who, page.outputs, base_url(request)),
                         next_cursor=page.next_cursor)


@router.get("/v1/outputs/{output_id}", response_model=OutputOut, summary="An output's metadata")
def get_output(output_id: str, request: Request, svc: Svc, who: Caller) -> OutputOut:
    """Another owner's output comes without the image values that made it."""
    return _shown(svc, who, [_record(svc, who, output_id)], base_url(request))[0]


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
    record = _record(svc, who, output_id)
    public = _public_variant(record, who)
    etag = content.etag_of(record.sha256, PUBLIC_VARIANT if public else "")
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes"}
    if content.not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    blobs = svc.orch.blobs
    path = blobs.public_copy(record.sha256, record.mime) if public else blobs.path(
        record.sha256)
    if not path.is_file():
        raise JobNotFound(output_id, what="output")
    size = path.stat().st_size
    span = content.parse_range(range, size)
    first, last = span or (0, size - 1)
    headers |= {"Content-Length": str(last - first + 1),
                "Content-Disposition": content.disposition(record.filename)}
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(content.file_chunks(path, first, last), media_type=record.mime,
                             status_code=206 if span else 200, headers=headers)


def _public_variant(record: OutputRecord, who: Principal) -> bool:
    """Whether the caller gets the copy without embedded metadata (not the owner, and the
    format has something to strip)."""
    return record.owner != who.owner and embedded.strippable(record.mime)


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
    path = svc.orch.blobs.thumbnail(record.sha256, size)
    if path is None:
        raise JobNotFound(output_id, what="thumbnail of output")
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
    record = _record(svc, who, output_id)
    job = svc.orch.get(record.job_id)
    if record.owner != who.owner:
        _refuse_private_inputs(svc, job, record)
    check_queue(svc, who.owner, job.spec.count)
    handle = svc.orch.regenerate(record.id, body.seed, owner=who.owner)
    out = job_out(svc, handle.get(), base_url(request))
    response.headers["Location"] = out.url
    return out


def _refuse_private_inputs(svc: Services, job: Job, record: OutputRecord) -> None:
    spec = job.spec
    if spec.graph is not None:
        raise Forbidden(
            f"output {record.id} was made from {record.owner}'s own graph, which is not "
            "shared; regenerate your own outputs, or submit a workflow with your values",
            details={"output": record.id, "inputs": ["graph"]})
    private = sorted(set(spec.images) | (set(spec.values) & _image_placeholders(
        svc, spec.workflow)))
    if private:
        raise Forbidden(
            f"output {record.id} was made from {record.owner}'s input images "
            f"({', '.join(private)}), which are not shared; submit workflow "
            f"{spec.workflow!r} with your own images instead",
            details={"output": record.id, "inputs": private})


def _image_placeholders(svc: Services, workflow: str | None) -> set[str]:
    """Names whose values are images: the built-in ones and those the workflow declares."""
    specs = list(CATALOG.values())
    registry = svc.orch.registry
    if workflow is not None and registry is not None:
        with contextlib.suppress(WorkflowNotFound):
            specs += registry.get(workflow).specs
    return {spec.name for spec in specs if spec.type == ValueType.IMAGE}


@router.delete("/v1/outputs/{output_id}", status_code=204, summary="Delete an output")
def delete_output(output_id: str, svc: Svc, who: Caller) -> Response:
    """The owner's (or, with an admin token, anyone's) output record goes; its bytes go
    too unless another output, a job's input image, a v2 asset or a gateway upload uses
    the same content. Another owner's output answers 404, public or not."""
    record = _record(svc, who, output_id)
    if not (who.admin or record.owner == who.owner):
        raise JobNotFound(output_id, what="output")
    svc.orch.store.delete_output(record.id)
    svc.orch.release_blob(record.sha256)
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
    limit = min(limit, svc.settings.max_page_size)
    page = _gallery_page(svc, who, character, conversation, limit, cursor)
    return OutputPageOut(outputs=_shown(svc, who, page.outputs, base_url(request)),
                         next_cursor=page.next_cursor)


def _gallery_page(svc: Services, who: Principal, character: str | None,
                  conversation: str | None, limit: int, cursor: str | None) -> OutputPage:
    store = svc.orch.store
    if character is not None:
        return store.gallery_character(character, limit=limit, cursor=cursor)
    assert conversation is not None
    if who.admin:
        return store.list_outputs(conversation=conversation, limit=limit, cursor=cursor)
    return store.gallery_conversation(conversation, who.owner, limit=limit, cursor=cursor)
