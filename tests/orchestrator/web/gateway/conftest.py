"""A ComfyUI client's view of the gateway: the service's base address with a token in it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from tests.helpers import wait_until
from tests.orchestrator.web.conftest import HTTP_TIMEOUT, Service

WS_TIMEOUT = 60.0


class ComfyApi:
    """What a ComfyUI client does against one base address (``.../comfyui/<token>``)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.headers = headers or {}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.base + path, headers=self.headers, timeout=HTTP_TIMEOUT,
                            **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.base + path, headers=self.headers, timeout=HTTP_TIMEOUT,
                             **kwargs)

    def prompt(self, graph: dict[str, Any], **body: Any) -> str:
        response = self.post("/prompt", data=json.dumps({"prompt": graph, **body}))
        assert response.status_code == 200, response.text
        prompt_id: str = response.json()["prompt_id"]
        return prompt_id

    def history(self, prompt_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll ``/history/{id}`` until the entry is there, as SillyTavern does."""
        found: dict[str, Any] = {}

        def done() -> bool:
            response = self.get(f"/history/{prompt_id}")
            assert response.status_code == 200, response.text
            found.update(response.json())
            return prompt_id in found

        wait_until(done, timeout, f"history of {prompt_id}")
        entry: dict[str, Any] = found[prompt_id]
        return entry

    def socket(self, client_id: str | None = None) -> websocket.WebSocket:
        url = self.base.replace("http://", "ws://", 1) + f"/ws?clientId={client_id or ''}"
        return websocket.create_connection(url, timeout=WS_TIMEOUT, header=self.headers)


def comfy_api(service: Service, token: str) -> ComfyApi:
    return ComfyApi(f"{service.api.url}/comfyui/{token}")


@pytest.fixture(scope="module")
def alice(service: Service) -> ComfyApi:
    return comfy_api(service, service.alice)


@pytest.fixture(scope="module")
def bob(service: Service) -> ComfyApi:
    return comfy_api(service, service.bob)


def messages_until_end(ws: websocket.WebSocket, prompt_id: str) -> list[Any]:
    """Every frame (text parsed, binary raw) until ``executing`` null for ``prompt_id``."""
    frames: list[Any] = []
    while True:
        raw = ws.recv()
        if isinstance(raw, bytes):
            frames.append(raw)
            continue
        message = json.loads(raw)
        frames.append(message)
        data = message.get("data") or {}
        if (message["type"] == "executing" and data.get("node") is None
                and data.get("prompt_id") == prompt_id):
            return frames


def kinds(frames: list[Any], prompt_id: str | None = None) -> list[str]:
    """The message types in order (``binary`` for binary frames)."""
    return ["binary" if isinstance(f, bytes) else f["type"] for f in frames
            if isinstance(f, bytes) or prompt_id is None
            or (f.get("data") or {}).get("prompt_id") in (None, prompt_id)]


@pytest.fixture
def client_id() -> Iterator[str]:
    yield uuid.uuid4().hex
