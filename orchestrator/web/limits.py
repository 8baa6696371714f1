"""Request limits: body size, prompt length, uploads, and the request rates.

Each check raises an ``ApiError`` naming the limit and the value received, so the caller
knows what to change. Uploads are opened with Pillow before anything is stored: ComfyUI
itself keeps any bytes sent as an image.

The limits protect the GPUs, not the reads: the costly thing, images waiting for a node,
is bounded per owner and for the whole service by the core's admission (``QueueBound``;
``errors.py`` answers its ``QueueFull`` as 429 ``queue_full``); request bodies are metered
in bytes per owner; every other request draws on one generous bucket per token
(``Limits``), which a client polling every 100 ms, or ten of them, never empties. A 429
always says in its message the same whole number of seconds its ``Retry-After`` gives.
"""

from __future__ import annotations

import io
import json
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.settings import Settings
from orchestrator.tokens import Principal
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
# Seconds the settings' rates are given per (``rate_per_minute``, ``upload_bytes_per_minute``).
RATE_WINDOW_S = 60
# Scope key where ``BodyLimit`` leaves a request body's size, for ``body_bytes``.
BODY_BYTES_KEY = "orchestrator.body_bytes"

Clock = Callable[[], float]


class SharedRate(Protocol):
    """The façade's ``take_rate``: a bucket every replica draws on, or None in one process."""

    def __call__(self, key: str, amount: float, *, per_minute: float,
                 burst: int) -> float | None: ...


# --- body size ------------------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit before any route reads them.

    ``limit_for(content_type)`` gives the limit per request (multipart bodies carry files).
    A declared ``Content-Length`` is checked from the header (the HTTP server makes the
    body match it); a chunked body without one is read here up to the limit and replayed,
    so a route never sees a body it would have to refuse half-way. A request with neither
    header has no body (HTTP/1.1) and passes as it is: most requests (GETs, streams) cost
    this middleware no buffering.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind, declared, chunked = _body_headers(scope["headers"])
        if declared is None and not chunked:
            await self.app({**scope, BODY_BYTES_KEY: 0}, receive, send)
            return
        limit = self.limit_for(kind)
        if declared is not None:
            size = _declared_size(declared, limit)
            if size > limit:
                await _drain(receive, size)
                await _refuse(send, too_large("request body", size, limit))
                return
            await self.app({**scope, BODY_BYTES_KEY: size}, receive, send)
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
        await self.app({**scope, BODY_BYTES_KEY: size}, _replay(b"".join(chunks), receive),
                       send)


def _body_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None, bool]:
    """The ``Content-Type`` ("" when absent) and ``Content-Length`` of a request (the last
    of each when repeated), and whether it has a ``Transfer-Encoding`` (a chunked body),
    read without decoding every header: every request passes here."""
    kind, declared, chunked = "", None, False
    for name, value in headers:
        if len(name) == 12 and name.lower() == b"content-type":
            kind = value.decode("latin-1")
        elif len(name) == 14 and name.lower() == b"content-length":
            declared = value.decode("latin-1")
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            chunked = True
    return kind, declared, chunked


def _declared_size(declared: str, limit: int) -> int:
    """A ``Content-Length`` as a number; past ``limit`` when it is not plain ASCII digits
    (``str.isdigit`` also takes "²", which ``int`` refuses) or has too many of them."""
    if declared.isascii() and declared.isdigit() and len(declared.lstrip("0")) <= len(str(limit)):
        return int(declared)
    return limit + 1


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


# --- rate: requests and bytes ---------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: ``burst`` units at once, refilled at ``per_minute``.

    ``take(key, amount)`` returns 0 when the request may go ahead, else the seconds to wait.
    An amount over the burst is charged as the burst, so one request the body limit lets
    through never waits forever. The clock is a parameter so tests can move time by hand.
    With ``shared`` (replicas on one database), the bucket ``name:key`` is the database's,
    so a client spreading requests over replicas meets the same limit.
    """

    def __init__(self, per_minute: float, burst: int, *, clock: Clock = time.monotonic,
                 name: str = "", shared: SharedRate | None = None) -> None:
        self.name, self.shared = name, shared
        self.per_minute = per_minute
        self.rate = per_minute / RATE_WINDOW_S
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, amount: float = 1) -> float:
        amount = min(amount, self.burst)
        if self.shared is not None:
            wait = self.shared(f"{self.name}:{key}", amount, per_minute=self.per_minute,
                               burst=self.burst)
            if wait is not None:
                return wait
        with self._lock:
            now = self.clock()
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= amount:
                bucket.tokens -= amount
                return 0.0
            return (amount - bucket.tokens) / self.rate


class Limits:
    """What every authenticated request passes (``admit``), built from the settings.

    Reads are cheap, so requests share one generous bucket per token: it stops a runaway
    loop, never a client that polls. Event streams and sockets are never refused (a stream
    that reconnects mid-job is not new work). Request bodies (uploads, base64 avatars) are
    metered in bytes per owner. What costs GPU time is bounded where work is submitted
    (the core's admission), where the number of images is known.
    """

    def __init__(self, settings: Settings, *, clock: Clock = time.monotonic,
                 shared: SharedRate | None = None) -> None:
        self.requests = RateLimiter(settings.rate_per_minute, settings.rate_burst, clock=clock,
                                    name="requests", shared=shared)
        self.uploads = RateLimiter(settings.upload_bytes_per_minute,
                                   max(settings.upload_burst_bytes,
                                       settings.max_multipart_bytes), clock=clock,
                                   name="upload-bytes", shared=shared)

    def admit(self, who: Principal, *, body_bytes: int = 0, stream: bool = False) -> None:
        """Return when ``who`` may go ahead; raise 429 ``rate_limited`` otherwise."""
        if stream:
            return
        wait = self.requests.take(who.token_id)
        if wait:
            raise _over(self.requests, wait, "requests", f"token {who.token_id}")
        if body_bytes > 0:
            wait = self.uploads.take(who.owner, body_bytes)
            if wait:
                raise _over(self.uploads, wait, "bytes of request bodies", who.owner)


def _over(limiter: RateLimiter, wait: float, what: str, whose: str) -> TooManyRequests:
    limit = round(limiter.per_minute)
    return TooManyRequests(
        "rate_limited", f"{whose} sent more than {limit} {what} a minute (bursts of "
        f"{limiter.burst})", wait,
        details={"limit": limit, "window": RATE_WINDOW_S, "burst": limiter.burst,
                 "unit": what.split()[0]})


def body_bytes(scope: Scope) -> int:
    """The size of the request's body: as measured by ``BodyLimit``, else as declared."""
    measured = scope.get(BODY_BYTES_KEY)
    if isinstance(measured, int):
        return measured
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


def comfy_error_body(exc: TooManyRequests) -> dict[str, Any]:
    """A 429 body on the gateway, in ComfyUI's error shape.

    ComfyUI clients read ``error.type``, ``error.message`` and a text ``error.details``,
    and walk ``node_errors`` (the front end fails on a body without it), so they get
    those; our ``code`` rides along and the numbers (limit, window, retry_after) are in
    ``extra_info``.
    """
    details = dict(exc.details)
    return {"error": {"type": exc.code, "code": exc.code, "message": str(exc),
                      "details": f"retry after {details['retry_after']} s",
                      "extra_info": details},
            "node_errors": {}}
