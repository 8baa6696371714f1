"""A real service for the web tests: uvicorn on a free loopback port, over a real
Orchestrator and the session's real ComfyUI node, called with ``requests``."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from orchestrator.web.limits import Clock
from tests.helpers import wait_until
from tests.service import RunningService, start_running, stopping_all

HTTP_TIMEOUT = 30.0

SOLID = {
    "1": {"class_type": "OrchTestSolidImage",
          "inputs": {"width": 16, "height": 16, "color": "%color%", "batch_size": 1,
                     "seed": "%seed%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "solid"}},
}
SOLID_META = {"title": "Solid", "placeholders": {"color": {"type": "str", "default": "#336699"}}}
NAP = {
    "1": {"class_type": "OrchTestSleep",
          "inputs": {"seconds": "%seconds%", "steps": 4, "seed": "%seed%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "nap"}},
}
NAP_META = {"title": "Nap", "placeholders": {"seconds": {"type": "float", "default": 0.2}}}
AVATAR = {
    "1": {"class_type": "ETN_LoadImageBase64", "inputs": {"image": "%char_avatar%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "avatar"}},
}


def png_bytes(width: int = 8, height: int = 8, color: str = "#00ff00") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


class Api:
    """``requests`` against one running service; ``token=`` adds the bearer header."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str, *, token: str | None = None,
                **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers,
                                timeout=HTTP_TIMEOUT, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def submit(self, token: str, **body: Any) -> dict[str, Any]:
        response = self.post("/v1/jobs", token=token, json=body)
        assert response.status_code == 202, response.text
        found: dict[str, Any] = response.json()
        return found

    def job(self, token: str, job_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/jobs/{job_id}", token=token)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def wait_job(self, token: str, job_id: str, timeout: float = 60.0,
                 states: tuple[str, ...] = ("succeeded", "failed", "canceled",
                                            "partially_failed", "expired")) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.job(token, job_id))
            return seen["status"] in states

        wait_until(reached, timeout, f"job {job_id} to reach {states}")
        return seen

@dataclass(kw_only=True)
class Service(RunningService):
    """A running service and what the tests need to call it."""

    api: Api
    admin: str
    alice: str
    bob: str
    workflows: Path
    extra: dict[str, str] = field(default_factory=dict)


def write_workflows(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, graph, meta in (("solid", SOLID, SOLID_META), ("nap", NAP, NAP_META),
                              ("avatar", AVATAR, None)):
        (folder / f"{name}.json").write_text(json.dumps(graph))
        if meta is not None:
            (folder / f"{name}.meta.json").write_text(json.dumps(meta))
    return folder


ServiceFactory = Callable[..., Service]


def start_service(root: Path, comfy_url: str, *, clock: Clock = time.monotonic,
                  nodes: tuple[str, ...] | None = None, **settings: Any) -> Service:
    """Orchestrator + tokens + uvicorn under ``root``; stop it with ``Service.stop``."""
    workflows = write_workflows(root / "workflows")
    running = start_running(root / "data", workflows, (comfy_url,) if nodes is None else nodes,
                            clock=clock, **settings)
    tokens = running.tokens
    return Service(**vars(running), api=Api(running.url), workflows=workflows,
                   admin=tokens.create("root", admin=True), alice=tokens.create("alice"),
                   bob=tokens.create("bob"))


@pytest.fixture(scope="module")
def service_factory(comfy_url: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceFactory]:
    """Start services with their own settings; each is stopped when the module ends."""
    def start(**settings: Any) -> Service:
        return start_service(tmp_path_factory.mktemp("service"), comfy_url, **settings)

    with stopping_all(start) as factory:
        yield factory


@pytest.fixture(scope="module")
def service(service_factory: ServiceFactory) -> Service:
    """The module's shared service, at the shipped limits."""
    return service_factory()


@pytest.fixture(scope="module")
def api(service: Service) -> Api:
    return service.api


def read_events(response: requests.Response, *,
                stop: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """SSE frames as dicts ``{"id", "event", "data", "comments"}`` until the stream ends
    (or ``stop`` says so). Comment lines are counted on the frame that follows them."""
    events: list[dict[str, Any]] = []
    frame: dict[str, Any] = {"comments": 0}
    for raw in response.iter_lines(decode_unicode=True):
        line = raw.decode() if isinstance(raw, bytes) else raw
        if line.startswith(":"):
            frame["comments"] += 1
        elif line == "" and "event" in frame:
            frame["data"] = json.loads(frame["data"])
            events.append(frame)
            if stop is not None and stop(frame):
                break
            frame = {"comments": 0}
        elif ": " in line:
            key, _, value = line.partition(": ")
            frame[key] = value
    return events
