"""Limits with clear 4xx answers: body size, prompt length, uploads, rates, queue bounds.

The rate tests give the service a small limit and a hand-moved clock, to reach the limit
in a few requests; the proofs that the shipped limits let real clients through are in
``test_limits_clients.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from starlette.types import Message, Receive, Scope, Send

from orchestrator import settings as defaults
from orchestrator.jobs import MAX_COUNT
from orchestrator.settings import Settings
from orchestrator.tokens import Principal
from orchestrator.web.errors import (
    PayloadTooLarge,
    PromptTooLong,
    TooManyRequests,
    UnsupportedMedia,
)
from orchestrator.web.limits import (
    BodyLimit,
    Limits,
    RateLimiter,
    check_image,
    check_prompts,
)
from tests import graphs
from tests.orchestrator.web.conftest import Api, Service, ServiceFactory, png_bytes

BODY_LIMIT = 4096
UPLOAD_LIMIT = 8192


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- pure checks -----------------------------------------------------------------------------


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("t") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("t") == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.take("t") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("t") == 0.0


def test_buckets_are_per_key_and_never_overfill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    limiter.take("a")
    limiter.take("a")
    assert limiter.take("b") == 0.0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)][-1] > 0


def test_prompts_over_the_limit_name_the_field() -> None:
    check_prompts({"prompt": "x" * 10, "steps": "y" * 100}, 10)
    with pytest.raises(PromptTooLong, match=r"values.negative_prompt is 11 characters"):
        check_prompts({"negative_prompt": "x" * 11}, 10)


def test_images_are_opened_before_they_are_accepted(tmp_path: Path) -> None:
    assert check_image("a", png_bytes(), 10_000) == png_bytes()
    with pytest.raises(UnsupportedMedia, match="'a' is not an image"):
        check_image("a", b"GIF89a but not really", 10_000)
    with pytest.raises(PayloadTooLarge, match="upload 'a'"):
        check_image("a", png_bytes(), 10)


@pytest.mark.parametrize("declared", [b"\xb2", b"9" * 5000])
def test_a_content_length_int_cannot_read_is_413_not_a_crash(declared: bytes) -> None:
    """Latin-1 "²" passes str.isdigit and 5,000 digits are more than int() takes."""
    sent: list[Message] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the route was reached")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "headers": [(b"content-length", declared)]}
    asyncio.run(BodyLimit(route, lambda kind: 100)(scope, receive, send))

    assert sent[0]["status"] == 413


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(service_factory: ServiceFactory) -> Service:
    """A service with small limits."""
    return service_factory(max_body_bytes=BODY_LIMIT, max_upload_bytes=UPLOAD_LIMIT,
                           max_upload_files=2, max_prompt_chars=50)


def blob_files(service: Service) -> list[str]:
    blobs = service.settings.data_dir / "blobs"
    return sorted(p.name for p in blobs.rglob("*")) if blobs.exists() else []


def test_an_oversized_json_body_is_413_before_anything_runs(api: Api, service: Service) -> None:
    body = {"workflow": "solid", "values": {"x": "y" * BODY_LIMIT}}
    response = api.post("/v1/jobs", token=service.alice, json=body)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and error["details"]["limit"] == BODY_LIMIT
    assert api.get("/v1/jobs", token=service.alice).json()["jobs"] == []


def test_an_oversized_chunked_body_is_413_too(api: Api, service: Service) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"workflow": "solid", "values": {"x": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'"}}'

    response = api.post("/v1/jobs", token=service.alice, data=chunks(),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_small_chunked_body_goes_through(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.alice,
                        data=iter([b'{"workflow": ', b'"solid"}']),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    api.wait_job(service.alice, response.json()["id"])


def test_an_oversized_upload_is_413_and_nothing_is_stored(api: Api, service: Service) -> None:
    before = blob_files(service)
    big = png_bytes(200, 200, "#123456") + b"\0" * UPLOAD_LIMIT
    response = api.post("/v1/jobs", token=service.bob, data={"workflow": "avatar"},
                        files={"char_avatar": ("big.png", big, "image/png")})
    assert response.status_code == 413
    assert blob_files(service) == before


def test_more_files_than_allowed_are_refused(api: Api, service: Service) -> None:
    files = {name: (f"{name}.png", png_bytes(), "image/png") for name in ("a", "b", "c")}
    response = api.post("/v1/jobs", token=service.bob, data={"workflow": "avatar"},
                        files=files)
    assert response.status_code in (400, 413)


def test_a_prompt_over_the_limit_is_422(api: Api, service: Service) -> None:
    response = api.post("/v1/jobs", token=service.alice,
                        json={"workflow": "solid", "values": {"prompt": "p" * 51}})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "prompt_too_long"


# --- rates: what a 429 says ---------------------------------------------------------------------


def refusal(response: requests.Response, code: str) -> dict[str, Any]:
    """The error of a 429 whose message, details and ``Retry-After`` name one number."""
    assert response.status_code == 429, response.text
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"].endswith(f"; retry in {seconds} s"), error["message"]
    assert error["details"]["retry_after"] == seconds
    return error


def comfy_refusal(response: requests.Response, code: str) -> dict[str, Any]:
    """The same, in the ComfyUI shape the gateway answers with."""
    assert response.status_code == 429, response.text
    seconds = int(response.headers["Retry-After"])
    body = response.json()
    assert body["node_errors"] == {}
    error: dict[str, Any] = body["error"]
    assert (error["type"], error["code"]) == (code, code)
    assert error["message"].endswith(f"; retry in {seconds} s")
    assert isinstance(error["details"], str) and str(seconds) in error["details"]
    assert error["extra_info"]["retry_after"] == seconds
    return error


def test_a_429_rounds_its_wait_up_and_says_the_same_number_everywhere() -> None:
    clock = FakeClock()
    limits = Limits(Settings(rate_per_minute=20, rate_burst=1), clock=clock)
    who = Principal(owner="alice", admin=False, token_id="t1")
    limits.admit(who)
    clock.now += 0.7  # 2.3 s short of the next request at 20 a minute

    with pytest.raises(TooManyRequests) as caught:
        limits.admit(who)

    exc = caught.value
    assert exc.headers == {"Retry-After": "3"}
    assert str(exc) == "token t1 sent more than 20 requests a minute (bursts of 1); retry in 3 s"
    assert exc.details == {"limit": 20, "window": 60, "burst": 1, "unit": "requests",
                           "retry_after": 3}


def test_streams_are_never_refused_for_their_rate() -> None:
    limits = Limits(Settings(rate_per_minute=60, rate_burst=1), clock=FakeClock())
    who = Principal(owner="alice", admin=False, token_id="t1")
    limits.admit(who)
    for _ in range(100):
        limits.admit(who, stream=True)


def test_body_bytes_are_metered_per_owner_not_per_token() -> None:
    clock = FakeClock()
    limits = Limits(Settings(max_body_bytes=1024, max_upload_bytes=1024, max_upload_files=1,
                             upload_bytes_per_minute=6000, upload_burst_bytes=2048),
                    clock=clock)
    alice1 = Principal(owner="alice", admin=False, token_id="t1")
    alice2 = Principal(owner="alice", admin=False, token_id="t2")
    limits.admit(alice1, body_bytes=1500)
    with pytest.raises(TooManyRequests) as caught:
        limits.admit(alice2, body_bytes=1500)  # 952 bytes short at 100 bytes a second
    assert caught.value.details["unit"] == "bytes"
    assert caught.value.headers == {"Retry-After": "10"}
    limits.admit(Principal(owner="bob", admin=False, token_id="t3"), body_bytes=1500)
    clock.now += 10
    limits.admit(alice2, body_bytes=1500)


def test_an_amount_over_the_burst_is_charged_as_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=600, burst=100, clock=clock)
    assert limiter.take("o", 60) == 0.0
    assert limiter.take("o", 60) == pytest.approx(2.0)
    clock.now += 10
    assert limiter.take("o", 1_000) == 0.0


def test_over_its_rate_a_token_gets_429_on_every_face_but_its_streams(
        service_factory: ServiceFactory) -> None:
    clock = FakeClock()
    # A small rate on a clock moved by hand, to reach the limit in a few requests.
    svc = service_factory(rate_per_minute=60, rate_burst=3, clock=clock)
    job = svc.api.submit(svc.alice, workflow="solid")
    svc.api.wait_job(svc.alice, job["id"])  # spends the rest of the burst, then waits
    clock.now += 1  # one request's worth

    assert svc.api.get("/v1/jobs", token=svc.alice).status_code == 200
    v1 = refusal(svc.api.get(f"/v1/jobs/{job['id']}", token=svc.alice), "rate_limited")
    v2 = refusal(svc.api.get(f"/api/v2/jobs/{job['id']}", token=svc.alice), "rate_limited")
    gateway = comfy_refusal(svc.api.get(f"/comfyui/{svc.alice}/history/{job['id']}"),
                            "rate_limited")
    for details in (v1["details"], v2["details"], gateway["extra_info"]):
        assert (details["limit"], details["window"], details["burst"]) == (60, 60, 3)

    for path in (f"/v1/jobs/{job['id']}/events", f"/api/v2/jobs/{job['id']}/events"):
        with svc.api.get(path, token=svc.alice, stream=True) as stream:
            assert stream.status_code == 200, path
    socket = websocket.create_connection(
        svc.api.url.replace("http://", "ws://") + f"/comfyui/{svc.alice}/ws?clientId=c1",
        timeout=10)
    assert json.loads(socket.recv())["type"] == "status"
    socket.close()

    assert svc.api.get("/v1/jobs", token=svc.bob).status_code == 200  # other tokens go on
    assert svc.api.get("/v1/health").status_code == 200  # health is never limited
    clock.now += 1
    assert svc.api.get("/v1/jobs", token=svc.alice).status_code == 200


def test_request_bodies_over_the_owners_byte_rate_are_429(
        service_factory: ServiceFactory) -> None:
    clock = FakeClock()
    # Small bodies and a small byte rate, to reach the limit with a few small requests.
    svc = service_factory(max_body_bytes=4096, max_upload_bytes=1024, max_upload_files=1,
                          upload_bytes_per_minute=1024, upload_burst_bytes=1024, clock=clock)
    body = json.dumps({"workflow": "solid"}) + " " * 2000  # 2,021 bytes of valid JSON

    def post(token: str) -> requests.Response:
        return svc.api.post("/v1/jobs", token=token, data=body,
                            headers={"Content-Type": "application/json"})

    # The burst is one largest body (5,120 bytes): two of these fit, the third does not.
    assert [post(svc.alice).status_code for _ in range(2)] == [202, 202]
    error = refusal(post(svc.alice), "rate_limited")
    assert (error["details"]["unit"], error["details"]["limit"]) == ("bytes", 1024)
    assert svc.api.get("/v1/jobs", token=svc.alice).status_code == 200  # reads go on
    assert post(svc.bob).status_code == 202  # bodies are counted per owner


# --- the queue: what costs GPU time -------------------------------------------------------------


def test_a_full_queue_is_429_queue_full(service_factory: ServiceFactory) -> None:
    svc = service_factory(max_queued=2)
    name = svc.orch.nodes()[0].name
    svc.orch.drain_node(name)
    try:
        first = svc.api.post("/v1/jobs", token=svc.alice, json={"workflow": "solid", "count": 2})
        assert first.status_code == 202
        full = refusal(svc.api.post("/v1/jobs", token=svc.bob, json={"workflow": "solid"}),
                       "queue_full")
        assert full["details"] | {"retry_after": 0} == {"limit": 2, "queued": 2,
                                                        "scope": "service", "retry_after": 0}
    finally:
        svc.orch.cancel(first.json()["id"])
        svc.orch.drain_node(name, False)


def test_a_full_queue_still_names_what_is_wrong_with_a_bad_graph_first(
        service_factory: ServiceFactory) -> None:
    """Admission runs in one order on every face: the graph's shape and the pre-flight
    come before the queue bound, so a client fixes its graph before it is told to wait."""
    svc = service_factory(max_queued=2)  # lowered so two images fill the queue
    name = svc.orch.nodes()[0].name
    svc.orch.drain_node(name)
    try:
        first = svc.api.post("/v1/jobs", token=svc.alice, json={"workflow": "solid", "count": 2})
        assert first.status_code == 202
        shapeless = svc.api.post("/v1/jobs", token=svc.bob,
                                 json={"graph": {"1": {"inputs": {}}}})
        assert shapeless.status_code == 422, shapeless.text
        assert "class_type" in shapeless.json()["error"]["message"]
        bad = graphs.solid_image(16, 16)
        bad["1"]["inputs"]["width"] = -5
        rejected = svc.api.post("/v1/jobs", token=svc.bob, json={"graph": bad})
        assert rejected.status_code == 422, rejected.text
        assert [p["input"] for p in rejected.json()["error"]["details"]["problems"]] == ["width"]
        refusal(svc.api.post("/v1/jobs", token=svc.bob, json={"graph": graphs.solid_image()}),
                "queue_full")
    finally:
        svc.orch.cancel(first.json()["id"])
        svc.orch.drain_node(name, False)


def test_a_flood_of_submissions_fills_the_owners_share_and_no_more(
        service_factory: ServiceFactory) -> None:
    """At the shipped limits: an owner's flood stops at its share of the queue, on every
    face, with a consistent Retry-After; another owner still gets in."""
    svc = service_factory()
    name = svc.orch.nodes()[0].name
    share = defaults.MAX_QUEUED_PER_OWNER
    svc.orch.drain_node(name)
    flood: list[str] = []
    try:
        for _ in range(share // MAX_COUNT + 1):
            answer = svc.api.post("/v1/jobs", token=svc.alice,
                                  json={"workflow": "solid", "count": MAX_COUNT})
            if answer.status_code != 202:
                break
            flood.append(answer.json()["id"])

        assert len(flood) == share // MAX_COUNT
        assert svc.orch.queued_count("alice") == len(flood) * MAX_COUNT
        v1 = refusal(answer, "queue_full")
        v2 = refusal(svc.api.post("/api/v2/jobs", token=svc.alice,
                                  json={"workflow": graphs.solid_image(seed=1)}), "queue_full")
        gateway = comfy_refusal(svc.api.post(f"/comfyui/{svc.alice}/prompt",
                                             json={"prompt": graphs.solid_image(seed=2)}),
                                "queue_full")
        for details in (v1["details"], v2["details"], gateway["extra_info"]):
            assert (details["scope"], details["limit"]) == ("owner", share)
        assert svc.api.post("/v1/jobs", token=svc.bob, json={"workflow": "solid"}
                            ).status_code == 202
    finally:
        cancel_unfinished(svc)
        svc.orch.drain_node(name, False)


def cancel_unfinished(svc: Service) -> None:
    """Cancel every job of the service not finished yet (before its node takes work)."""
    cursor = None
    while True:
        page = svc.orch.list(limit=200, cursor=cursor)
        for job in page.jobs:
            if not job.status.terminal:
                svc.orch.cancel(job.id)
        cursor = page.next_cursor
        if cursor is None:
            return
