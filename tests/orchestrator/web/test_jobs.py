"""``/v1/jobs`` over HTTP against a real node: submit, read, list, cancel, retry, load."""

from __future__ import annotations

import json
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests import graphs
from tests.orchestrator.web.conftest import (
    Api,
    Service,
    ServiceFactory,
    png_bytes,
    wait_until,
)


@pytest.fixture(scope="module")
def idle(service_factory: ServiceFactory) -> Service:
    """A service with no node: whatever is submitted stays queued."""
    return service_factory(nodes=())


@pytest.fixture(scope="module")
def aside(service_factory: ServiceFactory) -> Service:
    """Another service with no node, for submits that must not queue before ``idle``'s."""
    return service_factory(nodes=())


@pytest.mark.every_comfyui
def test_submit_answers_202_with_the_job_and_its_location(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.alice,
                        json={"workflow": "solid", "values": {"seed": 7, "color": "#ff0000"},
                              "character": "mira", "conversation": "c1", "priority": 3,
                              "metadata": {"scene": "beach"}})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["Location"] == job["url"] == f"{api.url}/v1/jobs/{job['id']}"
    assert (job["workflow"], job["owner"], job["character"], job["conversation"]) == (
        "solid", "alice", "mira", "c1")
    assert job["status"] in ("queued", "running") and job["created_at"].endswith("Z")
    done = api.wait_job(service.alice, job["id"])
    assert done["status"] == "succeeded" and done["items"][0]["seed"] == 7
    assert done["completed_at"] >= done["started_at"] >= done["created_at"]


