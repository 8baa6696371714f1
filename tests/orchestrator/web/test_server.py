"""uvicorn on a thread: a free port, start-up awaited, a clean stop; a taken port is named."""

from __future__ import annotations

import socket

import pytest
import requests
from fastapi import FastAPI

from orchestrator.errors import ConfigError
from orchestrator.web.server import ServerThread, bind


def tiny_app() -> FastAPI:
    app = FastAPI()
    app.add_api_route("/ping", lambda: {"pong": True})
    return app


def test_a_server_thread_serves_until_stopped() -> None:
    with ServerThread(tiny_app()) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert requests.get(server.url + "/ping", timeout=5).json() == {"pong": True}
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/ping", timeout=5)
    server.stop()  # harmless twice


def test_a_taken_port_is_a_config_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*--port"):
            bind("127.0.0.1", port)
