"""HTTP/1.1 to a plain ``http://`` node over kept-alive sockets, without urllib3.

urllib3 over ``http.client`` spends most of a small call's CPU outside the round trip:
building the request through several layers, then parsing the answer's head with the
``email`` package (a ``FeedParser`` per answer). A node's answers are small and plain
(aiohttp: a status line, a dozen headers, a ``Content-Length`` or chunked body), so the
head is split as bytes here and the request goes out in one ``send``.

Only what a direct connection needs: no TLS, no proxy (``NodeHTTP`` keeps urllib3 for
those). Failures are this module's three exceptions; ``translate`` maps them to the node
errors urllib3's would have become.

A kept-alive socket may have been closed by the node while it sat idle. Before reuse it
is checked (a closed socket reads as readable); if it still fails before any byte of the
answer came, an idempotent ``GET`` is sent once more on a new connection. Nothing else is
ever re-sent: a ``POST /prompt`` that may have reached the node is for the caller to look
up, not to post twice.
"""

from __future__ import annotations

import select
import socket
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

MAX_HEAD = 65536          # bytes an answer's status line and headers may take
READ_CHUNK = 65536        # bytes asked of the socket per read
KEEP_IDLE = 15.0          # seconds an idle socket is kept (aiohttp closes after 75)
RETRIED = frozenset({"GET", "HEAD"})  # methods sent again after a stale socket
_NO_BODY = frozenset({204, 304})


class NodeSilent(Exception):
    """The node did not connect or answer within the timeout."""


class NodeHungUp(ConnectionError):
    """The node closed the connection before a whole answer came."""


class MalformedAnswer(Exception):
    """What came back is not HTTP/1.x."""


class NothingCame(NodeHungUp):
    """The connection failed before any byte of the answer: on a kept-alive socket, the
    node may have closed it while idle."""


class Headers(Mapping[str, str]):
    """An answer's headers; names are matched without regard to case."""

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # lowercase names

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


@dataclass(frozen=True)
class Head:
    """An answer's status line and headers, parsed."""

    status: int
    headers: Headers
    keep_alive: bool  # HTTP/1.1 without ``Connection: close``


# --- the pure part: bytes in, values out -----------------------------------------------------

