"""``/api/v2/assets``: upload (multipart), mint from a hash, probe a hash, read, delete,
and download with ``Range``.

An upload is checked completely (size, type, Pillow for images, ``expected_hash``) before
anything is stored. ``created_new`` and the status say whether the bytes were new to the
caller (201) or a dedup hit (200).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from orchestrator.settings import Settings
from orchestrator.tokens import Principal
from orchestrator.web.auth import Caller, caller
from orchestrator.web.content import (
    INLINE_MAX_BYTES,
    disposition,
    etag_of,
    file_chunks,
    parse_range,
)
from orchestrator.web.digits import parse_decimal
from orchestrator.web.routing import FastRoute
from orchestrator.web.schemas import base_url
from orchestrator.web.v2 import mapping, schemas
from orchestrator.web.v2.assets import (
    TAGS_MAX,
    AssetRecord,
    Assets,
    Upload,
    checked_file_path,
    checked_tags,
    checked_upload,
    parse_hash,
)
from orchestrator.web.v2.errors import InvalidBody, NotFound, response, v2_error
from orchestrator.web.v2.idempotency import checked_key

PUBLIC_VARIANT = "public"  # ETag suffix of the copy without embedded metadata, as /v1's
FORM_FIELDS = frozenset({"file", "content_type", "file_path", "expected_hash", "tags",
                         "expires_in"})
# The upload reads its own form (to check it whole before storing), so it is documented here.
_UPLOAD_DOC: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "content_type", "file_path"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "the bytes"},
            "content_type": {"type": "string", "description": "e.g. image/png"},
            "file_path": {"type": "string", "description": "the name graphs refer to"},
            "expected_hash": {"type": "string", "description": "blake3:<64 hex>"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "expires_in": {"type": "integer", "minimum": schemas.EXPIRES_IN_MIN,
                           "maximum": schemas.EXPIRES_IN_MAX},
        }}}}}}


def asset_body(record: AssetRecord, base: str, now: datetime) -> dict[str, Any]:
    return schemas.dump(schemas.Asset(
        id=record.id, hash=record.hash, size_bytes=record.size_bytes,
        content_type=record.content_type, file_path=record.file_path,
        created_new=record.created_new, created_at=record.created_at,
        url=mapping.content_url(base, record.id),
        url_expires_at=now + mapping.CONTENT_URL_TTL, expires_at=record.expires_at,
        job_id=record.job_id))


def add(router: APIRouter, assets: Assets, settings: Settings,
        now: Callable[[], datetime]) -> None:
    """Add the asset routes to ``router``, each a closure over its arguments."""

    @router.post("/assets", status_code=201, summary="Upload an asset (multipart)",
                 openapi_extra=_UPLOAD_DOC)
    async def upload(request: Request, who: Caller,
                     idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        checked_key(idempotency_key)  # a fresh key per upload: dedup does the rest
        # Room for more tags than allowed, so too many is refused by name (checked_tags).
        async with request.form(max_files=1, max_fields=len(FORM_FIELDS) + 16 * TAGS_MAX,
                                max_part_size=settings.max_body_bytes) as form:
            data, meta = await _read_upload(form, settings.max_upload_bytes)
        record = await run_in_threadpool(_store_upload, assets, who.owner, data, meta,
                                         settings.max_upload_bytes)
        status = 201 if record.created_new else 200
        return JSONResponse(asset_body(record, base_url(request), now()), status_code=status)

    @router.post("/assets/from-hash", status_code=201, summary="Mint an asset over known bytes")
    def from_hash(body: schemas.FromHashRequest, request: Request, who: Caller) -> JSONResponse:
        record, created = assets.store.from_hash(
            who.owner, parse_hash(body.hash),
            file_path=None if body.file_path is None else checked_file_path(body.file_path),
            tags=checked_tags(body.tags or ()), expires_in=body.expires_in)
        return JSONResponse(asset_body(record, base_url(request), now()),
                            status_code=201 if created else 200)

    @router.head("/assets/by-hash/{digest}", summary="Whether the caller has these bytes")
    def by_hash(digest: str, who: Caller) -> Response:
        if not assets.store.has_hash(who.owner, parse_hash(digest)):
            raise NotFound("no upload of yours has that hash")
        return Response(status_code=200)

    @router.get("/assets/{asset_id}", summary="An asset's record")
    def get_asset(asset_id: str, request: Request, who: Caller) -> dict[str, Any]:
        return asset_body(assets.get(who, asset_id), base_url(request), now())

    @router.delete("/assets/{asset_id}", status_code=204, summary="Delete an asset record")
    def delete_asset(asset_id: str, who: Caller) -> Response:
        """The record goes, and its bytes too unless another record uses the same content."""
        assets.delete(who, asset_id)
        return Response(status_code=204)

    @router.get("/assets/{asset_id}/content", summary="An asset's bytes (Range supported)",
                response_class=StreamingResponse)
    def content(asset_id: str, who: Caller,
                range: Annotated[str | None, Header()] = None) -> Response:
        return _content(assets, assets.get(who, asset_id), who, range)


def content_route(assets: Assets) -> FastRoute:
    """``GET /assets/{id}/content`` as a plain route (``routing.FastRoute``): an output's
    download is part of every v2 job. Failures leave in the v2 envelope, as ``V2Route``
    gives them."""

    async def content(request: Request) -> Response:
        try:
            _, who = caller(request)
            asset_id = request.path_params["asset_id"]
            range_header = request.headers.get("range")
            return await run_in_threadpool(
                lambda: _content(assets, assets.get(who, asset_id), who, range_header))
        except Exception as exc:  # noqa: BLE001 - every failure gets its v2 answer
            return response(v2_error(exc))

    return FastRoute("/api/v2/assets/{asset_id}/content", content, methods=["GET"])


async def _read_upload(form: FormData, max_bytes: int) -> tuple[bytes, Upload]:
    unknown = sorted(set(form.keys()) - FORM_FIELDS)
    if unknown:
        raise InvalidBody(f"unknown form field {unknown[0]!r}; the fields are "
                          f"{', '.join(sorted(FORM_FIELDS))}")
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise InvalidBody("form field 'file' (the bytes) is missing")
    data = await file.read(max_bytes + 1)
    return data, Upload(
        content_type=_text(form, "content_type"),
        file_path=checked_file_path(_text(form, "file_path")),
        expected_hash=_optional(form, "expected_hash"),
        tags=checked_tags(str(t) for t in form.getlist("tags")),
        expires_in=_expires_in(_optional(form, "expires_in")))


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidBody(f"form field {name!r} is missing")
    return value


def _optional(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


def _expires_in(text: str | None) -> int | None:
    if text is None:
        return None
    seconds = parse_decimal(text)
    if seconds is None or not schemas.EXPIRES_IN_MIN <= seconds <= schemas.EXPIRES_IN_MAX:
        raise InvalidBody(f"expires_in must be {schemas.EXPIRES_IN_MIN}-{schemas.EXPIRES_IN_MAX} "
                          f"seconds, got {text[:40]!r}")
    return seconds


def _store_upload(assets: Assets, owner: str, data: bytes, meta: Upload,
                  max_bytes: int) -> AssetRecord:
    """Check the upload whole, then store it (expired uploads are swept as files come)."""
    content_type = checked_upload(data, meta, max_bytes)
    return assets.store.upload(owner, data, meta, content_type)


def _content(assets: Assets, record: AssetRecord, who: Principal,
             range_header: str | None) -> Response:
    """The bytes (blocking: a worker thread); a small file read whole here, so sending
    it takes no further thread hop; a large one streamed."""
    path, public = assets.store.path(record, who)
    size = path.stat().st_size
    span = parse_range(range_header, size)
    first, last = span if span is not None else (0, size - 1)
    etag = etag_of(record.sha256, PUBLIC_VARIANT if public else "")
    headers = {"Accept-Ranges": "bytes", "ETag": etag,
               "Content-Length": str(max(last - first + 1, 0)),
               "Content-Disposition": disposition(record.file_path or record.id)}
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if size <= INLINE_MAX_BYTES:
        data = b"".join(file_chunks(path, first, last))
        if len(data) == max(last - first + 1, 0):  # else the file changed: stream it
            return Response(data, status_code=206 if span else 200,
                            media_type=record.content_type, headers=headers)
    return StreamingResponse(file_chunks(path, first, last), status_code=206 if span else 200,
                             media_type=record.content_type, headers=headers)
