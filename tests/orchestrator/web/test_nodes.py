"""``/v1/nodes`` over HTTP: the pool with health and capabilities; add, drain, remove."""

from __future__ import annotations

import socket

from tests.helpers import wait_until
from tests.orchestrator.web.conftest import Api, Service


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_the_list_shows_health_capabilities_and_load(api: Api, service: Service,
                                                     comfy_url: str) -> None:
    response = api.get("/v1/nodes", token=service.alice)
    assert response.status_code == 200
    body = response.json()
    (node,) = body["nodes"]
    assert node["name"] and node["health"] == "up"
    assert node["classes"] > 500 and node["comfyui_version"]
    assert node["max_in_flight"] >= 1 and node["in_flight"] >= 0
    assert node["last_seen"].endswith("Z")
    assert body["queued"] >= 0


def test_add_a_node_then_drain_and_remove_it(api: Api, service: Service,
                                             comfy_url: str) -> None:
    response = api.post("/v1/nodes", token=service.admin,
                        json={"url": comfy_url, "name": "twin", "tags": ["cpu"],
                              "max_in_flight": 1})
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith("/v1/nodes/twin")
    assert (response.json()["health"], response.json()["tags"]) == ("up", ["cpu"])
    drained = api.post("/v1/nodes/twin/drain", token=service.admin, json={})
    assert drained.status_code == 200 and drained.json()["draining"] is True
    resumed = api.post("/v1/nodes/twin/drain", token=service.admin, json={"draining": False})
    assert resumed.json()["draining"] is False
    assert api.delete("/v1/nodes/twin", token=service.admin).status_code == 204
    names = [n["name"] for n in api.get("/v1/nodes", token=service.admin).json()["nodes"]]
    assert "twin" not in names


def test_a_node_that_does_not_answer_is_added_as_down(api: Api, service: Service) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    response = api.post("/v1/nodes", token=service.admin, json={"url": url})
    assert response.status_code == 201
    node = response.json()
    assert node["health"] == "down" and node["name"] == url.removeprefix("http://")
    assert api.delete(f"/v1/nodes/{node['name']}", token=service.admin).status_code == 204


def test_a_job_still_runs_while_a_dead_node_is_in_the_pool(api: Api, service: Service) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    dead = api.post("/v1/nodes", token=service.admin, json={"url": url, "name": "dead"})
    assert dead.status_code == 201
    try:
        job = api.submit(service.alice, workflow="solid")
        assert api.wait_job(service.alice, job["id"])["status"] == "succeeded"
    finally:
        api.delete("/v1/nodes/dead", token=service.admin)


def test_adding_a_name_twice_is_a_conflict(api: Api, service: Service, comfy_url: str) -> None:
    response = api.post("/v1/nodes", token=service.admin, json={"url": comfy_url})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "conflict")


def test_a_bad_address_is_400(api: Api, service: Service) -> None:
    response = api.post("/v1/nodes", token=service.admin, json={"url": "ftp://x"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")


def test_unknown_nodes_answer_404(api: Api, service: Service) -> None:
    assert api.delete("/v1/nodes/ghost", token=service.admin).status_code == 404
    assert api.post("/v1/nodes/ghost/drain", token=service.admin, json={}).status_code == 404


def test_draining_the_only_node_holds_new_work_until_it_is_resumed(
        api: Api, service: Service) -> None:
    name = api.get("/v1/nodes", token=service.admin).json()["nodes"][0]["name"]
    api.post(f"/v1/nodes/{name}/drain", token=service.admin, json={})
    try:
        job = api.submit(service.alice, workflow="solid")
        assert api.job(service.alice, job["id"])["status"] == "queued"
    finally:
        api.post(f"/v1/nodes/{name}/drain", token=service.admin, json={"draining": False})
    wait_until(lambda: api.job(service.alice, job["id"])["status"] == "succeeded", 60,
               "the held job to run after the drain ended")


def test_object_info_is_the_pools_merged_answer(api: Api, service: Service) -> None:
    response = api.get("/v1/object_info", token=service.alice)
    assert response.status_code == 200
    info = response.json()
    assert "KSampler" in info and "OrchTestSolidImage" in info
    assert len(info) == len(service.orch.object_info())


def test_object_info_keeps_only_the_classes_asked_for(api: Api, service: Service) -> None:
    response = api.get("/v1/object_info", token=service.alice,
                       params=[("class", "KSampler"), ("class", "NoSuchNode"),
                               ("class", "SaveImage")])
    assert response.status_code == 200
    info = response.json()
    assert sorted(info) == ["KSampler", "SaveImage"]
    samplers = info["KSampler"]["input"]["required"]["sampler_name"]
    assert "euler" in (samplers[0] if isinstance(samplers[0], list) else samplers[1]["options"])


def test_node_addresses_and_errors_are_shown_to_admins_only(api: Api, service: Service,
                                                            comfy_url: str) -> None:
    """Given a dead node whose last error names its address, a plain token sees names,
    health, load, models and versions, and an admin token also sees URLs and errors."""
    url = f"http://127.0.0.1:{closed_port()}"
    assert api.post("/v1/nodes", token=service.admin,
                    json={"url": url, "name": "hidden"}).status_code == 201
    try:
        plain = {n["name"]: n for n in api.get("/v1/nodes", token=service.alice).json()["nodes"]}
        admin = {n["name"]: n for n in api.get("/v1/nodes", token=service.admin).json()["nodes"]}
    finally:
        api.delete("/v1/nodes/hidden", token=service.admin)
    assert admin["hidden"]["url"] == url and admin["hidden"]["last_error"]
    assert {n["url"] for n in admin.values()} >= {url, comfy_url}
    assert all(n["url"] is None and n["last_error"] is None for n in plain.values())
    assert plain["hidden"]["health"] == "down"
    assert any(n["comfyui_version"] and n["classes"] > 500 for n in plain.values())
    assert url.split("//")[1] not in str([n["last_error"] for n in plain.values()])
