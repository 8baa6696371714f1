"""Newer ComfyUI's ``/api/jobs`` routes and ``prompt_id`` rule through the gateway, answered
as the node behind it answers them (a real uvicorn over a real ComfyUI node).

Each test asks the real node the same question first: the gateway must answer as that
ComfyUI release does, route present or absent, body for body where they can agree.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from orchestrator.web.gateway import versions
from tests import graphs
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import HTTP_TIMEOUT, Service
from tests.orchestrator.web.gateway.conftest import ComfyApi


def _version(service: Service) -> versions.Version | None:
    return versions.speaking(n.comfyui_version for n in service.orch.nodes())


def _direct(comfy_url: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, comfy_url + path, timeout=HTTP_TIMEOUT, **kwargs)


def _wait_status(api: ComfyApi, prompt_id: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(api.get(f"/api/jobs/{prompt_id}").json())
        return seen.get("status") == status

    wait_until(reached, 60, f"{prompt_id} to be {status}")
    return seen


@pytest.mark.parametrize("prompt_id", ["not-a-uuid", str(uuid.uuid4()).upper(),
                                       "{" + str(uuid.uuid4()) + "}", 12345])
def test_a_clients_prompt_id_is_refused_exactly_as_the_node_refuses_it(
        prompt_id: Any, alice: ComfyApi, comfy_url: str) -> None:
    graph = graphs.solid_image(8, 8, seed=7)
    direct = _direct(comfy_url, "POST", "/prompt",
                     json={"prompt": graph, "prompt_id": prompt_id, "client_id": "direct"})

    ours = alice.post("/prompt", json={"prompt": graph, "prompt_id": prompt_id})

    if direct.status_code == 400:
        assert ours.status_code == 400
        assert ours.json() == direct.json()
        assert ours.json()["error"]["type"] == "invalid_prompt_id"
    else:  # a release that takes any id as text (0.3.x) takes these too
        assert ours.status_code == 200, ours.text
        alice.history(ours.json()["prompt_id"])


def test_job_routes_exist_exactly_where_the_node_has_them(
        alice: ComfyApi, service: Service, comfy_url: str) -> None:
    asks = [("GET", "/api/jobs"), ("GET", f"/api/jobs/{uuid.uuid4()}"),
            ("POST", f"/api/jobs/{uuid.uuid4()}/cancel")]
    for method, path in asks:
        direct = _direct(comfy_url, method, path)
        ours = alice.post(path) if method == "POST" else alice.get(path)

        assert ours.status_code == direct.status_code, (path, ours.text, direct.text)
        if direct.status_code == 200 and path == "/api/jobs":
            assert set(ours.json()) == set(direct.json()) == {"jobs", "pagination"}
        elif "json" in direct.headers.get("content-type", ""):
            assert ours.json() == direct.json(), path
        else:  # aiohttp's plain 404/405 of a route the release lacks
            assert ours.text == direct.text, path
    assert versions.has(_version(service), versions.JOBS_API) == (
        _direct(comfy_url, "GET", "/api/jobs").status_code == 200)


@pytest.mark.parametrize("query", [{"status": "done"}, {"limit": "0"}, {"limit": "x"},
                                   {"offset": "x"}, {"sort_by": "name"},
                                   {"sort_order": "up"}])
def test_a_bad_jobs_query_answers_as_the_node(query: dict[str, str], alice: ComfyApi,
                                              comfy_url: str) -> None:
    direct = _direct(comfy_url, "GET", "/api/jobs", params=query)

    ours = alice.get("/api/jobs", params=query)

    assert ours.status_code == direct.status_code
    if direct.status_code == 400:
        assert ours.json() == direct.json()


def _has(service: Service, api: ComfyApi, since: versions.Version) -> bool:
    """Whether the node's release has the routes of ``since``; on an older one the
    gateway must not have them either (a plain 404, as that release answers)."""
    if versions.has(_version(service), since):
        return True
    if since == versions.JOBS_API:
        assert api.get("/api/jobs").status_code == 404
    assert api.post(f"/api/jobs/{uuid.uuid4()}/cancel").status_code in (404, 405)
    return False


def test_jobs_list_shows_own_prompts_newest_first_in_pages(
        alice: ComfyApi, bob: ComfyApi, service: Service) -> None:
    if not _has(service, alice, versions.JOBS_API):
        return
    theirs = bob.prompt(graphs.solid_image(seed=99))
    ids = [alice.prompt(graphs.solid_image(seed=100 + i)) for i in range(3)]
    for prompt_id in ids + [theirs]:
        (alice if prompt_id in ids else bob).history(prompt_id)

    first = alice.get("/api/jobs", params={"limit": 2}).json()
    second = alice.get("/api/jobs", params={"limit": 2, "offset": 2}).json()

    listed = [j["id"] for j in first["jobs"] + second["jobs"]]
    assert theirs not in listed
    assert [i for i in listed if i in ids] == ids[::-1]  # created_at, newest first
    assert first["pagination"] == {"offset": 0, "limit": 2, "total": first["pagination"][
        "total"], "has_more": True}
    job = first["jobs"][0]
    assert job["status"] == "completed" and job["outputs_count"] == 1
    assert {"id", "status", "priority", "create_time", "execution_start_time",
            "execution_end_time", "outputs_count", "preview_output"} <= set(job)
    assert job["preview_output"]["nodeId"] == "2"
    assert job["preview_output"]["mediaType"] == "images"
    assert job["create_time"] <= job["execution_start_time"] <= job["execution_end_time"]
    assert job["create_time"] > 1_600_000_000_000  # milliseconds, not seconds
    oldest = alice.get("/api/jobs", params={"sort_order": "asc", "status": "completed"}).json()
    assert [j["id"] for j in oldest["jobs"] if j["id"] in ids] == ids


def test_one_job_carries_outputs_status_and_workflow(alice: ComfyApi,
                                                     service: Service) -> None:
    if not _has(service, alice, versions.JOBS_API):
        return
    graph = graphs.solid_image(seed=110)
    prompt_id = alice.prompt(graph, extra_data={"extra_pnginfo": {"workflow": {"id": "wf-9"}}})
    entry = alice.history(prompt_id)

    job = alice.get(f"/api/jobs/{prompt_id}").json()

    assert job["id"] == prompt_id and job["status"] == "completed"
    assert job["outputs"] == entry["outputs"]
    assert job["execution_status"] == entry["status"]
    assert job["workflow"]["prompt"] == graph
    assert job["workflow_id"] == "wf-9"
    assert alice.get("/api/jobs", params={"workflow_id": "wf-9"}).json()["jobs"][0]["id"] \
        == prompt_id
    unknown = alice.get(f"/api/jobs/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Job not found"}


def test_another_owners_job_reads_as_unknown_and_cannot_be_cancelled(
        alice: ComfyApi, bob: ComfyApi, service: Service) -> None:
    if not _has(service, alice, versions.JOB_CANCEL):
        return
    mine = alice.prompt(graphs.sleep(30, 30, seed=120))

    assert bob.get(f"/api/jobs/{mine}").status_code == 404
    assert mine not in [j["id"] for j in bob.get("/api/jobs").json()["jobs"]]
    assert bob.post(f"/api/jobs/{mine}/cancel").json() == {"cancelled": False}
    assert bob.post("/api/jobs/cancel", json={"job_ids": [mine]}).json() == {
        "cancelled": False}
    assert alice.get(f"/api/jobs/{mine}").json()["status"] in ("pending", "in_progress")
    assert alice.post(f"/api/jobs/{mine}/cancel").json() == {"cancelled": True}


@pytest.mark.every_comfyui
def test_cancel_stops_running_and_pending_jobs_and_ignores_finished_ones(
        alice: ComfyApi, service: Service) -> None:
    if not _has(service, alice, versions.JOB_CANCEL):
        return
    done = alice.prompt(graphs.solid_image(seed=130))
    alice.history(done)
    running = alice.prompt(graphs.sleep(30, 30, seed=131))
    _wait_status(alice, running, "in_progress")
    pending = alice.prompt(graphs.sleep(30, 30, seed=132))

    assert alice.post(f"/api/jobs/{done}/cancel").json() == {"cancelled": False}
    assert alice.post(f"/api/jobs/{uuid.uuid4()}/cancel").json() == {"cancelled": False}
    assert alice.post("/api/jobs/cancel", json={"job_ids": [pending, running]}).json() == {
        "cancelled": True}

    assert _wait_status(alice, running, "cancelled")["execution_end_time"] > 0
    assert _wait_status(alice, pending, "cancelled")["id"] == pending
    assert alice.post("/api/jobs/cancel", json={"job_ids": [running]}).json() == {
        "cancelled": False}


@pytest.mark.parametrize("body", [{"job_ids": "x"}, {"job_ids": ["not-an-id!", 3]},
                                  {"nothing": []}])
def test_a_bad_cancel_batch_answers_as_the_node(body: dict[str, Any], alice: ComfyApi,
                                                comfy_url: str) -> None:
    direct = _direct(comfy_url, "POST", "/api/jobs/cancel", json=body)

    ours = alice.post("/api/jobs/cancel", json=body)

    assert ours.status_code == direct.status_code
    if direct.status_code == 400:
        assert ours.json() == direct.json()
