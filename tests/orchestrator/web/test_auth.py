"""Who may call what: tokens, revocation, owners, admins, and data of other owners."""

from __future__ import annotations

import pytest

from orchestrator.settings import MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES
from tests.orchestrator.web.conftest import Api, Service

PROTECTED = [("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/abc"),
             ("GET", "/v1/workflows"), ("GET", "/v1/nodes"), ("GET", "/v1/gallery"),
             ("GET", "/v1/outputs/abc/content"), ("GET", "/v1/jobs/abc/events"),
             ("GET", "/v1/me"), ("GET", "/v1/outputs"), ("DELETE", "/v1/outputs/abc"),
             ("GET", "/v1/object_info"), ("POST", "/v1/workflows/x/check"),
             ("GET", "/v1/workflows/x/preview")]


def test_health_needs_no_token(api: Api) -> None:
    response = api.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "nodes_up": 1, "nodes_total": 1,
                               "queued": response.json()["queued"], "nodes_draining": 0}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_other_route_needs_a_token(api: Api, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("token", ["nonsense", "co_00000000_secret", ""])
def test_a_wrong_token_is_refused(api: Api, token: str) -> None:
    response = api.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_a_token_in_another_scheme_is_refused(api: Api, service: Service) -> None:
    response = api.get("/v1/jobs", headers={"Authorization": f"Basic {service.alice}"})
    assert response.status_code == 401


def test_a_revoked_token_is_refused_from_the_next_request(api: Api, service: Service) -> None:
    token = service.tokens.create("carol")
    assert api.get("/v1/jobs", token=token).status_code == 200
    service.tokens.revoke(token.split("_")[1])
    response = api.get("/v1/jobs", token=token)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_another_owners_private_job_answers_404_like_a_missing_one(api: Api,
                                                                 service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/events"):
        response = api.get(path, token=service.bob)
        assert response.status_code == 404
        missing = api.get(path.replace(job["id"], "0" * 32), token=service.bob)
        assert response.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    for method, path in (("DELETE", f"/v1/jobs/{job['id']}"),
                         ("POST", f"/v1/jobs/{job['id']}/retry")):
        assert api.request(method, path, token=service.bob).status_code == 404
    assert api.job(service.alice, job["id"])["status"] != "canceled"


def test_another_owners_private_output_answers_404(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    for suffix in ("", "/content", "/thumbnail"):
        assert api.get(f"/v1/outputs/{output_id}{suffix}", token=service.bob).status_code == 404
        assert api.get(f"/v1/outputs/{output_id}{suffix}",
                       token=service.alice).status_code == 200
    response = api.post(f"/v1/outputs/{output_id}/regenerate", token=service.bob, json={})
    assert response.status_code == 404


def test_public_outputs_are_readable_by_any_token_but_their_job_is_not(
        api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid", visibility="public", character="mira")
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    assert api.get(f"/v1/outputs/{output_id}/content", token=service.bob).status_code == 200
    assert api.get(f"/v1/jobs/{job['id']}", token=service.bob).status_code == 404


def test_admin_sees_every_owners_jobs_and_outputs(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    assert api.get(f"/v1/jobs/{job['id']}", token=service.admin).status_code == 200
    assert api.get(f"/v1/outputs/{output_id}", token=service.admin).status_code == 200
    owners = {j["owner"] for j in api.get("/v1/jobs", token=service.admin).json()["jobs"]}
    assert "alice" in owners


def test_a_listing_shows_only_the_callers_jobs(api: Api, service: Service) -> None:
    api.submit(service.alice, workflow="solid")
    jobs = api.get("/v1/jobs", token=service.bob).json()["jobs"]
    assert all(j["owner"] == "bob" for j in jobs)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/v1/workflows/x", {"graph": {}}), ("DELETE", "/v1/workflows/solid", None),
    ("POST", "/v1/nodes", {"url": "http://127.0.0.1:1"}), ("DELETE", "/v1/nodes/x", None),
    ("POST", "/v1/nodes/x/drain", {}),
])
def test_changing_workflows_and_nodes_needs_an_admin_token(api: Api, service: Service,
                                                           method: str, path: str,
                                                           body: object) -> None:
    response = api.request(method, path, token=service.alice, json=body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_me_says_who_the_token_stands_for(api: Api, service: Service) -> None:
    alice = api.get("/v1/me", token=service.alice)
    assert alice.status_code == 200
    assert alice.json() == {"owner": "alice", "admin": False,
                            "token_id": service.alice.split("_")[1],
                            "max_upload_bytes": MAX_UPLOAD_BYTES,
                            "max_upload_files": MAX_UPLOAD_FILES}
    root = api.get("/v1/me", token=service.admin).json()
    assert (root["owner"], root["admin"]) == ("root", True)