def test_count_makes_one_item_and_output_per_image(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid", count=3, values={"seed": 100})
    done = api.wait_job(service.alice, job["id"])
    assert [i["seed"] for i in done["items"]] == [100, 101, 102]
    assert len(done["output_ids"]) == 3


def test_a_raw_graph_runs_as_given(api: Api, service: Service) -> None:
    job = api.submit(service.alice, graph=graphs.solid_image(8, 8, seed=random.randrange(999)))
    done = api.wait_job(service.alice, job["id"])
    assert done["status"] == "succeeded" and done["raw_graph"] is True


def test_the_same_idempotency_key_returns_the_same_job(api: Api, service: Service) -> None:
    key = str(uuid.uuid4())
    body = {"workflow": "solid"}
    first = api.post("/v1/jobs", token=service.alice, json=body, headers={"Idempotency-Key": key})
    again = api.post("/v1/jobs", token=service.alice, json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_an_idempotency_key_sent_with_another_body_is_refused_422(aside: Service) -> None:
    """Replaying another request's job would hand back images of another prompt."""
    key = str(uuid.uuid4())
    first = aside.api.post("/v1/jobs", token=aside.alice, headers={"Idempotency-Key": key},
                          json={"workflow": "solid", "values": {"color": "#ff0000"}})
    assert first.status_code == 202, first.text
    jobs_before = aside.api.get("/v1/jobs", token=aside.alice).json()["jobs"]

    other = aside.api.post("/v1/jobs", token=aside.alice, headers={"Idempotency-Key": key},
                          json={"workflow": "solid", "values": {"color": "#0000ff"}})

    assert other.status_code == 422, other.text
    error = other.json()["error"]
    assert error["code"] == "idempotency_key_reuse" and key in error["message"]
    assert error["details"] == {"job_id": first.json()["id"]}
    assert aside.api.get("/v1/jobs", token=aside.alice).json()["jobs"] == jobs_before
    same = aside.api.post("/v1/jobs", token=aside.alice, headers={"Idempotency-Key": key},
                         json={"values": {"color": "#ff0000"}, "workflow": "solid"})
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("count", [True, False, "2", 2.0, "1"])
def test_count_must_be_a_json_integer(aside: Service, count: object) -> None:
    response = aside.api.post("/v1/jobs", token=aside.alice,
                             json={"workflow": "solid", "count": count})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["errors"][0]["field"] == "count"


@pytest.mark.parametrize("field", ["count", "priority"])
@pytest.mark.parametrize("text", ["true", "2.0", "²", "", "1e3"])
def test_a_form_count_or_priority_must_be_whole_ascii_digits(aside: Service, field: str,
                                                             text: str) -> None:
    response = aside.api.post("/v1/jobs", token=aside.alice,
                             files={"workflow": (None, "solid"), field: (None, text)})
    assert response.status_code == 400, response.text
    assert f"form field {field!r}" in response.json()["error"]["message"]


def test_a_form_count_of_digits_is_a_count(aside: Service) -> None:
    response = aside.api.post("/v1/jobs", token=aside.alice,
                             files={"workflow": (None, "solid"), "count": (None, "3"),
                                    "priority": (None, "-2")})
    assert response.status_code == 202, response.text
    assert (response.json()["count"], response.json()["priority"]) == (3, -2)


def test_idempotency_keys_belong_to_their_owner(api: Api, service: Service) -> None:
    key = str(uuid.uuid4())
    mine = api.post("/v1/jobs", token=service.alice, json={"workflow": "solid"},
                    headers={"Idempotency-Key": key}).json()
    theirs = api.post("/v1/jobs", token=service.bob, json={"workflow": "solid"},
                      headers={"Idempotency-Key": key}).json()
    assert mine["id"] != theirs["id"] and theirs["owner"] == "bob"


def test_multipart_submits_carry_input_images_by_placeholder(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.alice,
                        data={"workflow": "avatar", "values": json.dumps({}), "count": "1"},
                        files={"char_avatar": ("me.png", png_bytes(12, 10, "#0000ff"),
                                               "image/png")})
    assert response.status_code == 202, response.text
    done = api.wait_job(service.alice, response.json()["id"])
    assert done["status"] == "succeeded", done
    output = api.get(f"/v1/outputs/{done['output_ids'][0]}", token=service.alice).json()
    assert (output["width"], output["height"]) == (12, 10)


def test_a_non_image_upload_is_refused_and_nothing_is_stored(api: Api, service: Service) -> None:
    blobs = service.settings.data_dir / "blobs"
    before = sorted(p.name for p in blobs.rglob("*")) if blobs.exists() else []
    jobs_before = len(api.get("/v1/jobs", token=service.bob).json()["jobs"])
    response = api.post("/v1/jobs", token=service.bob, data={"workflow": "avatar"},
                        files={"char_avatar": ("me.png", b"#!/bin/sh\nrm -rf /\n",
                                               "image/png")})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    after = sorted(p.name for p in blobs.rglob("*")) if blobs.exists() else []
    assert after == before
    assert len(api.get("/v1/jobs", token=service.bob).json()["jobs"]) == jobs_before


def test_a_truncated_image_is_refused(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.bob, data={"workflow": "avatar"},
                        files={"char_avatar": ("me.png", png_bytes()[:40], "image/png")})
    assert response.status_code == 415


def test_upload_fields_must_be_placeholder_names(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.bob, data={"workflow": "avatar"},
                        files={"../evil": ("me.png", png_bytes(), "image/png")})
    assert response.status_code == 400


def test_unknown_form_fields_are_refused(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.bob, data={"workflow": "solid", "x": "1"},
                        files={"char_avatar": ("me.png", png_bytes(), "image/png")})
    assert response.status_code == 400 and "'x'" in response.json()["error"]["message"]


def test_bad_submits_get_4xx_naming_the_problem(api: Api, service: Service) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"workflow": "nope"}, 404, "not_found"),
        ({"workflow": "solid", "count": 9}, 400, "invalid_request"),
        ({"workflow": "solid", "count": 0}, 400, "invalid_request"),
        ({"workflow": "../../etc/passwd"}, 400, "invalid_request"),
        ({"workflow": "nap", "values": {"seconds": "soon"}}, 422, "invalid_workflow"),
        ({"graph": {"nodes": [], "links": []}}, 422, "invalid_workflow"),
    ]
    for body, status, code in cases:
        response = api.post("/v1/jobs", token=service.bob, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body


def test_a_raw_graph_comfyui_would_reject_is_422_naming_node_and_input(
        api: Api, service: Service) -> None:
    graph = graphs.solid_image(8, 8)
    graph["1"]["inputs"]["width"] = 99_999
    graph["3"] = {"class_type": "NoSuchNode", "inputs": {}}
    response = api.post("/v1/jobs", token=service.bob, json={"graph": graph})
    assert response.status_code == 422
    problems = response.json()["error"]["details"]["problems"]
    assert {(p["node_id"], p["input"]) for p in problems} >= {("1", "width")}
    assert "NoSuchNode" in response.json()["error"]["message"]


def test_substitution_errors_list_their_problems(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.bob,
                        json={"workflow": "nap", "values": {"seconds": "soon"}})
    details = response.json()["error"]["details"]
    assert details["problems"] and "seconds" in response.json()["error"]["message"]


def test_a_body_that_is_not_json_or_multipart_is_refused(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.bob, data="workflow=solid",
                        headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    bad = api.post("/v1/jobs", token=service.bob, data="{not json",
                   headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "not acceptable JSON" in bad.json()["error"]["message"]


def test_list_filters_by_status_workflow_character_and_conversation(api: Api,
                                                                    service: Service) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [api.submit(service.alice, workflow="solid", character=f"c-{tag}",
                      conversation=f"v-{tag}-{i % 2}")["id"] for i in range(4)]
    for job_id in ids:
        api.wait_job(service.alice, job_id)

    def listed(**query: str) -> set[str]:
        response = api.get("/v1/jobs", token=service.alice, params=query)
        assert response.status_code == 200, response.text
        return {j["id"] for j in response.json()["jobs"]}

    assert listed(character=f"c-{tag}") == set(ids)
    assert listed(conversation=f"v-{tag}-0") == {ids[0], ids[2]}
    assert listed(character=f"c-{tag}", status="succeeded") == set(ids)
    assert listed(character=f"c-{tag}", status="failed") == set()
    assert listed(character=f"c-{tag}", workflow="nap") == set()
    assert api.get("/v1/jobs", token=service.alice, params={"status": "done"}).status_code == 422


def test_an_admin_lists_one_owners_jobs_and_others_may_only_ask_for_their_own(
        api: Api, service: Service) -> None:
    tag = uuid.uuid4().hex[:8]
    alices = api.submit(service.alice, workflow="solid", character=tag)["id"]
    bobs = api.submit(service.bob, workflow="solid", character=tag)["id"]

    def listed(token: str, **query: str) -> set[str]:
        response = api.get("/v1/jobs", token=token, params={"character": tag, **query})
        assert response.status_code == 200, response.text
        return {j["id"] for j in response.json()["jobs"]}

    assert listed(service.admin) == {alices, bobs}
    assert listed(service.admin, owner="bob") == {bobs}
    assert listed(service.alice, owner="alice") == listed(service.alice) == {alices}
    refused = api.get("/v1/jobs", token=service.alice, params={"owner": "bob"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert "admin token" in refused.json()["error"]["message"]


def test_queued_images_know_how_many_go_before_them(api: Api, idle: Service) -> None:
    old = idle.api.submit(idle.alice, workflow="solid", count=2)
    urgent = idle.api.submit(idle.bob, workflow="solid", priority=5)
    new = idle.api.submit(idle.alice, workflow="solid")

    def positions(job: dict[str, object]) -> list[object]:
        found = idle.api.job(idle.alice if job is not urgent else idle.bob, str(job["id"]))
        assert found["progress"] == 0.0
        return [i["queue_position"] for i in found["items"]]

    assert (positions(urgent), positions(old), positions(new)) == ([0], [1, 2], [3])
    listed = idle.api.get("/v1/jobs", token=idle.admin).json()["jobs"]
    assert {j["id"]: [i["queue_position"] for i in j["items"]] for j in listed} == {
        urgent["id"]: [0], old["id"]: [1, 2], new["id"]: [3]}
    canceled = idle.api.delete(f"/v1/jobs/{urgent['id']}", token=idle.bob).json()
    assert canceled["items"][0]["queue_position"] is None
    assert positions(old) == [0, 1]


def test_a_finished_job_has_full_progress_and_no_queue_position(api: Api,
                                                                service: Service) -> None:
    job = api.submit(service.alice, workflow="solid", count=2)
    done = api.wait_job(service.alice, job["id"])
    assert done["progress"] == 1.0
    assert [i["queue_position"] for i in done["items"]] == [None, None]


def test_list_pages_with_next_cursor_newest_first(api: Api, service: Service) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [api.submit(service.alice, workflow="solid", character=tag)["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"character": tag, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/jobs", token=service.alice, params=params).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    bad = api.get("/v1/jobs", token=service.alice, params={"cursor": "garbage"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_request")


@pytest.mark.every_comfyui
def test_delete_cancels_a_running_job(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="nap", values={"seconds": 60})
    wait_until(lambda: api.job(service.alice, job["id"])["status"] == "running", 30,
               "the nap to start")
    response = api.delete(f"/v1/jobs/{job['id']}", token=service.alice)
    assert response.status_code in (200, 202)
    assert response.json()["status"] in ("canceling", "canceled")
    assert api.wait_job(service.alice, job["id"], timeout=30)["status"] == "canceled"
    again = api.delete(f"/v1/jobs/{job['id']}", token=service.alice)
    assert (again.status_code, again.json()["status"]) == (200, "canceled")


def test_retry_runs_a_failed_job_again(api: Api, service: Service) -> None:
    job = api.submit(service.alice, graph=graphs.failing("boom", seed=random.randrange(999)))
    failed = api.wait_job(service.alice, job["id"])
    assert failed["status"] == "failed" and "boom" in failed["items"][0]["error"]["message"]
    response = api.post(f"/v1/jobs/{job['id']}/retry", token=service.alice)
    assert response.status_code == 202
    again = api.wait_job(service.alice, job["id"])
    assert again["status"] == "failed"
    assert again["items"][0]["attempts"] > failed["items"][0]["attempts"]


def test_two_hundred_concurrent_submissions_all_complete(api: Api, service: Service) -> None:
    """Nothing is lost: every 202 is a job, every job succeeds with its one output."""
    tag = uuid.uuid4().hex[:8]

    def submit(index: int) -> str:
        graph = graphs.solid_image(8, 8, f"#{index:06x}", seed=index, prefix=f"load{tag}")
        response = api.post("/v1/jobs", token=service.alice,
                            json={"graph": graph, "character": tag})
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    with ThreadPoolExecutor(max_workers=32) as pool:
        ids = list(pool.map(submit, range(200)))
    assert len(set(ids)) == 200

    def listed(status: str) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"character": tag, "status": status, "limit": "200",
                      **({"cursor": cursor} if cursor else {})}
            page = api.get("/v1/jobs", token=service.alice, params=params).json()
            jobs += page["jobs"]
            cursor = page["next_cursor"]
            if cursor is None:
                return jobs

    wait_until(lambda: len(listed("succeeded")) == 200, 240, "200 jobs to succeed")
    done = listed("succeeded")
    assert {j["id"] for j in done} == set(ids)
    assert all(len(j["output_ids"]) == 1 for j in done)
