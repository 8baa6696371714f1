"""Node-side validation (``VALIDATE_INPUTS``) through the gateway, over a real uvicorn and a
real ComfyUI: what the node refuses at ``POST /prompt`` comes back exactly as the node gave
it, and what it takes runs once."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from tests.orchestrator.web.conftest import HTTP_TIMEOUT, Service
from tests.orchestrator.web.gateway.conftest import ComfyApi


def _validated(accept: bool, seed: int, level: int = 0) -> dict[str, Any]:
    return {"1": {"class_type": "OrchTestValidated",
                  "inputs": {"accept": accept, "seed": seed, "level": level}},
            "2": {"class_type": "SaveImage",
                  "inputs": {"images": ["1", 0], "filename_prefix": "validated"}}}


def test_a_prompt_the_node_refuses_answers_the_nodes_400_and_leaves_no_job(
        alice: ComfyApi, service: Service, comfy_url: str) -> None:
    graph = _validated(accept=False, seed=1)
    direct = requests.post(f"{comfy_url}/prompt", timeout=HTTP_TIMEOUT,
                           json={"prompt": graph, "client_id": "direct"})
    prompt_id = str(uuid.uuid4())

    ours = alice.post("/prompt", json={"prompt": graph, "prompt_id": prompt_id})

    assert direct.status_code == 400, direct.text
    assert direct.json()["node_errors"]["1"]["errors"]  # the node's own check spoke
    assert (ours.status_code, ours.json()) == (400, direct.json())
    assert prompt_id not in alice.get("/history").json()
    assert service.api.get(f"/v1/jobs/{prompt_id}", token=service.alice).status_code == 404


def test_a_prompt_the_node_accepts_answers_200_and_runs_once(alice: ComfyApi,
                                                              service: Service) -> None:
    response = alice.post("/prompt", json={"prompt": _validated(accept=True, seed=2)})

    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    job = service.api.wait_job(service.alice, prompt_id)
    assert job["status"] == "succeeded"
    assert [item["attempts"] for item in job["items"]] == [1]
    entry = alice.history(prompt_id)
    assert entry["status"]["status_str"] == "success"
    assert len(entry["outputs"]["2"]["images"]) == 1


def test_a_range_the_nodes_own_check_takes_over_is_left_to_the_node(
        alice: ComfyApi, service: Service, comfy_url: str) -> None:
    # ``level`` 50 is above the declared max (10), but the class's VALIDATE_INPUTS names
    # it, so ComfyUI skips its range check and the node's own check allows it.
    direct = requests.post(f"{comfy_url}/prompt", timeout=HTTP_TIMEOUT, json={
        "prompt": _validated(accept=True, seed=3, level=50), "client_id": "direct"})

    ours = alice.post("/prompt", json={"prompt": _validated(accept=True, seed=4, level=50)})

    assert direct.status_code == 200, direct.text
    assert ours.status_code == 200, ours.text
    job = service.api.wait_job(service.alice, ours.json()["prompt_id"])
    assert job["status"] == "succeeded"
