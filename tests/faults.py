"""Faults a real ComfyUI never makes on demand: a TCP proxy that can silence its websocket.

The most reported production failure around ComfyUI is a websocket that goes silent for
good while the HTTP routes keep answering. ``FaultProxy`` sits on loopback between the
orchestrator and a real server: HTTP passes through untouched, and the server→client
bytes of websocket connections can be dropped (``freeze``: the connection stays open, the
client hears nothing) or held back (``delay``). Connections opened after a freeze pass
normally, as a reconnect to a healthy server would.

Threads, one pair per connection; ``close()`` (or leaving ``with``) stops every one.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

# The file in a server's base directory that slows its sleep node down (read by the test
# node pack, ``tests/comfy_nodes/nodes.py``, which cannot be imported outside ComfyUI).
SPEED_FACTOR_FILE = "orch_test_slowdown.txt"
# How long a pump waits in select() before it checks whether it should stop (seconds).
PUMP_POLL = 0.1
CHUNK = 65536


def _is_websocket_upgrade(head: bytes) -> bool:
    """Whether the first bytes a client sent open a websocket (``GET /ws?...`` + Upgrade)."""
    text = head.decode("latin-1").lower()
    return text.startswith("get ") and "upgrade: websocket" in text


@dataclass
class _Link:
    """One proxied connection: the client's socket, the server's, and its fault state."""

    client: socket.socket
    server: socket.socket
    websocket: bool = False
    frozen: bool = False
    delay: float = 0.0
    dropped: int = 0  # server→client bytes swallowed while frozen
    held: deque[tuple[float, bytes]] = field(default_factory=deque)

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    """A loopback proxy to ``target`` (``http://127.0.0.1:PORT``); ``url`` is its address."""

    def __init__(self, target: str) -> None:
        host_port = target.split("://", 1)[-1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(PUMP_POLL)
        self.port = self._listener.getsockname()[1]
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.websockets_opened = 0
        self._dropped_closed = 0  # bytes dropped on connections closed since (reconnects)
        self._delay = 0.0
        self._freeze_new = False
        self._spawn(self._accept_forever, "proxy-accept")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- faults ------------------------------------------------------------------------

    def freeze(self, *, new_too: bool = False) -> int:
        """Drop every server→client byte of the websockets open now; how many were frozen.
        ``new_too``: websockets opened later are frozen as soon as their handshake has
        passed (a node whose socket stays silent whatever the client does)."""
        with self._lock:
            self._freeze_new = self._freeze_new or new_too
            links = [link for link in self._links if link.websocket]
        for link in links:
            link.frozen = True
        return len(links)

    def delay(self, seconds: float) -> None:
        """Hold server→client websocket bytes ``seconds`` before passing them on (0: off);
        applies to open and future websocket connections."""
        self._delay = seconds
        with self._lock:
            for link in self._links:
                if link.websocket:
                    link.delay = seconds

    def dropped(self) -> int:
        """Server→client websocket bytes swallowed by freezes so far, on every connection,
        closed ones too (a reconnect must not hide what its frozen predecessor dropped)."""
        with self._lock:
            return self._dropped_closed + sum(link.dropped for link in self._links)

    def open_websockets(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if link.websocket)

    # --- plumbing ----------------------------------------------------------------------

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_forever(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            self._spawn(self._pump_up, "proxy-up", link)
            self._spawn(self._pump_down, "proxy-down", link)

    def _pump_up(self, link: _Link) -> None:
        """Client → server, unchanged; the first bytes tell whether it is a websocket."""
        first = True
        while not self._stop.is_set():
            data = self._read(link.client)
            if data is None:
                continue
            if not data:
                break
            if first and _is_websocket_upgrade(data):
                link.websocket, link.delay = True, self._delay
                with self._lock:
                    self.websockets_opened += 1
            first = False
            if not self._send(link.server, data):
                break
        self._forget(link)

    def _pump_down(self, link: _Link) -> None:
        """Server → client: dropped while frozen, held back while delayed."""
        while not self._stop.is_set():
            self._release_held(link)
            data = self._read(link.server)
            if data is None:
                continue
            if not data:
                break
            if link.frozen:
                link.dropped += len(data)
            elif link.delay > 0 or link.held:
                link.held.append((time.monotonic() + link.delay, data))
            elif not self._send(link.client, data):
                break
            elif link.websocket and self._freeze_new:
                link.frozen = True  # its handshake went through: nothing after it does
        self._forget(link)

    def _release_held(self, link: _Link) -> None:
        while link.held and link.held[0][0] <= time.monotonic():
            _, data = link.held.popleft()
            if not link.frozen:
                self._send(link.client, data)

    @staticmethod
    def _read(sock: socket.socket) -> bytes | None:
        """Bytes, ``b""`` at end of stream or on error, None when nothing came in time."""
        try:
            ready, _, _ = select.select([sock], [], [], PUMP_POLL)
            return sock.recv(CHUNK) if ready else None
        except (OSError, ValueError):
            return b""

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True

    def _forget(self, link: _Link) -> None:
        link.close()
        with self._lock:
            if link in self._links:
                self._links.remove(link)
                self._dropped_closed += link.dropped

    def close(self) -> None:
        """Stop accepting, close every connection and join every thread. Safe to repeat."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links, threads = list(self._links), list(self._threads)
        for link in links:
            link.close()
        for thread in threads:
            thread.join(PUMP_POLL * 20)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def set_slowdown(base_dir: Path, factor: float | None) -> None:
    """Make the sleep node of the server on ``base_dir`` take ``factor`` times longer
    (None: normal speed again); takes effect at its next run."""
    path = base_dir / SPEED_FACTOR_FILE
    if factor is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(f"{factor}\n")
