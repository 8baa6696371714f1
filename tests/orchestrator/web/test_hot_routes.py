"""A job's hot routes (submit, its event stream, its output's bytes) are plain routes that
read the job once, and answer every other request exactly as the documented routes do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator.jobs import Job
from orchestrator.service import Orchestrator
from orchestrator.web.routing import FastRoute, RouteIndex
from tests.orchestrator.web.conftest import Api, Service, read_events


@pytest.fixture()
def job_reads(service: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each ``Orchestrator.get`` the faces make, by job id."""
    reads: list[str] = []
    real: Callable[[str], Job] = service.orch.get

    def counting(job_id: str) -> Job:
        reads.append(job_id)
        return real(job_id)

    monkeypatch.setattr(service.orch, "get", counting)
    yield reads


def test_a_submit_answers_with_the_job_it_recorded_without_reading_it_back(
        api: Api, service: Service, job_reads: list[str]) -> None:
    job = api.submit(service.alice, workflow="solid")
    assert job["status"] in ("queued", "running", "succeeded")
    assert job_reads == []


def test_a_stream_reads_the_store_once_for_the_access_check_and_the_snapshot(
        api: Api, service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    job = api.submit(service.alice, workflow="solid")
    api.wait_job(service.alice, job["id"])
    store: Any = service.orch._store
    reads: list[str] = []
    for name in ("get_job", "job_view"):
        real = getattr(store, name)

        def counting(job_id: str, *args: Any, _name: str = name, _real: Any = real,
                     **kwargs: Any) -> Any:
            if job_id == job["id"]:
                reads.append(_name)
            return _real(job_id, *args, **kwargs)

        monkeypatch.setattr(store, name, counting)
    with api.get(f"/v1/jobs/{job['id']}/events", token=service.alice, stream=True) as response:
        events = read_events(response)
    assert events[0]["event"] == "snapshot"
    assert reads == ["job_view"]


def test_another_owners_stream_is_404_and_subscribes_nothing(api: Api,
                                                            service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    before = _subscribers(service.orch, job["id"])
    response = api.get(f"/v1/jobs/{job['id']}/events", token=service.bob)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert _subscribers(service.orch, job["id"]) == before


def test_a_stream_closed_before_its_first_event_releases_its_subscription(
        api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    who = service.tokens.authenticate(service.alice)
    assert who is not None
    following = service.orch.follow_for(who, job["id"])
    assert _subscribers(service.orch, job["id"]) >= 1
    asyncio.run(following.aclose())
    assert following.sub.closed


def test_a_query_the_plain_stream_does_not_take_goes_to_the_documented_route(
        api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    response = api.get(f"/v1/jobs/{job['id']}/events?after=-1", token=service.alice)
    assert response.status_code == 422  # FastAPI's check of ?after=, in our envelope
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/v1/outputs/x/content"),
                                              ("PUT", "/v1/jobs"),
                                              ("POST", "/v1/jobs/x/events")])
def test_a_method_no_route_serves_is_405_as_before(api: Api, service: Service, method: str,
                                                   path: str) -> None:
    response = api.request(method, path, token=service.alice)
    assert response.status_code == 405


def test_output_bytes_honour_ranges_and_etags(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    done = api.wait_job(service.alice, job["id"])
    output = f"/v1/outputs/{done['output_ids'][0]}/content"
    whole = api.get(output, token=service.alice)
    assert whole.status_code == 200 and whole.content[:4] == b"\x89PNG"
    part = api.get(output, token=service.alice, headers={"Range": "bytes=1-3"})
    assert (part.status_code, part.content) == (206, whole.content[1:4])
    assert part.headers["Content-Range"] == f"bytes 1-3/{len(whole.content)}"
    cached = api.get(output, token=service.alice,
                     headers={"If-None-Match": whole.headers["ETag"]})
    assert cached.status_code == 304


def test_each_hot_route_is_served_plainly_ahead_of_its_documented_twin(
        service: Service) -> None:
    app: Any = service.server.server.config.app
    index = next(r for r in app.router.routes if isinstance(r, RouteIndex))
    fast = [r for r in index.routes if isinstance(r, FastRoute)]
    paths = {r.path for r in fast}
    assert {"/v1/jobs", "/v1/jobs/{job_id}/events", "/v1/outputs/{output_id}/content",
            "/api/v2/jobs", "/api/v2/jobs/{job_id}/events",
            "/api/v2/assets/{asset_id}/content", "/comfyui/{token}/prompt",
            "/comfyui/prompt", "/comfyui/{token}/history/{prompt_id}",
            "/comfyui/{token}/view"} <= paths
    for route in fast:
        at = index.routes.index(route)
        assert index.routes[at + 1] is route.fallback


def _subscribers(orch: Orchestrator, job_id: str) -> int:
    bus: Any = orch._bus
    with bus._lock:
        return len(bus._subs.get(job_id, []))


def test_a_v2_stream_of_an_ended_job_ends_and_leaves_no_subscription(
        api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    api.wait_job(service.alice, job["id"])
    before = _subscribers(service.orch, job["id"])
    with api.get(f"/api/v2/jobs/{job['id']}/events", token=service.alice,
                 stream=True) as response:
        frames = read_events(response)
    assert [f["event"] for f in frames][-1] == "status"
    assert frames[-1]["data"]["status"] == "succeeded"
    assert _subscribers(service.orch, job["id"]) == before
    other = api.get(f"/api/v2/jobs/{job['id']}/events", token=service.bob)
    assert other.status_code == 404
