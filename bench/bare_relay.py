"""A bare relay: ComfyUI's client routes passed through to one node, and nothing else.

    .venv/bin/python -m bench.bare_relay --node 127.0.0.1:8188 [--host 127.0.0.1] [--port 0]

``bench_cost.py`` runs ComfyUI's websocket example flow through this relay, interleaved
with the direct path and the service's faces, to show what any relay on the service's own
stack adds before durability, authentication, queueing and output storage: the gap
between the relay and a face is the service's own work; the gap between the relay and
direct is the floor of the added wall time on this machine.

It is built on what ``comfy-orch serve`` ships with - uvicorn with httptools and uvloop,
a plain Starlette app (no middleware), the ``websockets`` library - in a process of its
own, listening with ``TCP_NODELAY`` as the service does. It forwards ``POST /prompt``,
``GET /history/{prompt_id}``, ``GET /view`` and the ``/ws`` frames both ways, writes
nothing and hashes nothing. Requests to the node go over kept-alive connections through a
bare HTTP/1.1 client (asyncio streams, httptools' response parser), so the floor is the
stack's and not an HTTP client library's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from dataclasses import dataclass, field

import httptools
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect

READ_CHUNK = 65536


class UpstreamClosed(ConnectionError):
    """The node closed a kept-alive connection before answering on it."""


@dataclass
class Answer:
    """One HTTP answer from the node, as the relay passes it on."""

    status: int = 0
    content_type: str | None = None
    body: list[bytes] = field(default_factory=list)
    complete: bool = False

    # httptools' parser callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value.decode("latin-1")

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.complete = True


class Upstream:
    """Kept-alive HTTP/1.1 connections to one node: an idle one is reused, else one is
    opened, so concurrent requests never share a connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, target: str, body: bytes = b"",
                      content_type: str | None = None) -> Answer:
        """The node's answer to one request. A kept-alive connection the node closed in
        the meantime is dropped and the request sent once more on a new one (the node
        never saw it, so nothing runs twice)."""
        head = (f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Length: {len(body)}\r\n")
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        raw = head.encode("latin-1") + b"\r\n" + body
        while self._idle:
            reader, writer = self._idle.pop()
            with contextlib.suppress(UpstreamClosed, ConnectionError):
                return await self._exchange(reader, writer, raw)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(reader, writer, raw)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        raw: bytes) -> Answer:
        answer = Answer()
        parser = httptools.HttpResponseParser(answer)
        received = False
        try:
            writer.write(raw)
            while not answer.complete:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    raise UpstreamClosed("the node closed the connection")
                received = True
                parser.feed_data(chunk)
        except BaseException as exc:
            writer.close()
            if isinstance(exc, UpstreamClosed) and received:
                raise ConnectionError("the node closed the connection mid-answer") from exc
            raise
        answer.status = parser.get_status_code()
        if parser.should_keep_alive():
            self._idle.append((reader, writer))
        else:
            writer.close()
        return answer

    def close(self) -> None:
        """Close the idle connections."""
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class Relay:
    """The relay's routes in front of one node (``host:port``)."""

    def __init__(self, node: str) -> None:
        self.node = node
        host, _, port = node.rpartition(":")
        self.upstream = Upstream(host, int(port))

    async def prompt(self, request: Request) -> Response:
        body = await request.body()
        return passed(await self.upstream.request("POST", "/prompt", body,
                                                  request.headers.get("content-type")))

    async def history(self, request: Request) -> Response:
        return passed(await self.upstream.request(
            "GET", f"/history/{request.path_params['id']}"))

    async def view(self, request: Request) -> Response:
        query = request.url.query
        return passed(await self.upstream.request("GET", f"/view?{query}" if query
                                                  else "/view"))

    async def ws(self, client: WebSocket) -> None:
        """The node's socket for the same ``clientId``: its frames go down as they come,
        the client's go up, until the client leaves."""
        async with connect(f"ws://{self.node}/ws?{client.url.query}", compression=None,
                           max_size=None) as node_ws:
            await client.accept()
            frames = asyncio.create_task(_down(node_ws, client))
            try:
                while (message := await client.receive())["type"] != "websocket.disconnect":
                    await node_ws.send(message.get("text") or message.get("bytes") or b"")
            except WebSocketDisconnect:
                pass
            finally:
                frames.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await frames


async def _down(node_ws: ClientConnection, client: WebSocket) -> None:
    async for frame in node_ws:
        if isinstance(frame, str):
            await client.send_text(frame)
        else:
            await client.send_bytes(frame)


def passed(answer: Answer) -> Response:
    """The node's answer as the relay's: status, body and content type."""
    return Response(b"".join(answer.body), answer.status, media_type=answer.content_type)


def create_relay(node: str) -> Starlette:
    """The relay's app in front of ``node`` (``host:port``): four routes, no middleware."""
    relay = Relay(node)
    return Starlette(routes=[
        Route("/prompt", relay.prompt, methods=["POST"]),
        Route("/history/{id}", relay.history),
        Route("/view", relay.view),
        WebSocketRoute("/ws", relay.ws),
    ])


def listening(host: str, port: int) -> socket.socket:
    """A listening socket with ``TCP_NODELAY`` (accepted sockets inherit it), as the
    service binds its own: without it a small answer can wait for a delayed ACK."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def server(node: str) -> uvicorn.Server:
    """uvicorn as the service configures it (auto: httptools, uvloop, websockets), quiet."""
    return uvicorn.Server(uvicorn.Config(create_relay(node), log_level="warning",
                                         access_log=False, lifespan="off"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", required=True, help="the ComfyUI node, host:port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    sock = listening(args.host, args.port)
    print(f"relay to {args.node} on {sock.getsockname()[0]}:{sock.getsockname()[1]}",
          flush=True)
    server(args.node).run(sockets=[sock])


if __name__ == "__main__":
    main()
