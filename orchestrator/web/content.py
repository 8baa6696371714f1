"""Serving stored bytes over HTTP: ETags, conditional requests and byte ranges.

Parsing is pure; ``file_chunks`` and ``file_response`` are the only I/O. Blobs are
content-addressed, so the sha256 is a strong ETag that never goes stale.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi.responses import FileResponse, Response

from orchestrator.web.digits import clamped_decimal
from orchestrator.web.errors import RangeNotSatisfiable

CHUNK_BYTES = 64 * 1024
# Files up to this size are read whole and sent as one body: a streamed FileResponse hops
# to a worker thread for the stat, the open, every read and the close, which for a typical
# image costs far more than the read itself.
INLINE_MAX_BYTES = 2 * 1024 * 1024
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")


def etag_of(sha256: str, variant: str = "") -> str:
    return f'"{sha256}{"-" + variant if variant else ""}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` already names ``etag`` (weak comparison, as RFC 9110 says)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return etag in tags


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` byte positions (inclusive) asked for, or None for the whole file.

    Headers we do not serve (several ranges, other units) and malformed ones (positions
    that are not ASCII digits, as ``bytes=²-``) mean the whole file: RFC 9110 §14.2 lets a
    server ignore a Range, and a 200 with every byte is what any client can use. A
    well-formed range outside the file raises ``RangeNotSatisfiable`` (416), however many
    digits its first position has; a last position past the end is the end.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    first_text, dash, last_text = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or "," in spec or not dash:
        return None
    first, last = _position(first_text), _position(last_text)
    if first is None or last is None:
        return None
    if first_text == "":
        return _suffix(last if last_text else 0, size)
    end = min(last, size - 1) if last_text else size - 1
    if first >= size or (last_text and last < first):
        raise RangeNotSatisfiable(size)
    return first, end


def _position(text: str) -> int | None:
    """A byte position ("" reads as 0), capped past any file; None when malformed."""
    return 0 if text == "" else clamped_decimal(text)


def _suffix(length: int, size: int) -> tuple[int, int]:
    if length <= 0 or size == 0:
        raise RangeNotSatisfiable(size)
    return max(0, size - length), size - 1


def file_chunks(path: Path, first: int, last: int) -> Iterator[bytes]:
    """Bytes ``first``..``last`` (inclusive) of ``path``, in chunks."""
    left = last - first + 1
    with path.open("rb") as handle:
        handle.seek(first)
        while left > 0:
            chunk = handle.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def file_response(path: Path, *, media_type: str, headers: dict[str, str]) -> Response:
    """``path`` as a response: small files inline, larger ones streamed (with ranges).

    Blocks on the file system: call it from a plain ``def`` route (a worker thread).
    """
    stat = path.stat()
    if stat.st_size <= INLINE_MAX_BYTES:
        return Response(path.read_bytes(), media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers, stat_result=stat)


def disposition(filename: str) -> str:
    """An inline ``Content-Disposition`` with a name safe in any header."""
    return f'inline; filename="{_UNSAFE_FILENAME.sub("_", Path(filename).name) or "output"}"'
