"""Who reads and cancels which prompt through the gateway: the façade's one rule, the same
as through ``/v1`` (an owner their own, an admin every owner's); over a real uvicorn and a
real ComfyUI node."""

from __future__ import annotations

import uuid

from orchestrator.web.gateway import versions
from tests import graphs
from tests.orchestrator.web.conftest import Service
from tests.orchestrator.web.gateway.conftest import ComfyApi, comfy_api


def _has_jobs_api(service: Service) -> bool:
    """Whether the release behind the gateway serves ``/api/jobs`` (0.16 and later)."""
    return versions.has(versions.speaking(n.comfyui_version for n in service.orch.nodes()),
                        versions.JOBS_API)


def test_an_admin_reads_any_prompt_and_others_read_none(service: Service, alice: ComfyApi,
                                                        bob: ComfyApi) -> None:
    admin = comfy_api(service, service.admin)
    prompt_id = alice.prompt(graphs.solid_image(seed=4101))
    entry = alice.history(prompt_id)

    assert admin.get(f"/history/{prompt_id}").json() == {prompt_id: entry}
    assert prompt_id in admin.get("/history").json()
    # As through /v1: the admin's token reads the same job there.
    assert service.api.job(service.admin, prompt_id)["id"] == prompt_id

    unknown = str(uuid.uuid4())
    theirs, missing = bob.get(f"/history/{prompt_id}"), bob.get(f"/history/{unknown}")
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert prompt_id not in bob.get("/history").json()

    if _has_jobs_api(service):  # older releases have no /api/jobs to read it through
        assert admin.get(f"/api/jobs/{prompt_id}").json()["id"] == prompt_id
        assert any(job["id"] == prompt_id for job in admin.get("/api/jobs").json()["jobs"])
        assert bob.get(f"/api/jobs/{prompt_id}").status_code == 404


def test_an_admin_cancels_a_prompt_by_id_and_a_bulk_clear_keeps_to_its_own(
        service: Service, alice: ComfyApi, bob: ComfyApi) -> None:
    admin = comfy_api(service, service.admin)
    running = alice.prompt(graphs.sleep(30, 30, seed=4110))
    waiting = [alice.prompt(graphs.sleep(30, 30, seed=4111 + i)) for i in range(2)]

    assert admin.post("/queue", json={"clear": True}).status_code == 200
    assert bob.post("/queue", json={"delete": waiting}).status_code == 200
    assert bob.post("/interrupt", json={"prompt_id": running}).status_code == 200
    queue = admin.get("/queue").json()
    assert {i[1] for i in queue["queue_running"] + queue["queue_pending"]} >= {running,
                                                                                *waiting}

    assert admin.post("/queue", json={"delete": waiting}).status_code == 200
    assert admin.post("/interrupt", json={"prompt_id": running}).status_code == 200
    for prompt_id in [running, *waiting]:
        assert alice.history(prompt_id)["status"]["status_str"] == "error"
