"""``GET /ws?clientId=``: one ComfyUI client's socket, fed by the hub.

On connect the client gets ``status`` (with its ``sid``) and, if one of its prompts runs,
the current ``executing``, as ComfyUI sends them. If its first message is
``{"type": "feature_flags", "data": {...}}`` the server answers with its own flags and, when
the client ``supports_preview_metadata``, sends previews as binary type 4 from then on.
A refused token is answered before the upgrade, in the service's error envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.web.errors import ApiError, envelope
from orchestrator.web.gateway import nodeinfo
from orchestrator.web.gateway.auth import TokenAuth, settings_of
from orchestrator.web.gateway.hub import Connection, queue_remaining
from orchestrator.web.gateway.relay import message, status_message

if TYPE_CHECKING:
    from orchestrator.web.gateway.prompts import Gateway

SocketEndpoint = Callable[[WebSocket], Awaitable[None]]


def socket_endpoint(gw: Gateway, auth: TokenAuth) -> SocketEndpoint:
    """The ``/ws`` endpoint over ``gw``'s hub."""

    async def endpoint(websocket: WebSocket) -> None:
        token = websocket.path_params.get("token") or websocket.headers.get("x-api-key")
        try:
            who = await run_in_threadpool(auth.authenticate, websocket.app, token,
                                          stream=True)
        except ApiError as exc:
            await _deny(websocket, exc)
            return
        await websocket.accept()
        client_id = websocket.query_params.get("clientId") or uuid.uuid4().hex
        conn = Connection((who.owner, client_id), asyncio.get_running_loop())
        gw.hub.bind(conn.loop)  # relays of the prompts it adopts run on this loop
        conn.queue.put_nowait(status_message(await run_in_threadpool(queue_remaining, gw.orch),
                                             sid=client_id))
        gw.hub.attach(conn)
        try:
            await run_in_threadpool(gw.adopt, who, client_id)
            for frame in gw.hub.resume_frames(conn.key):
                conn.queue.put_nowait(frame)
            features = nodeinfo.features(gw.orch, settings_of(websocket.app).max_upload_bytes)
            await _serve(websocket, conn, features)
        finally:
            gw.hub.detach(conn)

    return endpoint


async def _deny(websocket: WebSocket, exc: ApiError) -> None:
    env = envelope(exc)
    try:
        await websocket.send_denial_response(
            JSONResponse(env.body, status_code=env.status, headers=env.headers))
    except RuntimeError:  # the server cannot send an HTTP answer to an upgrade
        await websocket.close(code=1008, reason=str(exc)[:120])


async def _serve(websocket: WebSocket, conn: Connection, features: dict[str, Any]) -> None:
    """Write queued frames and read the client's messages until either side ends."""
    tasks = [asyncio.create_task(_write(websocket, conn)),
             asyncio.create_task(_read(websocket, conn, features))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def _write(websocket: WebSocket, conn: Connection) -> None:
    while (item := await conn.queue.get()) is not None:
        try:
            if isinstance(item, bytes):
                await websocket.send_bytes(item)
            else:
                await websocket.send_text(item)
        except Exception:  # the client went away mid-send (the framework raises several)
            return
    with contextlib.suppress(Exception):
        await websocket.close()  # replaced by a newer socket of the same client


async def _read(websocket: WebSocket, conn: Connection, features: dict[str, Any]) -> None:
    first = True
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            return
        if first:
            _negotiate(received.get("text"), conn, features)
        first = False


def _negotiate(text: str | None, conn: Connection, features: dict[str, Any]) -> None:
    """Honour a first ``feature_flags`` message; anything else the client says is ignored."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return
    if isinstance(data, dict) and data.get("type") == "feature_flags":
        flags = data.get("data")
        conn.previews_with_metadata = isinstance(flags, dict) and bool(
            flags.get("supports_preview_metadata"))
        conn.queue.put_nowait(message("feature_flags", features))
