"""Image placeholders (``%char_avatar%``, ``%user_avatar%``, any declared ``image``).

The caller hands PNG bytes; nothing here decodes or converts images. A whole-value image
placeholder becomes, depending on its mode:

- ``base64``: the bytes as a base64 string, for ``ETN_LoadImageBase64``-style inputs;
- ``upload``: an :class:`UploadRequest` marker. The dispatcher uploads ``data`` with
  ``/upload/image`` to the node it chose, then calls :func:`fill_uploads` with the filename
  the server returned, because a ``LoadImage`` input names a file in ComfyUI's input folder.

An image placeholder embedded in longer text is always written as base64 text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from placeholders.errors import MissingUpload
from placeholders.graph import Graph, Site, map_leaves


class ImageMode(StrEnum):
    """How an image placeholder is written into the graph."""

    AUTO = "auto"
    BASE64 = "base64"
    UPLOAD = "upload"


UPLOAD_INPUTS = frozenset({("LoadImage", "image"), ("LoadImageMask", "image")})
"""(class_type, input) pairs that name a file on the server, so ``auto`` uploads for them."""


@dataclass(frozen=True)
class UploadRequest:
    """Marker left in a rendered graph where an image must be uploaded first.

    ``filename_hint`` is derived from the content, so uploading the same image twice under
    that name is harmless.
    """

    placeholder: str
    data: bytes = field(repr=False)
    filename_hint: str


def upload_request(placeholder: str, data: bytes, sha256: str | None = None) -> UploadRequest:
    """The marker for ``data``, named ``<placeholder>-<sha256 prefix>.png``; ``sha256`` is
    the digest of ``data`` when the caller knows it already (saves hashing it again)."""
    digest = (sha256 or hashlib.sha256(data).hexdigest())[:16]
    return UploadRequest(placeholder, data, f"{placeholder}-{digest}.png")


def to_base64(data: bytes) -> str:
    """``data`` as standard base64 text without line breaks."""
    return base64.b64encode(data).decode("ascii")


def choose_mode(mode: ImageMode, site: Site) -> ImageMode:
    """Resolve ``auto`` for a whole-value placeholder at ``site``; other modes pass through."""
    if mode is not ImageMode.AUTO:
        return mode
    if (site.class_type, site.input_name) in UPLOAD_INPUTS:
        return ImageMode.UPLOAD
    return ImageMode.BASE64


def upload_requests(graph: Graph) -> tuple[UploadRequest, ...]:
    """The distinct upload markers in ``graph``, in order of first appearance."""
    seen: dict[UploadRequest, None] = {}
    for value in _leaves(graph):
        if isinstance(value, UploadRequest):
            seen.setdefault(value)
    return tuple(seen)


def fill_uploads(graph: Graph, filenames: Mapping[str, str]) -> dict[str, Any]:
    """A new graph with each upload marker replaced by ``filenames[marker.placeholder]``.

    ``filenames`` maps placeholder names to what ``/upload/image`` returned (subfolder
    included when the server used one, e.g. ``"sub/char_avatar-1a2b.png"``). Raises
    MissingUpload for a marker with no filename. The input graph is not mutated.
    """

    def fill(value: Any) -> Any:
        if not isinstance(value, UploadRequest):
            return value
        if value.placeholder not in filenames:
            raise MissingUpload(value.placeholder, sorted(filenames))
        return filenames[value.placeholder]

    return map_leaves(graph, fill)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value
