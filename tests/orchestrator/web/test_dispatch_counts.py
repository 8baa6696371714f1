"""One job through each face, counted: every item is rendered (or its files staged) once,
at dispatch, and each input image is hashed once, when it is first stored.

The real functions are wrapped by counting spies in this process (the service runs here,
in a thread); the job runs on the session's real ComfyUI node.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from orchestrator.comfy.client import ComfyClient
from orchestrator.staging import stage_named_inputs
from placeholders import render
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import Service, png_bytes
from tests.orchestrator.web.gateway.conftest import comfy_api

PHOTO = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "%photo%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "photo"}},
}
PHOTO_META = '{"placeholders": {"photo": {"type": "image"}}}'


class Counts:
    """Calls of the spied functions, and hashes of one input's bytes (any thread)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def count(self, what: str) -> None:
        with self.lock:
            self.calls[what] += 1


def _spy_everywhere(monkeypatch: pytest.MonkeyPatch, original: Callable[..., Any],
                    spy: Callable[..., Any]) -> None:
    """Put ``spy`` wherever a loaded module of ours holds ``original`` by any name, so a
    call through any import of it is seen."""
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("orchestrator", "placeholders")):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                monkeypatch.setattr(module, attr, spy)


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    found = Counts(png_bytes(10, 6, "#884422"))

    def counted(what: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            found.count(what)
            return original(*args, **kwargs)
        return spy

    _spy_everywhere(monkeypatch, render, counted("renders", render))
    _spy_everywhere(monkeypatch, stage_named_inputs,
                    counted("stagings", stage_named_inputs))
    upload = ComfyClient.upload_image
    monkeypatch.setattr(ComfyClient, "upload_image", counted("uploads", upload))
    sha256 = hashlib.sha256

    def hashing(data: Any = b"", **kwargs: Any) -> Any:
        if isinstance(data, bytes | bytearray | memoryview) and bytes(data) == found.data:
            found.count("input hashes")
        return sha256(data, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", hashing)
    yield found


@pytest.fixture
def photo(service: Service) -> str:
    """A workflow with an image placeholder uploaded to the node, loaded before any spy
    counts (loading checks the workflow's placeholders once, as a dry render)."""
    (service.workflows / "photo.meta.json").write_text(PHOTO_META)
    (service.workflows / "photo.json").write_text(json.dumps(PHOTO))
    wait_until(lambda: service.api.get("/v1/workflows/photo", token=service.alice)
               .status_code == 200, 30.0, "the photo workflow to load")
    return "photo"


def test_a_rest_job_renders_each_item_once_and_hashes_its_image_once(
        service: Service, photo: str, counts: Counts) -> None:
    response = service.api.post(
        "/v1/jobs", token=service.alice,
        data={"workflow": photo, "count": "2"},
        files={"photo": ("photo.png", counts.data, "image/png")})
    assert response.status_code == 202, response.text
    job = service.api.wait_job(service.alice, response.json()["id"])

    assert job["status"] == "succeeded", job
    assert counts.calls["renders"] == 2  # once per item, at dispatch; none at submit
    assert counts.calls["stagings"] == 0  # a workflow's image goes in through its render
    assert counts.calls["uploads"] == 2  # to the node each item ran on
    assert counts.calls["input hashes"] == 1  # when it was stored, at submit


def test_a_gateway_prompt_stages_its_upload_once_and_hashes_it_once(
        service: Service, counts: Counts) -> None:
    client = comfy_api(service, service.alice)
    uploaded = client.post("/upload/image", files={"image": ("mine.png", counts.data,
                                                              "image/png")})
    assert uploaded.status_code == 200, uploaded.text
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": uploaded.json()["name"]}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                    "filename_prefix": "mine"}},
    }

    entry = client.history(client.prompt(graph))

    assert entry["status"]["status_str"] == "success", entry
    image = entry["outputs"]["2"]["images"][0]
    assert client.get("/view", params=image).status_code == requests.codes.ok
    assert counts.calls["renders"] == 0  # a raw graph has nothing to render
    assert counts.calls["stagings"] == 1  # at dispatch, not also at the pre-flight
    assert counts.calls["uploads"] == 1
    assert counts.calls["input hashes"] == 1  # at /upload/image, never again
