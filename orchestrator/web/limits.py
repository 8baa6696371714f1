"""Request limits: body size, prompt length, uploads, and a per-token rate.

Each check raises an ``ApiError`` naming the limit and the value received, so the caller
knows what to change. Uploads are opened with Pillow before anything is stored: ComfyUI
itself keeps any bytes sent as an image.
"""

from __future__ import annotations

import io
import json
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PIL import Image
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.web.errors import (
    PayloadTooLarge,
    PromptTooLong,
    TooManyRequests,
    UnsupportedMedia,
    envelope,
)

PROMPT_KEYS = ("prompt", "negative_prompt")
# Formats an input image may have; what ComfyUI's loaders and Pillow both read.
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"})

# A refused body up to this size is read and dropped before answering (see ``_drain``).
DRAIN_MAX_BYTES = 256 * 1024 * 1024
# Seconds a client is told to wait when the queue is full; a few images' worth of work.
QUEUE_FULL_RETRY_S = 30

Clock = Callable[[], float]


# --- body size ------------------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit before any route reads them.

    ``limit_for(content_type)`` gives the limit per request (multipart bodies carry files).
    A declared ``Content-Length`` is checked from the header (the HTTP server makes the
    body match it); a chunked body without one is read here up to the limit and replayed,
    so a route never sees a body it would have to refuse half-way.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.limit_for(headers.get("content-type", ""))
        declared = headers.get("content-length")
        if declared is not None:
            size = int(declared) if declared.isdigit() else limit + 1
            if size > limit:
                await _drain(receive, size)
                await _refuse(send, too_large("request body", size, limit))
                return
            await self.app(scope, receive, send)
            return
        await self._buffered(scope, receive, send, limit)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await _refuse(send, too_large("request body", size, limit))
                return
        await self.app(scope, _replay(b"".join(chunks), receive), send)


async def _drain(receive: Receive, declared: int) -> None:
    """Read and drop a refused body, so the client is not cut off while still sending
    (it would see a reset instead of our answer); huge bodies are cut off anyway."""
    if declared > DRAIN_MAX_BYTES:
        return
    more = True
    while more:
        message = await receive()
        more = message["type"] == "http.request" and message.get("more_body", False)


def too_large(what: str, size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is {size} bytes; the limit is {limit} bytes",
                           details={"limit": limit, "received": size})


def _replay(data: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: wait for the disconnect as usual
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return replay


async def _refuse(send: Send, exc: PayloadTooLarge) -> None:
    env = envelope(exc)
    payload = json.dumps(env.body).encode()
    await send({"type": "http.response.start", "status": env.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


# --- values and uploads ----------------------------------------------------------------------


def check_prompts(values: Mapping[str, object], max_chars: int) -> None:
    """Refuse a ``prompt`` or ``negative_prompt`` longer than ``max_chars`` characters."""
    for key in PROMPT_KEYS:
        text = values.get(key)
        if isinstance(text, str) and len(text) > max_chars:
            raise PromptTooLong(f"values.{key} is {len(text)} characters; the limit is "
                                f"{max_chars}; shorten it",
                                details={"field": f"values.{key}", "limit": max_chars,
                                         "received": len(text)})


def check_image(name: str, data: bytes, max_bytes: int) -> bytes:
    """``data`` if it is an image of an allowed format within ``max_bytes``, else raise."""
    if len(data) > max_bytes:
        raise too_large(f"upload {name!r}", len(data), max_bytes)
    fmt = _image_format(data)
    if fmt not in IMAGE_FORMATS:
        raise UnsupportedMedia(f"upload {name!r} is not an image ({fmt or 'unreadable'}); "
                               f"send one of {', '.join(sorted(IMAGE_FORMATS))}",
                               details={"field": name})
    return data


def _image_format(data: bytes) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.verify()  # reads the whole file: truncated or corrupt data fails here
                return image.format
    except Exception:  # Pillow raises many types for bad data; all mean "not an image"
        return None


def check_queue(queued: int, count: int, max_queued: int) -> None:
    """Refuse ``count`` more images when ``queued`` already wait and the bound is reached."""
    if queued + count > max_queued:
        raise TooManyRequests("queue_full", f"{queued} images are waiting, the most this "
                              f"service queues is {max_queued}; retry later",
                              QUEUE_FULL_RETRY_S)


# --- rate ----------------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute``.

    ``take(key)`` returns 0 when the request may go ahead, else the seconds to wait.
    The clock is a parameter so tests can move time by hand.
    """

    def __init__(self, per_minute: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        with self._lock:
            now = self.clock()
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate
