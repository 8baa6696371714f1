"""Plain HTTP to a node: the kept-alive HTTP/1.1 path against a real ComfyUI, and its edge
cases (chunked bodies, a node closing kept-alive sockets, slow heads, error answers)
against a scripted loopback server that writes exactly the bytes each case needs."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from orchestrator.comfy import http11
from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.http import NodeHTTP
from orchestrator.errors import NodeProtocolError, NodeTimeout, NodeUnreachable
from tests import graphs

# Given the request (head and body) and how many came before it on its connection, the
# bytes to answer with; None closes the connection without answering.
Script = Callable[[bytes, int], bytes | None]


class ScriptedServer:
    """A loopback HTTP server that answers each request with what ``script`` says and
    records every request and connection; for the cases a real node will not make."""

    def __init__(self, script: Script, hang_up_after: int | None = None) -> None:
        self.script, self.hang_up_after = script, hang_up_after
        self.hung_up = threading.Event()  # a connection was closed by this server
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf, served = b"", 0
        with contextlib.suppress(OSError), conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buf) < length:
                    buf += conn.recv(65536)
                request, buf = head + b"\r\n\r\n" + buf[:length], buf[length:]
                self.requests.append(request)
                answer = self.script(request, served)
                served += 1
                if answer is None:
                    break
                conn.sendall(answer)
                if served == self.hang_up_after:
                    break
        self.hung_up.set()

    def close(self) -> None:
        self._listener.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture()
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script, hang_up_after: int | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(script, hang_up_after))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def ok(body: bytes = b'{"ok": true}', *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# --- against a real node ---------------------------------------------------------------------

def test_a_plain_node_is_spoken_to_over_one_kept_alive_socket(comfy_url: str) -> None:
    http = NodeHTTP(comfy_url, timeout=10)
    try:
        assert http._direct is not None
        for _ in range(3):
            answer = http.request("GET", "/system_stats")
            assert answer.status_code == 200 and "system" in answer.json()
            assert answer.headers.get("content-type", "").startswith("application/json")
        assert len(http._direct._idle) == 1  # one socket, taken and given back each time
    finally:
        http.close()


def test_a_job_posts_and_downloads_through_the_kept_alive_path(comfy_url: str) -> None:
    with ComfyClient(comfy_url) as client:
        result = client.run(graphs.solid_image(16, 16, "#336699"))
        png = client.view(result.outputs[0])
        assert png.startswith(b"\x89PNG")
        missing = client._request("GET", "/view", params={"filename": "none.png",
                                                          "type": "output"})
        assert missing.status_code == 404  # an error answer leaves the socket usable
        assert client.system_stats()["system"]


# --- edge cases against a scripted server -----------------------------------------------------

def test_a_chunked_body_is_joined_and_the_socket_kept(
        serve: Callable[..., ScriptedServer]) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    server = serve(lambda request, n: chunked)
    http = NodeHTTP(server.url, timeout=5)
    assert http.request("GET", "/a").content == b"hello, world"
    assert http.request("GET", "/b").content == b"hello, world"
    assert server.connections == 1


def test_a_node_closing_after_each_answer_gets_a_new_connection(
        serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda request, n: ok(b"{}", "Connection: close") if n == 0 else None)
    http = NodeHTTP(server.url, timeout=5)
    for _ in range(3):
        assert http.request("POST", "/prompt", json_body={"x": 1}).json() == {}
    assert server.connections == 3 and len(server.requests) == 3


def test_an_answer_without_length_is_read_to_the_close(
        serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda request, n: b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100_000,
                   hang_up_after=1)
    http = NodeHTTP(server.url, timeout=5)
    assert http.request("GET", "/view").content == b"x" * 100_000
    assert http._direct is not None and not http._direct._idle


def test_a_kept_alive_socket_the_node_closed_while_idle_is_not_used(
        serve: Callable[..., ScriptedServer]) -> None:
    # The node closes after its answer without saying so (aiohttp's keep-alive timeout).
    server = serve(lambda request, n: ok(), hang_up_after=1)
    http = NodeHTTP(server.url, timeout=5)
    assert http.request("GET", "/a").status_code == 200
    assert server.hung_up.wait(5)
    time.sleep(0.05)  # the FIN reaches this side
    assert http.request("POST", "/prompt", json_body={}).status_code == 200
    assert server.connections == 2 and len(server.requests) == 2  # the POST went out once


def test_a_get_on_a_socket_that_dies_unanswered_is_sent_once_more(
        serve: Callable[..., ScriptedServer]) -> None:
    # The node takes the second request on the old connection and hangs up without a
    # byte: the race a select() before reuse cannot see.
    server = serve(lambda request, n: ok() if n == 0 else None)
    client = ComfyClient(server.url, timeout=5)
    assert client.system_stats() == {"ok": True}
    assert client.system_stats() == {"ok": True}
    assert server.connections == 2 and len(server.requests) == 3


def test_a_post_on_a_socket_that_dies_unanswered_is_never_sent_again(
        serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda request, n: ok() if n == 0 else None)
    client = ComfyClient(server.url, timeout=5)
    assert client.system_stats() == {"ok": True}
    with pytest.raises(NodeUnreachable, match=server.url):
        client._request("POST", "/prompt", json_body={"prompt": {}})
    posts = [r for r in server.requests if r.startswith(b"POST")]
    assert len(posts) == 1


def test_a_slow_head_within_the_timeout_is_waited_for(
        serve: Callable[..., ScriptedServer]) -> None:
    def slow(request: bytes, n: int) -> bytes:
        time.sleep(0.3)
        return ok()

    server = serve(slow)
    assert ComfyClient(server.url, timeout=2).system_stats() == {"ok": True}


def test_a_head_that_stalls_past_the_timeout_is_a_node_timeout(
        serve: Callable[..., ScriptedServer]) -> None:
    def stall(request: bytes, n: int) -> bytes:
        time.sleep(1.5)
        return ok()

    server = serve(stall)
    with pytest.raises(NodeTimeout, match=rf"{server.url}.*GET /system_stats timed out"):
        ComfyClient(server.url, timeout=0.5).system_stats()


def test_a_4xx_with_a_json_body_is_answered_as_is(
        serve: Callable[..., ScriptedServer]) -> None:
    body = b'{"error": {"type": "prompt_outputs_failed_validation"}, "node_errors": {}}'
    server = serve(lambda request, n: ok(body).replace(b"200 OK", b"400 Bad Request"))
    answer = NodeHTTP(server.url, timeout=5).request("POST", "/prompt", json_body={})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "prompt_outputs_failed_validation"
    assert answer.headers["CONTENT-TYPE"].startswith("application/json")


def test_what_is_not_http_is_a_protocol_error(
        serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda request, n: b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    with pytest.raises(NodeProtocolError, match="not an HTTP/1.x status line"):
        ComfyClient(server.url, timeout=5).system_stats()


def test_a_refused_connection_names_the_node() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(NodeUnreachable, match=rf"127.0.0.1:{port}.*connection refused"):
            ComfyClient(f"http://127.0.0.1:{port}").system_stats()


def test_credentials_in_the_url_go_in_a_header_not_the_host(
        serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda request, n: ok())
    url = server.url.replace("http://", "http://user:p%40ss@") + "/base"
    NodeHTTP(url, timeout=5).request("GET", "/queue", params={"a": "b c"})
    request = server.requests[0].decode()
    assert request.startswith("GET /base/queue?a=b+c HTTP/1.1\r\n")
    assert f"Host: {server.url.removeprefix('http://')}\r\n" in request
    credentials = base64.b64encode(b"user:p@ss").decode()
    assert f"authorization: basic {credentials.lower()}" in request.lower()


def test_https_and_proxied_nodes_keep_urllib3(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NodeHTTP("https://node.example:8188", timeout=5)._direct is None
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "")
    assert NodeHTTP("http://node.example:8188", timeout=5)._direct is None


# --- the pure part --------------------------------------------------------------------------

def test_a_head_is_split_into_status_and_headers() -> None:
    head = http11.parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                             b"Set-Cookie: a=1\r\nset-cookie: b=2\r\nConnection: Close")
    assert head.status == 404 and not head.keep_alive
    assert head.headers["content-type"] == "text/plain"
    assert head.headers.get("SET-COOKIE") == "a=1, b=2"
    assert http11.parse_head(b"HTTP/1.1 200 OK").keep_alive
    assert not http11.parse_head(b"HTTP/1.0 200 OK").keep_alive
    with pytest.raises(http11.MalformedAnswer):
        http11.parse_head(b"HTTP/1.1 200 OK\r\nno colon here")


def test_a_request_is_one_buffer_with_its_length() -> None:
    data = http11.request_bytes("POST", "/prompt", "h:1", {"Content-Type": "application/json"},
                                b"{}")
    assert data == (b"POST /prompt HTTP/1.1\r\nHost: h:1\r\nAccept-Encoding: identity\r\n"
                    b"User-Agent: comfy-orch\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 2\r\n\r\n{}")
    assert b"Content-Length: 0" in http11.request_bytes("POST", "/interrupt", "h", {}, None)
    assert b"Content-Length" not in http11.request_bytes("GET", "/queue", "h", {}, None)
    assert http11.request_bytes("GET", "/view?f=a b\u00e9", "h", {}, None).startswith(
        b"GET /view?f=a%20b%C3%A9 HTTP/1.1")


def test_an_idle_socket_past_descriptor_1024_is_still_reused(
        serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda request, n: ok())
    http = NodeHTTP(server.url, timeout=5)
    filler = [socket.socket() for _ in range(1030)]  # the node's socket gets a high number
    try:
        for _ in range(3):
            assert http.request("GET", "/queue").status_code == 200
    finally:
        for sock in filler:
            sock.close()
        http.close()
    assert server.connections == 1
