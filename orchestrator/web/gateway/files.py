"""``/view`` and ``/upload/image``: files by ComfyUI's (filename, subfolder, type) address.

``/view`` serves the caller's outputs under the names the gateway gave them
(``<output id>.<ext>``, type ``output``) and the caller's own uploads; never a path on
disk, so no name can reach outside. Bad names answer as ComfyUI does: 400 for a filename
with ``..`` or a leading ``/``, 403 for a subfolder that leaves its folder, 404 otherwise.
Uploads are opened with Pillow before anything is stored.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import NotFound
from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal
from orchestrator.web.errors import Forbidden, InvalidRequest
from orchestrator.web.gateway.history import parse_output_filename
from orchestrator.web.gateway.uploads import (
    KINDS,
    Upload,
    UploadStore,
    is_image,
    mime_of,
    safe_name,
    safe_subfolder,
)
from orchestrator.web.limits import too_large

_ANNOTATIONS = {"[output]": "output", "[input]": "input", "[temp]": "temp"}


@dataclass(frozen=True)
class Found:
    """A file to send: where the façade keeps its bytes for this caller (another
    owner's output: the copy without embedded metadata) and how to present it."""

    path: Path
    filename: str
    mime: str


def annotated(name: str) -> tuple[str, str | None]:
    """ComfyUI's ``name [output]`` form: the bare name and the folder type it names."""
    for suffix, kind in _ANNOTATIONS.items():
        if name.endswith(suffix):
            return name[:-len(suffix)].rstrip(" "), kind
    return name, None


def view_address(query: dict[str, str]) -> Upload:
    """The (type, subfolder, name) a ``/view`` query asks for; 400/403/404 as ComfyUI."""
    if "filename" not in query:
        raise NotFound("file", "")
    name, kind = annotated(query["filename"])
    if not name or name.startswith("/") or ".." in name:
        raise InvalidRequest(f"filename {name!r} is not allowed: no '..' and no leading '/'")
    kind = kind or query.get("type") or "output"
    if kind not in KINDS:
        raise InvalidRequest(f"type {kind!r} is not one of {', '.join(sorted(KINDS))}")
    subfolder = safe_subfolder(query.get("subfolder", ""))
    if subfolder is None:
        raise Forbidden(f"subfolder {query.get('subfolder')!r} leaves the {kind} folder")
    return Upload(kind, subfolder, posixpath.basename(name))


def find(orch: Orchestrator, uploads: UploadStore, who: Principal, where: Upload) -> Found:
    """The caller's output or upload at ``where``; ``NotFound`` when there is none."""
    output = _output(orch, who, where) if where.kind == "output" and not where.subfolder \
        else None
    if output is not None:
        return output
    file = uploads.find(who, where)
    return Found(orch.input_path(file), where.name, mime_of(where.name))


def _output(orch: Orchestrator, who: Principal, where: Upload) -> Found | None:
    parsed = parse_output_filename(where.name)
    if parsed is None:
        return None
    try:
        record = orch.output_for(who, parsed[0])
    except NotFound:  # unknown, or another owner's private output: the same to the caller
        return None
    if not record.filename.endswith(parsed[1]):
        return None
    return Found(orch.output_file(who, record).path, where.name, record.mime)


def upload(orch: Orchestrator, uploads: UploadStore, who: Principal, form: dict[str, Any],
           data: bytes | None, *, max_bytes: int) -> dict[str, str]:
    """Store an uploaded image; ``{name, subfolder, type}`` with the name it got.

    Raises ``InvalidRequest`` (no file, a bad name or subfolder, not an image) or
    ``PayloadTooLarge`` before anything is stored.
    """
    filename = form.get("filename")
    if data is None or not filename:
        raise InvalidRequest("send the image as the multipart file field 'image'")
    where = _upload_address(str(filename), form)
    if len(data) > max_bytes:
        raise too_large(f"upload {where.name!r}", len(data), max_bytes)
    if not is_image(data):
        raise InvalidRequest(f"upload {where.name!r} is not an image Pillow can read; "
                             "nothing was stored")
    saved = uploads.save(who, where, data, overwrite=_truthy(form.get("overwrite")))
    return {"name": saved.name, "subfolder": saved.subfolder, "type": saved.kind}


def _upload_address(filename: str, form: dict[str, Any]) -> Upload:
    kind = str(form.get("type") or "input")
    if kind not in KINDS:
        raise InvalidRequest(f"type {kind!r} is not one of {', '.join(sorted(KINDS))}")
    name = safe_name(filename)
    subfolder = safe_subfolder(str(form.get("subfolder") or ""))
    if name is None or subfolder is None:
        raise InvalidRequest(f"upload name {filename!r} in subfolder "
                             f"{form.get('subfolder')!r} would leave the {kind} folder")
    return Upload(kind, subfolder, name)


def _truthy(value: Any) -> bool:
    return str(value) in ("true", "1")
