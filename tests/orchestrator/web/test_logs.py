"""No token secret in the service's log: the real ``serve`` process, and the filter alone."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import websocket

from orchestrator.tokens import TokenStore
from orchestrator.web.logs import RedactTokens

START_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 30.0


def _wait_for_url(process: subprocess.Popen[str], seen: list[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if "serving on " in line:
            return line.split("serving on ")[1].split()[0]
        if not line and process.poll() is not None:
            break
    raise AssertionError("serve printed no address:\n" + "".join(seen))


def _use_the_service(url: str, token: str, revoked: str) -> None:
    """What clients do: a gateway websocket, gateway and REST routes, bad tokens too."""
    gateway = f"{url}/comfyui/{token}"
    socket = websocket.create_connection(
        gateway.replace("http://", "ws://", 1) + "/ws?clientId=log-test",
        timeout=HTTP_TIMEOUT_S)
    socket.recv()  # the status frame: the connection was accepted and logged
    socket.close()
    try:
        websocket.create_connection(
            f"{url}/comfyui/{revoked}/ws?clientId=x".replace("http://", "ws://", 1),
            timeout=HTTP_TIMEOUT_S).close()
    except websocket.WebSocketException:
        pass  # refused, as it should be; only its log line matters here
    assert requests.get(f"{gateway}/queue", timeout=HTTP_TIMEOUT_S).status_code == 200
    assert requests.get(f"{url}/comfyui/{revoked}/queue",
                        timeout=HTTP_TIMEOUT_S).status_code == 401
    assert requests.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=HTTP_TIMEOUT_S).status_code == 200
    requests.get(f"{url}/v1/jobs?token={token}", timeout=HTTP_TIMEOUT_S)


def test_serve_never_writes_a_token_to_its_log(comfy_url: str, tmp_path: Path) -> None:
    """Given ``comfy-orch serve`` at its default (info) log level, when clients use the
    gateway websocket and routes with tokens in their paths, headers and queries, then
    neither stdout nor stderr holds a token secret, while the lines themselves are there."""
    data = tmp_path / "data"
    with TokenStore.open(data) as tokens:
        token = tokens.create("alice")
        revoked = tokens.create("bob")
        tokens.revoke(revoked)
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "--port", "0", "--data", str(data),
         "--node", comfy_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            _use_the_service(_wait_for_url(process, seen), token, revoked)
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
    log = "".join(seen) + out + err
    for secret in (token, revoked):
        assert secret.split("_", 2)[2] not in log  # the part after co_<id>_
    assert '"WebSocket /comfyui/***/ws?clientId=log-test" [accepted]' in log


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("orchestrator.x", logging.ERROR, __file__, 1, msg, args,
                             exc_info)


def test_the_filter_redacts_arguments_of_any_type_and_tracebacks() -> None:
    secret = "co_0123abcd_S3cretValue-_x"
    try:
        raise ValueError(f"bad token {secret}")
    except ValueError as caught:
        exc = caught
    record = _record("client %s sent %s", ("127.0.0.1", f"/comfyui/{secret}/ws"),
                     f"Bearer {secret}", exc=exc)
    assert RedactTokens().filter(record)
    formatted = logging.Formatter().format(record)
    assert "S3cretValue" not in formatted
    assert "co_0123abcd_***" in formatted and "Bearer ***" in formatted
