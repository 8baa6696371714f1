"""Limits with clear 4xx answers: body size, prompt length, uploads, rate, queue bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.web.errors import PayloadTooLarge, PromptTooLong, UnsupportedMedia
from orchestrator.web.limits import RateLimiter, check_image, check_prompts
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


def test_too_many_requests_per_token_are_429_until_time_passes(
        service_factory: ServiceFactory) -> None:
    clock = FakeClock()
    svc = service_factory(rate_per_minute=60, rate_burst=3, clock=clock)
    statuses = [svc.api.get("/v1/jobs", token=svc.alice).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = svc.api.get("/v1/jobs", token=svc.alice)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert svc.api.get("/v1/jobs", token=svc.bob).status_code == 200  # other tokens go on
    clock.now += 1
    assert svc.api.get("/v1/jobs", token=svc.alice).status_code == 200
    assert svc.api.get("/v1/health").status_code == 200  # health is never limited


def test_a_full_queue_is_429_queue_full(service_factory: ServiceFactory) -> None:
    svc = service_factory(max_queued=2)
    name = svc.orch.nodes()[0].name
    svc.orch.drain_node(name)
    try:
        first = svc.api.post("/v1/jobs", token=svc.alice, json={"workflow": "solid", "count": 2})
        assert first.status_code == 202
        full = svc.api.post("/v1/jobs", token=svc.alice, json={"workflow": "solid"})
        assert (full.status_code, full.json()["error"]["code"]) == (429, "queue_full")
        assert int(full.headers["Retry-After"]) > 0
    finally:
        svc.orch.drain_node(name, False)
