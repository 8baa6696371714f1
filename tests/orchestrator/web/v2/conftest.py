"""A real v2 service for the SDK tests, and the real ``comfy-sdk`` pointed at it.

Every response the SDK (or a test's own ``raw`` call) receives is validated against the
spec fetched from the comfy-sdk 0.5.0 source distribution: JSON bodies by an httpx
response hook, SSE payloads by a decoder that checks each event before the SDK sees it.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import comfy_low.transport
import httpx
import pytest
from comfy_low.sse import RawEvent, SSEDecoder
from comfy_sdk import Comfy
from PIL import Image

from orchestrator.nodes import NodeConfig
from tests.orchestrator.web.v2.spec import Spec, fetch_spec
from tests.service import RunningService, start_running, stopping_all

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HTTP_TIMEOUT = 30.0
_seeds = itertools.count(int(time.time()) % 1_000_000 * 1000)


def fresh_seed() -> int:
    """A seed no earlier test used, so ComfyUI's cache never skips a node."""
    return next(_seeds)


def png_bytes(color: str = "#ff0000", size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def spec() -> Spec:
    """The v2 spec; fetching it must work under CI=true, elsewhere its absence skips."""
    try:
        return Spec.load(fetch_spec())
    except (RuntimeError, OSError) as exc:
        if IN_CI:
            pytest.fail(f"cannot fetch the Comfy API v2 spec under CI=true: {exc}", pytrace=False)
        pytest.skip(f"cannot fetch the Comfy API v2 spec: {exc}")


@dataclass(kw_only=True)
class V2Service(RunningService):
    """A running service with the v2 routes, two callers' tokens, and its data folder."""

    alice: str
    bob: str
    data_dir: Path


def start_v2(data_dir: Path, nodes: list[str], *, max_in_flight: int = 1,
             tokens: dict[str, str] | None = None, **settings: Any) -> V2Service:
    """A service on a free loopback port; ``tokens`` reuses the alice/bob of an earlier run."""
    running = start_running(
        data_dir, data_dir / "workflows",
        [NodeConfig(url=u, max_in_flight=max_in_flight) for u in nodes], **settings)
    store = running.tokens
    known = tokens or {"alice": store.create("alice"), "bob": store.create("bob")}
    return V2Service(**vars(running), alice=known["alice"], bob=known["bob"], data_dir=data_dir)


ServiceFactory = Callable[..., V2Service]


@pytest.fixture(scope="module")
def v2_factory(comfy_url: str, tmp_path_factory: pytest.TempPathFactory,
               spec: Spec) -> Iterator[ServiceFactory]:
    """Start services (default: the session's ComfyUI); all stop when the module ends."""
    def start(*, nodes: list[str] | None = None, data_dir: Path | None = None,
              **settings: Any) -> V2Service:
        return start_v2(data_dir or tmp_path_factory.mktemp("v2"),
                        [comfy_url] if nodes is None else nodes, **settings)

    with stopping_all(start) as factory:
        yield factory


@pytest.fixture(scope="module")
def v2(v2_factory: ServiceFactory) -> V2Service:
    """The module's shared service: one node, one item at a time on it."""
    return v2_factory()


# --- checking every response ----------------------------------------------------------------


def response_checker(spec: Spec) -> Callable[[httpx.Response], None]:
    """An httpx response hook validating every JSON body against the spec."""
    def check(response: httpx.Response) -> None:
        path = response.request.url.path
        if "/api/v2/" not in path or response.request.method == "HEAD":
            return
        kind = response.headers.get("content-type", "")
        if kind.startswith("text/event-stream") or "/content" in path and response.is_success:
            return
        if response.status_code == 204:
            assert not response.read(), f"204 with a body from {path}"
            return
        response.read()
        spec.check_response(response.request.method, path, response.status_code,
                            response.json())
    return check


class CheckedDecoder(SSEDecoder):
    """The SDK's SSE decoder, validating each event payload against the spec."""

    spec: Spec
    seen: list[RawEvent]

    def push(self, line: str) -> list[RawEvent]:
        events = super().push(line)
        for event in events:
            self.spec.check_event(event.event, event.data)
            type(self).seen.append(event)
        return events


@pytest.fixture
def sse_log(spec: Spec, monkeypatch: pytest.MonkeyPatch) -> list[RawEvent]:
    """Every SSE event the SDK decoded in this test (each checked against the spec)."""
    seen: list[RawEvent] = []
    checked = type("Checked", (CheckedDecoder,), {"spec": spec, "seen": seen})
    monkeypatch.setattr(comfy_low.transport, "SSEDecoder", checked)
    return seen


SdkFactory = Callable[..., Comfy]


@pytest.fixture
def sdk_for(spec: Spec, monkeypatch: pytest.MonkeyPatch,
            sse_log: list[RawEvent]) -> Iterator[SdkFactory]:
    """``sdk_for(service, token)``: a real ``Comfy`` client (closed after the test)."""
    clients: list[Comfy] = []

    def make(service: V2Service, token: str) -> Comfy:
        monkeypatch.setenv("COMFY_BASE_URL", service.url)
        monkeypatch.delenv("COMFY_API_KEY", raising=False)
        client = Comfy(api_key=token)
        client._low._client.event_hooks["response"].append(response_checker(spec))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sdk(sdk_for: SdkFactory, v2: V2Service) -> Comfy:
    """The SDK as alice on the module's service."""
    return sdk_for(v2, v2.alice)


@pytest.fixture
def raw(spec: Spec) -> Iterator[Callable[..., httpx.Response]]:
    """``raw(service, method, path, token=..., **kw)``: one checked request outside the SDK."""
    client = httpx.Client(timeout=HTTP_TIMEOUT,
                          event_hooks={"response": [response_checker(spec)]})

    def call(service: V2Service, method: str, path: str, *, token: str | None = None,
             **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return client.request(method, service.url + path, headers=headers, **kwargs)

    yield call
    client.close()


def as_json(data: Any) -> str:
    return json.dumps(data)
