"""A node's non-file UI outputs (``{"ui": {"text": [...]}}``) on every face: recorded with
the item as outputs of kind ``value``, shown by REST ``/v1``, Comfy API v2 and the ComfyUI
gateway, and still shown after the service restarts without the node that ran it; galleries
(pictures) leave them out.

Real uvicorn over a real ComfyUI node; the node is the test pack's ``OrchTestReport``,
whose UI result is ``{"text": [...], "score": [0.5], "detail": [{...}]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.jobs import JobSpec, Visibility
from orchestrator.outputs import (
    BlobRef,
    Media,
    OutputKind,
    new_output,
    new_value_output,
    value_bytes,
)
from orchestrator.service import parse_version
from orchestrator.store import JobStore
from orchestrator.store.postgres import PostgresJobStore
from orchestrator.store.sqlite import SqliteJobStore
from orchestrator.web.gateway import versions
from tests import graphs
from tests.orchestrator.web.conftest import Service, start_service
from tests.orchestrator.web.gateway.conftest import ComfyApi, comfy_api

JOB_TIMEOUT = 120.0
UI_KEYS = ["text", "score", "detail"]  # OrchTestReport's keys, in the node's order


def _report_graph(seed: int) -> dict[str, Any]:
    """A saved image (node 2) and a node that reports values only (node 3)."""
    graph = graphs.solid_image(8, 8, seed=seed)
    graph["3"] = {"class_type": "OrchTestReport",
                  "inputs": {"text": f"a red fox {seed}", "seed": seed}}
    return graph


def _expected(seed: int) -> dict[str, Any]:
    return {"text": [f"a red fox {seed}"], "score": [0.5],
            "detail": [{"words": 4, "seed": seed}]}


def _run_through_gateway(service: Service, seed: int) -> str:
    gateway = comfy_api(service, service.alice)
    prompt_id = gateway.prompt(_report_graph(seed))
    entry = gateway.history(prompt_id, timeout=JOB_TIMEOUT)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return prompt_id


def _rest_values(service: Service, job_id: str) -> dict[str, Any]:
    response = service.api.get(f"/v1/outputs?job={job_id}", token=service.alice)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    images = [o for o in outputs if o["kind"] == "image"]
    assert len(images) == 1 and images[0]["key"] == "images" and images[0]["value"] is None
    values = [o for o in reversed(outputs) if o["kind"] == "value"]  # listed newest first
    assert {o["node_id"] for o in values} == {"3"}
    assert all(o["mime"] == "application/json" and o["filename"] == o["key"] for o in values)
    job = service.api.get(f"/v1/jobs/{job_id}", token=service.alice).json()
    assert {o["id"] for o in outputs} == set(job["output_ids"])
    content = service.api.get(f"/v1/outputs/{values[0]['id']}/content", token=service.alice)
    assert content.status_code == 200 and json.loads(content.content) == values[0]["value"]
    return {o["key"]: o["value"] for o in values}


def _v2_values(service: Service, job_id: str) -> dict[str, Any]:
    response = service.api.get(f"/api/v2/jobs/{job_id}", token=service.alice)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert sorted(o["type"] for o in outputs) == ["image", "text", "text", "text"]
    found = {}
    for output in (o for o in outputs if o["type"] == "text"):
        assert output["node_id"] == "3" and output["content_type"] == "application/json"
        content = service.api.get(output["url"].removeprefix(service.api.url),
                                  token=service.alice)
        assert content.status_code == 200, content.text
        found[output["name"]] = json.loads(content.content)
    return found


def _gateway_outputs(gateway: ComfyApi, job_id: str, *, jobs_api: bool) -> dict[str, Any]:
    """``/history``'s outputs; ``/api/jobs`` must agree where the gateway serves it (as
    ComfyUI 0.16 and later do: it speaks as the pool's newest node, or the newest release
    while it has none)."""
    entry = gateway.history(job_id)
    job = gateway.get(f"/api/jobs/{job_id}")
    assert job.status_code == (200 if jobs_api else 404), job.text
    if jobs_api:
        assert job.json()["outputs"]["3"] == entry["outputs"]["3"]
    assert len(entry["outputs"]["2"]["images"]) == 1
    outputs: dict[str, Any] = entry["outputs"]
    return outputs


def test_ui_values_show_on_every_face_and_outlive_a_restart_without_the_node(
        comfy_url: str, comfyui_version: str, tmp_path: Path) -> None:
    first = start_service(tmp_path, comfy_url)
    second: Service | None = None
    try:
        job_id = _run_through_gateway(first, 610)
        direct = first.orch.outputs_of(job_id)
        assert [r.key for r in reversed(direct) if r.kind is OutputKind.VALUE] == UI_KEYS

        for service in (first, "restart"):
            if service == "restart":
                first.stop()
                # The node is not in the pool any more: nothing can come from its memory.
                second = start_service(tmp_path, comfy_url, nodes=())
                service = second
            assert isinstance(service, Service)
            jobs_api = service is second or versions.has(parse_version(comfyui_version),
                                                        versions.JOBS_API)
            outputs = _gateway_outputs(comfy_api(service, service.alice), job_id,
                                       jobs_api=jobs_api)
            assert outputs["3"] == _expected(610)
            assert list(outputs["3"]) == UI_KEYS  # the node's order
            assert _rest_values(service, job_id) == _expected(610)
            assert _v2_values(service, job_id) == _expected(610)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_galleries_show_pictures_while_the_job_lists_its_values_too(
        comfy_url: str, tmp_path: Path) -> None:
    service = start_service(tmp_path, comfy_url)
    try:
        api = service.api
        job = api.submit(service.alice, graph=_report_graph(620), character="kit",
                         conversation="chat-620", visibility="public")
        done = api.wait_job(service.alice, job["id"], timeout=JOB_TIMEOUT)
        assert done["status"] == "succeeded", done
        listed = api.get(f"/v1/outputs?job={job['id']}", token=service.alice).json()
        assert sorted(o["kind"] for o in listed["outputs"]) == ["image", "value", "value",
                                                                "value"]
        for query, token in (("character=kit", service.bob),
                             ("conversation=chat-620", service.alice),
                             ("conversation=chat-620", service.admin)):
            gallery = api.get(f"/v1/gallery?{query}", token=token)
            assert gallery.status_code == 200, gallery.text
            assert [o["kind"] for o in gallery.json()["outputs"]] == ["image"], query
    finally:
        service.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_value_output_round_trips_through_the_job_store(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    def opened() -> JobStore:
        if backend == "postgres":
            return PostgresJobStore(str(request.getfixturevalue("postgres_url")))
        return SqliteJobStore(tmp_path / "jobs.sqlite3")

    value = [{"words": 2, "nested": {"a": [1, 2.5, None, True, "é"]}}]
    data = value_bytes(value)
    spec = JobSpec(owner="alice", graph={"1": {}}, character="kit", conversation="c",
                   visibility=Visibility.PUBLIC)
    with opened() as store:
        job = store.create_job(spec)
        item = job.items[0]
        blob = BlobRef(sha256="cd" * 32, size_bytes=len(data))
        made = store.add_output(new_value_output(job, item, blob, key="detail",
                                                 value=value, node_id="3", node="n"))
        picture = store.add_output(new_output(
            job, item, BlobRef(sha256="ef" * 32, size_bytes=3),
            Media(mime="image/png", kind=OutputKind.IMAGE), filename="a.png", node_id="2",
            node="n", key="images"))
    with opened() as store:  # read back by a store opened afresh
        again = store.get_output(made.id)
        assert again == made and again.value == value and again.kind is OutputKind.VALUE
        assert store.output_for_item_file(item.id, "detail", node_id="3") == made
        assert [o.id for o in store.list_outputs(job_id=job.id).outputs] == [
            picture.id, made.id]
        for gallery in (store.gallery_character("kit"), store.gallery_conversation("c", "alice"),
                        store.list_outputs(conversation="c", files_only=True)):
            assert [o.id for o in gallery.outputs] == [picture.id]
    assert json.loads(data) == value
