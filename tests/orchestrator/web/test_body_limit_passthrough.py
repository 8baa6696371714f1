"""``BodyLimit`` buffers only requests that carry a body: one without ``Content-Length``
or ``Transfer-Encoding`` (a GET, an event stream) reaches the route with the server's own
``receive``, and a chunked one is still read, measured and replayed."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from orchestrator.web.limits import BODY_BYTES_KEY, BodyLimit


async def _server_receive() -> Message:
    return {"type": "http.request", "body": b"abc", "more_body": False}


async def _send(message: Message) -> None:
    raise AssertionError(f"nothing should be sent by the middleware: {message}")


def _reached(headers: list[tuple[bytes, bytes]]) -> tuple[Scope, Receive]:
    seen: list[tuple[Scope, Receive]] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive))

    scope: Scope = {"type": "http", "headers": headers}
    asyncio.run(BodyLimit(route, lambda kind: 100)(scope, _server_receive, _send))
    return seen[0]


def test_a_request_without_a_body_passes_unbuffered() -> None:
    scope, receive = _reached([(b"accept", b"text/event-stream")])
    assert receive is _server_receive
    assert scope[BODY_BYTES_KEY] == 0


def test_a_chunked_request_is_still_read_and_replayed() -> None:
    scope, receive = _reached([(b"transfer-encoding", b"chunked")])
    assert receive is not _server_receive
    assert scope[BODY_BYTES_KEY] == 3

    async def first() -> Message:
        return await receive()

    assert asyncio.run(first())["body"] == b"abc"
