"""``/ws?clientId=``: a client's prompts' messages in ComfyUI's order, with our prompt ids
and file names, and binary previews; never another client's or another owner's."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import websocket
from PIL import Image

from orchestrator.jobs import JobStatus
from tests import graphs
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import start_service
from tests.orchestrator.web.gateway.conftest import (
    ComfyApi,
    comfy_api,
    kinds,
    messages_until_end,
)


def _of(frames: list[Any], kind: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if isinstance(f, dict) and f["type"] == kind]


def _ws_image_graph(seed: int) -> dict[str, Any]:
    return {"1": graphs.solid_image(20, 10, "#0000ff", seed=seed)["1"],
            "save_ws": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}}


def test_a_prompt_is_relayed_in_comfyuis_order(alice: ComfyApi, client_id: str) -> None:
    ws = alice.socket(client_id)
    try:
        assert json.loads(ws.recv())["data"]["sid"] == client_id
        prompt_id = alice.prompt(graphs.sleep(0.3, 3, seed=80), client_id=client_id)
        frames = messages_until_end(ws, prompt_id)
    finally:
        ws.close()

    seen = [k for k in kinds(frames, prompt_id) if k != "status"]
    assert seen[:3] == ["execution_start", "execution_cached", "executing"]
    assert seen[-3:] == ["executed", "execution_success", "executing"]
    assert [p["value"] for p in _of(frames, "progress")] == [1, 2, 3]
    assert {p["node"] for p in _of(frames, "progress")} == {"1"}
    assert [e["node"] for e in _of(frames, "executing")] == ["1", "2", None]
    states = _of(frames, "progress_state")
    assert states[-1]["nodes"]["1"]["state"] == "finished"
    output = _of(frames, "executed")[0]
    assert output["node"] == "2" and output["prompt_id"] == prompt_id
    image = output["output"]["images"][0]
    assert alice.get("/view", params=image).status_code == 200
    assert all(d.get("prompt_id") in (None, prompt_id)
               for f in frames if isinstance(f, dict) for d in [f["data"]])


def test_a_failing_prompt_ends_with_execution_error(alice: ComfyApi, client_id: str) -> None:
    ws = alice.socket(client_id)
    try:
        prompt_id = alice.prompt(graphs.failing("boom here", seed=81), client_id=client_id)
        frames = messages_until_end(ws, prompt_id)
    finally:
        ws.close()

    error = _of(frames, "execution_error")[0]
    assert error["node_id"] == "2" and error["node_type"] == "OrchTestFail"
    assert "boom here" in error["exception_message"]
    assert error["exception_message"].endswith("\n")
    assert kinds(frames, prompt_id)[-1] == "executing"
    assert alice.history(prompt_id)["status"]["status_str"] == "error"


def test_an_interrupted_prompt_ends_with_execution_interrupted(alice: ComfyApi,
                                                               client_id: str) -> None:
    ws = alice.socket(client_id)
    try:
        prompt_id = alice.prompt(graphs.sleep(30, 30, seed=82), client_id=client_id)
        while _of([json.loads(ws.recv())], "progress") == []:
            pass
        alice.post("/interrupt", json={"prompt_id": prompt_id})
        frames = messages_until_end(ws, prompt_id)
    finally:
        ws.close()

    interrupted = _of(frames, "execution_interrupted")[0]
    assert interrupted["prompt_id"] == prompt_id and interrupted["node_id"] == "1"


def test_only_the_posting_client_hears_its_prompt(alice: ComfyApi, bob: ComfyApi,
                                                  client_id: str) -> None:
    mine, other_client, other_owner = (alice.socket(client_id), alice.socket("someone-else"),
                                       bob.socket(client_id))
    try:
        prompt_id = alice.prompt(graphs.solid_image(seed=83), client_id=client_id)
        messages_until_end(mine, prompt_id)
        for ws in (other_client, other_owner):
            ws.settimeout(1.0)
            heard = _drain(ws)
            assert not any(prompt_id in text for text in heard)
    finally:
        for ws in (mine, other_client, other_owner):
            ws.close()


def _drain(ws: websocket.WebSocket) -> list[str]:
    heard: list[str] = []
    try:
        while True:
            frame = ws.recv()
            heard.append(frame if isinstance(frame, str) else repr(frame))
    except websocket.WebSocketTimeoutException:
        return heard


def test_websocket_images_arrive_as_preview_frames(alice: ComfyApi, client_id: str) -> None:
    ws = alice.socket(client_id)
    try:
        prompt_id = alice.prompt(_ws_image_graph(84), client_id=client_id)
        frames = messages_until_end(ws, prompt_id)
    finally:
        ws.close()

    binary = [f for f in frames if isinstance(f, bytes)]
    assert len(binary) == 1
    assert struct.unpack(">II", binary[0][:8]) == (1, 2)  # preview image, PNG
    with Image.open(io.BytesIO(binary[0][8:])) as image:
        assert image.size == (20, 10)
    executing = [k for k in kinds(frames, prompt_id) if k in ("executing", "binary")]
    assert executing.index("binary") > 0  # after `executing save_ws`, as scripts rely on


def test_previews_carry_metadata_for_a_client_that_asks(alice: ComfyApi, client_id: str) -> None:
    ws = alice.socket(client_id)
    try:
        ws.send(json.dumps({"type": "feature_flags",
                            "data": {"supports_preview_metadata": True}}))
        prompt_id = alice.prompt(_ws_image_graph(85), client_id=client_id)
        frames = messages_until_end(ws, prompt_id)
    finally:
        ws.close()

    assert _of(frames, "feature_flags")[0]["supports_preview_metadata"] is True
    binary = next(f for f in frames if isinstance(f, bytes))
    kind, length = struct.unpack(">II", binary[:8])
    meta = json.loads(binary[8:8 + length])
    assert kind == 4
    assert meta["prompt_id"] == prompt_id and meta["node_id"] == "save_ws"
    assert meta["image_type"] == "image/png"


def test_a_client_reconnecting_after_a_restart_still_gets_its_prompts_end(
        comfy_url: str, tmp_path: Path, client_id: str) -> None:
    """The client id is kept with the job, so the next process relays to that client."""
    first = start_service(tmp_path, comfy_url)
    try:
        prompt_id = comfy_api(first, first.alice).prompt(graphs.sleep(2, 4, seed=86),
                                                         client_id=client_id)
        wait_until(lambda: first.orch.get(prompt_id).status is JobStatus.RUNNING, 60, "start")
    finally:
        first.stop()
    second = start_service(tmp_path, comfy_url)
    try:
        api = comfy_api(second, second.tokens.create("alice"))
        ws = api.socket(client_id)
        try:
            frames = messages_until_end(ws, prompt_id)
        finally:
            ws.close()
        assert "execution_success" in kinds(frames, prompt_id)
        assert api.history(prompt_id)["status"]["status_str"] == "success"
    finally:
        second.stop()
