"""A job's events as SSE: numbered frames, resume with Last-Event-ID, keep-alive comments."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import requests

from orchestrator.events import PreviewEvent, Queued
from orchestrator.web import sse
from orchestrator.web.errors import InvalidRequest
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import Api, Service, ServiceFactory, read_events

KEEPALIVE_S = 0.3


@pytest.fixture(scope="module")
def service(service_factory: ServiceFactory) -> Service:
    """A service whose keep-alive comments come every 0.3 s, so tests can see them."""
    return service_factory(sse_keepalive_s=KEEPALIVE_S)


def stream(api: Api, token: str, job_id: str, **headers: str) -> requests.Response:
    response = api.get(f"/v1/jobs/{job_id}/events", token=token, stream=True, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response


# --- frames (no server) -----------------------------------------------------------------------


def test_a_frame_carries_the_seq_as_id_and_the_type_as_event() -> None:
    event = Queued(job_id="j", count=2, seq=7, at=datetime(2026, 1, 1, tzinfo=UTC))
    assert sse.encode(event) == (
        b'id: 7\nevent: queued\ndata: {"job_id":"j","seq":7,'
        b'"at":"2026-01-01T00:00:00Z","type":"queued","count":2}\n\n')


def test_previews_travel_as_base64() -> None:
    event = PreviewEvent(job_id="j", item=0, mime="image/png", image=b"\x89PNG\xff", seq=3)
    data = json.loads(sse.encode(event).split(b"data: ")[1])
    assert base64.b64decode(data["image"]) == b"\x89PNG\xff"


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), (" 12 ", 12)])
def test_last_event_id(value: str | None, expected: int | None) -> None:
    assert sse.parse_last_event_id(value) == expected


def test_a_last_event_id_we_never_sent_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        sse.parse_last_event_id("abc")


# --- over HTTP ---------------------------------------------------------------------------------


def test_a_stream_starts_with_a_snapshot_and_ends_after_the_job(api: Api,
                                                                service: Service) -> None:
    job = api.submit(service.alice, workflow="nap", values={"seconds": 0.4})
    with stream(api, service.alice, job["id"]) as response:
        events = read_events(response)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "snapshot" and kinds[-1] == "finished"
    assert "progress" in kinds and "output" in kinds
    assert events[-1]["data"]["status"] == "succeeded"
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids[1:])) == len(ids) - 1


def test_resume_with_last_event_id_sends_only_what_followed(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="nap", values={"seconds": 0.6})
    with stream(api, service.alice, job["id"]) as response:
        first = read_events(response, stop=lambda e: e["event"] == "progress")
    cut = first[-1]["id"]
    with stream(api, service.alice, job["id"], **{"Last-Event-ID": cut}) as response:
        rest = read_events(response)
    assert rest and all(int(e["id"]) > int(cut) for e in rest)
    assert rest[0]["event"] != "snapshot" and rest[-1]["event"] == "finished"
    with stream(api, service.alice, job["id"]) as response:
        everything = read_events(response)
    assert everything[-1]["data"]["status"] == "succeeded"


def test_resume_with_the_query_parameter_works_too(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="nap", values={"seconds": 0.2})
    api.wait_job(service.alice, job["id"])
    first = service.orch._bus.history(job["id"])[0].seq  # type: ignore[attr-defined]
    response = api.get(f"/v1/jobs/{job['id']}/events", token=service.alice, stream=True,
                       params={"after": str(first)})
    with response:
        events = read_events(response)
    assert events and all(int(e["id"]) > first for e in events)
    assert events[-1]["event"] == "finished"


def test_a_client_that_comes_after_the_end_gets_the_final_state(api: Api,
                                                                service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    done = api.wait_job(service.alice, job["id"])
    with stream(api, service.alice, job["id"]) as response:
        events = read_events(response)
    assert [e["event"] for e in events] == ["snapshot"]
    assert events[0]["data"]["status"] == "succeeded"
    assert events[0]["data"]["outputs"] == done["output_ids"]
    last = events[0]["id"]
    with stream(api, service.alice, job["id"], **{"Last-Event-ID": last}) as response:
        again = read_events(response)
    assert [e["event"] for e in again] == ["snapshot"]


def test_ids_from_before_a_restart_get_a_fresh_snapshot(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    api.wait_job(service.alice, job["id"])
    with stream(api, service.alice, job["id"], **{"Last-Event-ID": "99999"}) as response:
        events = read_events(response)
    assert [e["event"] for e in events] == ["snapshot"]


def test_a_quiet_job_gets_keep_alive_comments(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="nap", values={"seconds": 1.5})
    with stream(api, service.alice, job["id"]) as response:
        events = read_events(response)
    assert sum(e["comments"] for e in events) >= 1
    assert events[-1]["event"] == "finished"


def test_a_bad_last_event_id_is_400(api: Api, service: Service) -> None:
    job = api.submit(service.alice, workflow="solid")
    response = api.get(f"/v1/jobs/{job['id']}/events", token=service.alice,
                       headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 400


def test_a_client_that_disconnects_releases_its_subscription(api: Api,
                                                             service: Service) -> None:
    job = api.submit(service.alice, workflow="nap", values={"seconds": 5})
    with stream(api, service.alice, job["id"]) as response:
        read_events(response, stop=lambda e: True)
    # The bus has no public subscriber count; its table is the only witness of a leak.
    wait_until(lambda: not service.orch._bus._subs.get(job["id"]), 3,
               "the server to drop the subscription of a client that left")
    assert api.job(service.alice, job["id"])["status"] in ("queued", "running")
    api.delete(f"/v1/jobs/{job['id']}", token=service.alice)


def test_the_snapshot_carries_progress_and_queue_positions(
        service_factory: ServiceFactory) -> None:
    idle = service_factory(nodes=())  # no node: the job stays queued
    job = idle.api.submit(idle.alice, workflow="solid", count=2)
    response = idle.api.get(f"/v1/jobs/{job['id']}/events", token=idle.alice, stream=True)
    with response:
        (snapshot,) = read_events(response, stop=lambda e: True)
    assert snapshot["event"] == "snapshot" and snapshot["data"]["progress"] == 0.0
    assert [i["queue_position"] for i in snapshot["data"]["items"]] == [0, 1]
