"""The token rides in the path or in ``X-API-Key``; every route answers with and without
``/api``; a missing, wrong or revoked token is a 401 in the service's error envelope."""

from __future__ import annotations

import json

import pytest
import websocket

from tests import graphs
from tests.orchestrator.web.conftest import Service
from tests.orchestrator.web.gateway.conftest import ComfyApi, comfy_api


def _header_api(service: Service, token: str, prefix: str = "/comfyui") -> ComfyApi:
    return ComfyApi(service.api.url + prefix, headers={"X-API-Key": token})


@pytest.mark.parametrize("prefix", ["/comfyui", "/comfyui/api"])
def test_the_token_in_an_x_api_key_header_works_without_one_in_the_path(
        service: Service, prefix: str) -> None:
    api = _header_api(service, service.alice, prefix)

    prompt_id = api.prompt(graphs.solid_image(seed=70))

    assert api.history(prompt_id)["status"]["status_str"] == "success"
    assert service.orch.get(prompt_id).spec.owner == "alice"


def test_the_api_prefix_serves_the_same_routes(service: Service) -> None:
    api = ComfyApi(f"{service.api.url}/comfyui/{service.alice}/api")

    prompt_id = api.prompt(graphs.solid_image(seed=71))

    assert api.history(prompt_id)["prompt"][1] == prompt_id
    assert "SaveImage" in api.get("/object_info").json()


def _revoked(service: Service) -> str:
    token = service.tokens.create("carol")
    service.tokens.revoke(token)
    return token


@pytest.mark.parametrize("path", ["/prompt", "/history", "/queue", "/object_info", "/view",
                                  "/system_stats", "/api/jobs/x/cancel"])
def test_a_wrong_or_revoked_token_is_401_in_the_error_envelope(service: Service,
                                                               path: str) -> None:
    method = "post" if path in ("/prompt", "/api/jobs/x/cancel") else "get"
    for api in (comfy_api(service, "co_00000000_wrong"), comfy_api(service, _revoked(service)),
                _header_api(service, "nonsense"), ComfyApi(service.api.url + "/comfyui")):
        response = getattr(api, method)(path)

        assert response.status_code == 401, (api.base, path)
        assert response.json()["error"]["code"] == "unauthorized"


def test_a_socket_with_a_bad_token_is_refused_with_401(service: Service) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        comfy_api(service, "co_00000000_wrong").socket("c1")

    assert refused.value.status_code == 401


def test_a_socket_takes_the_token_from_x_api_key(service: Service) -> None:
    ws = _header_api(service, service.alice).socket("header-client")
    try:
        first = json.loads(ws.recv())
    finally:
        ws.close()

    assert first["type"] == "status" and first["data"]["sid"] == "header-client"
