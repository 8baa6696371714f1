"""``/object_info``, ``/system_stats``, ``/models``, ``/embeddings``, ``/features``: the
pool's merged view, in one ComfyUI server's shapes."""

from __future__ import annotations

import requests

from tests.orchestrator.web.conftest import HTTP_TIMEOUT, Service
from tests.orchestrator.web.gateway.conftest import ComfyApi


def _direct(comfy_url: str, path: str) -> requests.Response:
    return requests.get(comfy_url + path, timeout=HTTP_TIMEOUT)


def test_object_info_is_the_pools(alice: ComfyApi, comfy_url: str) -> None:
    ours = alice.get("/object_info").json()

    assert set(ours) == set(_direct(comfy_url, "/object_info").json())
    assert ours["OrchTestSleep"]["input"]["required"]["steps"][0] == "INT"


def test_object_info_of_one_class(alice: ComfyApi, comfy_url: str) -> None:
    assert alice.get("/object_info/KSampler").json() == \
        _direct(comfy_url, "/object_info/KSampler").json()
    assert alice.get("/object_info/NoSuchNode").json() == {}


def test_system_stats_names_the_comfyui_version(alice: ComfyApi, comfy_url: str) -> None:
    ours = alice.get("/system_stats").json()

    direct = _direct(comfy_url, "/system_stats").json()
    assert ours["system"]["comfyui_version"] == direct["system"]["comfyui_version"]
    assert ours["system"]["argv"] == ["comfy-orchestrator"]
    assert [d["name"] for d in ours["devices"]] == [d["name"] for d in direct["devices"]]


def test_models_embeddings_and_features(alice: ComfyApi, comfy_url: str) -> None:
    assert alice.get("/models").json() == _direct(comfy_url, "/models").json()
    assert "tiny-sd15.safetensors" in alice.get("/models/checkpoints").json()
    assert alice.get("/models/no-such-folder").status_code == 404
    assert alice.get("/embeddings").json() == _direct(comfy_url, "/embeddings").json()
    assert alice.get("/features").json()["supports_preview_metadata"] is True


def test_features_are_the_nodes_with_our_upload_limit(alice: ComfyApi, comfy_url: str,
                                                      service: Service) -> None:
    direct = requests.get(f"{comfy_url}/api/features", timeout=HTTP_TIMEOUT)

    for path in ("/features", "/api/features"):
        ours = alice.get(path)

        assert ours.status_code == direct.status_code == 200
        assert ours.json() == {**direct.json(),
                               "max_upload_size": service.settings.max_upload_bytes}