def request_bytes(method: str, target: str, host: str, headers: Mapping[str, str],
                  body: bytes | None) -> bytes:
    """One request, head and body, ready for a single ``send``."""
    lines = [f"{method} {_quoted(target)} HTTP/1.1", f"Host: {host}",
             "Accept-Encoding: identity", "User-Agent: comfy-orch"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None or method not in RETRIED:
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


def _quoted(target: str) -> str:
    """``target`` with what may not appear raw in a request line percent-encoded."""
    if target.isascii() and target.isprintable() and " " not in target:
        return target
    return urllib.parse.quote(target, safe="/?&=%:@!$'()*+,;~-._")


def parse_head(raw: bytes) -> Head:
    """The status line and headers (``raw`` without the blank line that ends them)."""
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise MalformedAnswer(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise MalformedAnswer(f"not a header line: {line[:80]!r}")
        key, value = name.strip().lower(), value.strip()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
    keep_alive = version == "HTTP/1.1" and "close" not in tokens
    return Head(int(code), Headers(fields), keep_alive)


def body_length(head: Head, method: str) -> int | None:
    """How many body bytes follow the head: a number, ``-1`` for chunked, None for "until
    the node closes"."""
    if method == "HEAD" or head.status in _NO_BODY or head.status < 200:
        return 0
    if "chunked" in head.headers.get("transfer-encoding", "").lower():
        return -1
    length = head.headers.get("content-length")
    if length is None:
        return None
    if not length.strip().isdigit():
        raise MalformedAnswer(f"a Content-Length that is not a number: {length[:40]!r}")
    return int(length)


def chunk_size(line: bytes) -> int:
    """The size a chunked body's size line announces (extensions ignored)."""
    text = line.split(b";", 1)[0].strip()
    try:
        return int(text, 16)
    except ValueError:
        raise MalformedAnswer(f"not a chunk size: {text[:40]!r}") from None


# --- the shell: sockets ----------------------------------------------------------------------

class _Reader:
    """Buffered reads of one answer from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.got_any = sock, bytearray(), False

    def _fill(self) -> bool:
        data = self.sock.recv(READ_CHUNK)
        if not data:
            return False
        self.got_any = True
        self.buf += data
        return True

    def until(self, mark: bytes, limit: int) -> bytes:
        """The bytes before ``mark`` (consumed, with ``mark``)."""
        while (end := self.buf.find(mark)) < 0:
            if len(self.buf) > limit:
                raise MalformedAnswer(f"more than {limit} bytes without a line end")
            if not self._fill():
                raise NodeHungUp("the node closed the connection before answering")
        found = bytes(self.buf[:end])
        del self.buf[:end + len(mark)]
        return found

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise NodeHungUp("the node closed the connection in the middle of an answer")
        found = bytes(self.buf[:size])
        del self.buf[:size]
        return found

    def to_close(self) -> bytes:
        while self._fill():
            pass
        found = bytes(self.buf)
        self.buf.clear()
        return found

    def chunked(self) -> bytes:
        parts = []
        while size := chunk_size(self.until(b"\r\n", MAX_HEAD)):
            parts.append(self.exactly(size))
            self.exactly(2)  # the CRLF after each chunk
        while self.until(b"\r\n", MAX_HEAD):
            pass  # trailers, up to the blank line
        return b"".join(parts)


@dataclass(frozen=True)
class Reply:
    """One answer read whole."""

    status: int
    headers: Headers
    body: bytes


class KeptAlive:
    """HTTP/1.1 calls to ``host:port`` over a few kept-alive sockets; thread-safe.

    ``timeout`` bounds the connect and then each wait for the node's bytes, as urllib3's
    ``Timeout(total=...)`` does. Each call takes an idle socket (or opens one) for itself
    and gives it back when the answer was read whole and the node keeps it open.
    """

    def __init__(self, host: str, port: int, *, host_header: str, keep: int) -> None:
        self.address, self.host_header, self.keep = (host, port), host_header, keep
        self._idle: list[tuple[socket.socket, float]] = []
        self._lock = threading.Lock()
        self._closed = False
        # A client dropped without close() closes its idle sockets when collected.
        weakref.finalize(self, _close_all, self._idle)

    def request(self, method: str, target: str, headers: Mapping[str, str],
                body: bytes | None, timeout: float) -> Reply:
        data = request_bytes(method, target, self.host_header, headers, body)
        sock, reused = self._take(timeout)
        try:
            return self._exchange(sock, data, method, timeout)
        except NothingCame:
            if not reused or method not in RETRIED:
                raise
        fresh, _ = self._take(timeout, reuse=False)  # a stale socket: once more, anew
        return self._exchange(fresh, data, method, timeout)

    def _exchange(self, sock: socket.socket, data: bytes, method: str,
                  timeout: float) -> Reply:
        reader = _Reader(sock)
        try:
            sock.settimeout(timeout)
            sock.sendall(data)
            reply, reusable = self._read(reader, method)
        except TimeoutError as exc:
            _close(sock)
            raise NodeSilent("timed out") from exc
        except ConnectionError as exc:
            _close(sock)
            if reader.got_any:
                raise
            raise NothingCame(str(exc) or type(exc).__name__) from exc
        except BaseException:
            _close(sock)
            raise
        if reusable:
            self._give_back(sock)
        else:
            _close(sock)
        return reply

    def _read(self, reader: _Reader, method: str) -> tuple[Reply, bool]:
        while True:
            head = parse_head(reader.until(b"\r\n\r\n", MAX_HEAD))
            if head.status >= 200:
                break  # a 1xx before the answer (100 Continue) is skipped
        length = body_length(head, method)
        if length is None:
            return Reply(head.status, head.headers, reader.to_close()), False
        body = reader.chunked() if length < 0 else reader.exactly(length)
        return Reply(head.status, head.headers, body), head.keep_alive and not reader.buf

    def _take(self, timeout: float, *, reuse: bool = True) -> tuple[socket.socket, bool]:
        """An idle socket still open, else a new one; and whether it was reused."""
        now = time.monotonic()
        while reuse:
            with self._lock:
                if not self._idle:
                    break
                sock, since = self._idle.pop()
            if now - since < KEEP_IDLE and not _readable(sock):
                return sock, True
            _close(sock)  # closed by the node (or about to be): readable means EOF
        try:
            sock = socket.create_connection(self.address, timeout=timeout)
        except TimeoutError as exc:
            raise NodeSilent("timed out while connecting") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, False

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.keep:
                self._idle.append((sock, time.monotonic()))
                return
        _close(sock)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            _close_all(self._idle)


def _readable(sock: socket.socket) -> bool:
    """Whether an idle socket has something to read: the node's close (or stray bytes).

    ``poll`` where there is one: ``select`` refuses descriptors past 1024, which a busy
    service holding many client connections reaches."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


def _close_all(idle: list[tuple[socket.socket, float]]) -> None:
    while idle:
        _close(idle.pop()[0])


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
