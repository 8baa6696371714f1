"""One websocket per node, shared by every prompt we run there.

Opening a socket per prompt costs a handshake on every image. Instead each node gets one
long-lived socket with a client id of this process; every prompt is posted with that
client id, and a reader thread routes each message to the watcher of its prompt. Preview
frames that carry no prompt id belong to the prompt the node is running.

The socket reconnects by itself after a drop (with growing pauses). Messages sent while
it was down are lost; watchers notice the silence and ask ``/history`` instead. A prompt
posted by a previous process (a different client id) is followed the same way.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
import uuid

import websocket

from orchestrator.comfy import frames
from orchestrator.comfy.messages import (
    Executing,
    ExecutionStart,
    Message,
    Preview,
    parse_message,
)
from orchestrator.errors import NodeProtocolError

# Timeouts (seconds)
CONNECT_TIMEOUT = 10.0
RECV_POLL = 1.0             # how often the reader checks whether it should stop
RECONNECT_PAUSES = (0.2, 0.5, 1.0, 2.0, 5.0)  # then 5 s between tries


# Bytes asked of the socket per read: a prompt's burst of small messages in one call.
READ_CHUNK = 65536


class BufferedWebSocket(websocket.WebSocket):
    """websocket-client asking the socket for whole chunks.

    Left alone, it asks for a frame's header, its length and its body separately: two or
    three system calls (each with a poll for the timeout) per frame, and a trivial prompt
    sends a dozen frames. Its frame buffer keeps whatever a read brings beyond the frame it
    wanted, so asking for more is safe and the next frames come without a system call.
    """

    def _recv(self, bufsize: int) -> bytes:
        data: bytes = super()._recv(max(bufsize, READ_CHUNK))  # type: ignore[no-untyped-call]
        return data


class EventFrames:
    """The messages of an open event socket, split by ``frames.Incoming`` from the bytes
    of its socket rather than by websocket-client's per-frame Python.

    ``recv`` answers a text frame as ``str`` and a binary one as ``bytes``, as
    ``WebSocket.recv`` does; it answers a ping with a pong and raises
    ``WebSocketConnectionClosedException`` on a close or a dropped socket, and the
    socket's timeout as ``TimeoutError`` (a partial frame is kept for the next call).
    """

    def __init__(self, ws: websocket.WebSocket) -> None:
        if ws.sock is None:
            raise websocket.WebSocketConnectionClosedException("the socket was closed")
        self.ws, self.sock = ws, ws.sock
        self._incoming = frames.Incoming()
        self._ready: list[tuple[int, bytes]] = []

    def recv(self) -> str | bytes:
        while True:
            while self._ready:
                opcode, payload = self._ready.pop(0)
                if opcode == frames.TEXT:
                    return payload.decode()
                if opcode == frames.BINARY:
                    return payload
                if opcode == frames.PING:
                    self.ws.pong(payload)
                elif opcode == frames.CLOSE:
                    raise websocket.WebSocketConnectionClosedException("the node closed it")
            data = self.sock.recv(READ_CHUNK)
            if not data:
                raise websocket.WebSocketConnectionClosedException("the socket was closed")
            try:
                self._ready = self._incoming.feed(data)
            except frames.BadFrame as exc:
                raise websocket.WebSocketProtocolException(str(exc)) from exc


def open_event_socket(url: str, client_id: str, *, connect_timeout: float,
                      poll: float) -> websocket.WebSocket:
    """ComfyUI's ``/ws`` for ``client_id``, asking for previews tagged with their prompt id
    (binary event 4); reads time out after ``poll`` seconds so readers can check for a stop.

    UTF-8 is checked when a text frame is decoded, not again byte by byte in Python:
    websocket-client's own check costs more than everything else we do per message.
    """
    ws_url = "ws" + url[len("http"):] + f"/ws?clientId={client_id}"
    ws = websocket.create_connection(ws_url, timeout=connect_timeout,
                                     skip_utf8_validation=True, class_=BufferedWebSocket)
    ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    ws.settimeout(poll)
    return ws


class NodeStream:
    """The shared event socket of one node; thread-safe; ``close()`` stops it."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.client_id = f"orch-{uuid.uuid4().hex}"
        # SimpleQueue (C) rather than Queue (Python, a Condition per call): ~8 us less CPU
        # per message handed from the reader to a prompt's watcher.
        self._queues: dict[str, queue.SimpleQueue[Message]] = {}
        self._lock = threading.Lock()
        self._running: str | None = None
        self._closed = threading.Event()
        self._connected = threading.Event()
        # For the pool's watchdog: when the last frame came, how often the socket was
        # opened, and the socket itself so a silent one can be cut (``reconnect``).
        self.last_frame = time.monotonic()
        self.connects = 0
        self._ws: websocket.WebSocket | None = None
        self._thread = threading.Thread(target=self._read_forever, name=f"ws {self.url}",
                                        daemon=True)
        self._thread.start()

    def subscribe(self, prompt_id: str) -> queue.SimpleQueue[Message]:
        """A queue receiving every message of ``prompt_id`` from now on."""
        with self._lock:
            return self._queues.setdefault(prompt_id, queue.SimpleQueue())

    def unsubscribe(self, prompt_id: str) -> None:
        with self._lock:
            self._queues.pop(prompt_id, None)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def reconnect(self) -> None:
        """Cut the socket (it may be open but silent); the reader opens a new one at once.
        ComfyUI then resends the running prompt's ``executing`` to it."""
        self._cut()

    def close(self) -> None:
        """Stop the reader: its socket is cut, so a reader waiting for a frame stops now,
        not at the end of its poll (a pool closing many nodes waited a second on each)."""
        self._closed.set()
        self._cut()
        self._thread.join(RECV_POLL + CONNECT_TIMEOUT)

    def _cut(self) -> None:
        ws = self._ws
        if ws is not None and ws.sock is not None:
            with contextlib.suppress(OSError):
                ws.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv() now

    # --- the reader thread -------------------------------------------------------------------

    def _read_forever(self) -> None:
        tries = 0
        while not self._closed.is_set():
            ws = self._connect()
            if ws is None:
                pause = RECONNECT_PAUSES[min(tries, len(RECONNECT_PAUSES) - 1)]
                tries += 1
                self._closed.wait(pause)
                continue
            tries = 0
            self._ws, self.last_frame = ws, time.monotonic()
            self.connects += 1
            self._connected.set()
            try:
                self._read(ws)
            finally:
                self._ws = None
                self._connected.clear()
                with contextlib.suppress(Exception):
                    ws.close()

    def _connect(self) -> websocket.WebSocket | None:
        try:
            return open_event_socket(self.url, self.client_id, connect_timeout=CONNECT_TIMEOUT,
                                     poll=RECV_POLL)
        except (websocket.WebSocketException, OSError):
            return None

    def _read(self, ws: websocket.WebSocket) -> None:
        incoming = EventFrames(ws)
        while not self._closed.is_set():
            try:
                frame = incoming.recv()
            except TimeoutError:
                continue
            except UnicodeDecodeError:
                continue  # a text frame that is not UTF-8: unreadable, like bad JSON
            except (websocket.WebSocketException, OSError):
                return  # dropped: reconnect
            self.last_frame = time.monotonic()
            try:
                self._route(parse_message(frame))
            except NodeProtocolError:
                continue  # a frame we cannot read is not worth the socket

    def _route(self, msg: Message) -> None:
        prompt_id = msg.prompt_id
        if isinstance(msg, ExecutionStart):
            self._running = prompt_id
        elif isinstance(msg, Preview) and prompt_id is None:
            prompt_id = self._running
        elif isinstance(msg, Executing) and msg.node is None and prompt_id == self._running:
            self._running = None
        if prompt_id is None:
            return
        with self._lock:
            target = self._queues.get(prompt_id)
        if target is not None:
            target.put(msg)
