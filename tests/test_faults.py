"""The fault tools against a real ComfyUI: the proxy passes HTTP, silences or delays the
websocket on demand, and the sleep node runs slower on a server told to."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from orchestrator.comfy.client import ComfyClient
from orchestrator.provision.server import LocalComfy
from tests import graphs
from tests.faults import FaultProxy, set_slowdown
from tests.helpers import wait_until


@pytest.fixture()
def proxy(comfy_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(comfy_url) as proxy:
        yield proxy


def open_ws(url: str, client_id: str) -> websocket.WebSocket:
    ws = websocket.create_connection(
        "ws" + url[len("http"):] + f"/ws?clientId={client_id}", timeout=10)
    return ws


def frames_until_silent(ws: websocket.WebSocket, quiet: float) -> list[Any]:
    """Every frame that arrives until none has for ``quiet`` seconds."""
    ws.settimeout(quiet)
    frames = []
    while True:
        try:
            frames.append(ws.recv())
        except websocket.WebSocketTimeoutException:
            return frames


def seed() -> int:
    return uuid.uuid4().int % 10**9


def test_http_passes_through_the_proxy_unchanged(proxy: FaultProxy, comfy_url: str) -> None:
    direct = requests.get(f"{comfy_url}/object_info/SaveImage", timeout=10).json()
    through = requests.get(f"{proxy.url}/object_info/SaveImage", timeout=10).json()
    assert through == direct


def test_a_frozen_websocket_stays_open_and_silent_while_the_prompt_finishes(
    proxy: FaultProxy,
) -> None:
    client_id = uuid.uuid4().hex
    ws = open_ws(proxy.url, client_id)
    try:
        first = json.loads(ws.recv())  # ComfyUI greets every socket with its status
        assert first["type"] == "status"
        assert proxy.freeze() == 1
        with ComfyClient(proxy.url) as client:
            sent = client.submit(graphs.sleep(0.3, steps=3, seed=seed()), client_id=client_id)
            wait_until(lambda: client.history(sent.prompt_id) is not None, 60,
                       "the prompt to finish on the node")
        wait_until(lambda: proxy.dropped() > 0, 10, "the node's events to reach the proxy")
        # The node sent this prompt's events; none of them reached the client.
        assert frames_until_silent(ws, 1.0) == []
        assert ws.connected
        # A new socket (a reconnect) is not frozen: ComfyUI's greeting arrives.
        fresh = open_ws(proxy.url, uuid.uuid4().hex)
        try:
            assert json.loads(fresh.recv())["type"] == "status"
        finally:
            fresh.close()
        assert proxy.websockets_opened == 2
    finally:
        ws.close()


def test_a_delayed_websocket_delivers_every_frame_late_and_in_order(proxy: FaultProxy) -> None:
    proxy.delay(1.0)
    client_id = uuid.uuid4().hex
    opened = time.monotonic()
    ws = open_ws(proxy.url, client_id)  # the handshake answer is held back too
    try:
        assert json.loads(ws.recv())["type"] == "status"
        assert time.monotonic() - opened >= 1.0
        with ComfyClient(proxy.url) as client:
            sent = client.submit(graphs.sleep(0.2, steps=2, seed=seed()), client_id=client_id)
        ws.settimeout(30)
        kinds = []
        while "execution_success" not in kinds:
            frame = ws.recv()
            if isinstance(frame, str):
                message = json.loads(frame)
                if message["data"].get("prompt_id") in (None, sent.prompt_id):
                    kinds.append(message["type"])
        assert kinds.index("execution_start") < kinds.index("progress") < kinds.index(
            "execution_success")
    finally:
        ws.close()


def run_seconds(url: str, seconds: float) -> float:
    """How long the node itself says the sleep graph ran (its history's timestamps)."""
    with ComfyClient(url) as client:
        sent = client.submit(graphs.sleep(seconds, steps=2, seed=seed()))
        wait_until(lambda: client.history(sent.prompt_id) is not None, 120,
                   "the sleep graph to finish")
        entry = client.history_entry(sent.prompt_id)
    assert entry is not None
    stamps = {kind: data["timestamp"] for kind, data in entry["status"]["messages"]
              if kind in ("execution_start", "execution_success")}
    return float(stamps["execution_success"] - stamps["execution_start"]) / 1000.0


def test_the_sleep_node_runs_slower_on_a_server_given_a_slowdown(
    comfy_server: LocalComfy,
) -> None:
    try:
        set_slowdown(comfy_server.base_dir, 4)
        slow = run_seconds(comfy_server.url, 0.5)
    finally:
        set_slowdown(comfy_server.base_dir, None)
    normal = run_seconds(comfy_server.url, 0.5)
    assert slow >= 2.0, slow
    assert normal < slow
