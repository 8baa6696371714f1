"""The app as a whole: API docs, and the envelope for anything the routes never see."""

from __future__ import annotations

from tests.orchestrator.web.conftest import Api, Service


def test_openapi_docs_list_every_v1_route(api: Api) -> None:
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()
    assert {path for path in spec["paths"] if path.startswith("/v1/")} == {
        "/v1/health", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/retry", "/v1/outputs/{output_id}",
        "/v1/outputs/{output_id}/content", "/v1/outputs/{output_id}/thumbnail",
        "/v1/outputs/{output_id}/regenerate", "/v1/gallery", "/v1/workflows",
        "/v1/workflows/{name}", "/v1/nodes", "/v1/nodes/{name}", "/v1/nodes/{name}/drain",
        "/v1/me", "/v1/outputs", "/v1/object_info", "/v1/workflows/{name}/check",
        "/v1/workflows/{name}/preview"}
    submit = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(submit)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_unknown_routes_answer_with_the_envelope(api: Api, service: Service) -> None:
    response = api.get("/v2/nothing", token=service.alice)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_methods_answer_with_the_envelope(api: Api, service: Service) -> None:
    response = api.request("PATCH", "/v1/jobs", token=service.alice)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_bad_query_parameters_name_the_field(api: Api, service: Service) -> None:
    response = api.get("/v1/jobs", token=service.alice, params={"limit": "0"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "limit" in error["message"]
