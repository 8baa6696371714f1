"""What a node reported beyond files (values, cached nodes), relayed and in ``/history``:
pure mapping first, then a real uvicorn over a real ComfyUI node compared with the node."""

from __future__ import annotations

import json
from typing import Any

import requests

from orchestrator.outputs import OutputKind, OutputRecord
from orchestrator.web.gateway.nodehistory import node_result
from tests import graphs
from tests.orchestrator.web.conftest import HTTP_TIMEOUT
from tests.orchestrator.web.gateway.conftest import ComfyApi, messages_until_end


def _record(output_id: str, filename: str, node_id: str = "2") -> OutputRecord:
    return OutputRecord(id=output_id, sha256="0" * 64, mime="image/png", size_bytes=1,
                        kind=OutputKind.IMAGE, filename=filename, node_id=node_id, node="n",
                        job_id="p", item_id="i", index=0, owner="o")


def test_node_outputs_keep_every_key_and_name_files_as_we_serve_them() -> None:
    entry = {"outputs": {
        "3": {"text": ["hello"]},
        "2": {"images": [{"filename": "b.png", "subfolder": "", "type": "output"},
                         {"filename": "a.png", "subfolder": "", "type": "output"},
                         {"filename": "t.png", "subfolder": "", "type": "temp"}],
              "animated": [False], "score": [0.5]}},
        "status": {"messages": [["execution_start", {}],
                                ["execution_cached", {"nodes": ["1", "4"]}]]}}
    records = [_record("a" * 32, "a.png"), _record("b" * 32, "b.png")]

    found = node_result(entry, records)

    assert list(found.outputs) == ["3", "2"]
    assert found.outputs["3"] == {"text": ["hello"]}
    assert [f["filename"] for f in found.outputs["2"]["images"]] == [
        "b" * 32 + ".png", "a" * 32 + ".png"]  # the node's order; a temp file we lack left out
    assert found.outputs["2"]["animated"] == [False] and found.outputs["2"]["score"] == [0.5]
    assert found.cached == ("1", "4")


def _text_and_image(seed: int) -> dict[str, Any]:
    graph = graphs.solid_image(8, 8, seed=seed)
    graph["3"] = {"class_type": "PreviewAny", "inputs": {"source": f"hello {seed}"}}
    return graph


def test_a_text_output_is_relayed_and_kept_in_history_as_the_node_reports_it(
        alice: ComfyApi, comfy_url: str, client_id: str) -> None:
    direct = requests.post(f"{comfy_url}/prompt", timeout=HTTP_TIMEOUT,
                           json={"prompt": _text_and_image(400), "client_id": "direct"})
    direct_id = direct.json()["prompt_id"]
    ws = alice.socket(client_id)
    try:
        prompt_id = alice.prompt(_text_and_image(400), client_id=client_id)
        frames = messages_until_end(ws, prompt_id)
    finally:
        ws.close()

    entry = alice.history(prompt_id)
    theirs = ComfyApi(comfy_url).history(direct_id)
    assert entry["outputs"]["3"] == theirs["outputs"]["3"] == {"text": ["hello 400"]}
    assert set(entry["outputs"]) == set(theirs["outputs"])
    executed = {f["data"]["node"]: f["data"]["output"] for f in frames
                if isinstance(f, dict) and f["type"] == "executed"}
    assert executed["3"] == {"text": ["hello 400"]}
    assert executed["2"]["images"] == entry["outputs"]["2"]["images"]


def test_cached_nodes_are_told_as_the_node_told_them(alice: ComfyApi, client_id: str) -> None:
    graph = _text_and_image(401)
    alice.history(alice.prompt(graph))
    ws = alice.socket(client_id)
    try:
        again = alice.prompt(json.loads(json.dumps(graph)), client_id=client_id)
        frames = messages_until_end(ws, again)
    finally:
        ws.close()

    cached = {n for f in frames if isinstance(f, dict) and f["type"] == "execution_cached"
              for n in f["data"]["nodes"]}
    assert {"1", "3"} <= cached
    assert "1" not in {f["data"]["node"] for f in frames
                       if isinstance(f, dict) and f["type"] == "executing"}
    status = alice.history(again)["status"]["messages"]
    assert {"1", "3"} <= set(dict((m[0], m[1]) for m in status)["execution_cached"]["nodes"])
