"""``/v1/workflows`` over HTTP: the list with its report, one workflow, upload, delete."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.orchestrator.web.conftest import SOLID, Api, Service

GREEN = {
    "1": {"class_type": "OrchTestSolidImage",
          "inputs": {"width": 8, "height": 8, "color": "#00ff00", "batch_size": 1,
                     "seed": "%seed%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "%pfx%"}},
}


def by_name(api: Api, token: str) -> dict[str, dict[str, Any]]:
    response = api.get("/v1/workflows", token=token)
    assert response.status_code == 200
    return {w["name"]: w for w in response.json()["workflows"]}


def test_the_list_reports_validity_and_placeholders(api: Api, service: Service) -> None:
    solid = by_name(api, service.alice)["solid"]
    assert (solid["title"], solid["ok"], solid["error"]) == ("Solid", True, None)
    assert {p["name"]: (p["known"], p["sites"]) for p in solid["placeholders"]} == {
        "color": (True, ["1.color"]), "seed": (True, ["1.seed"])}


def test_unknown_placeholders_are_flagged(api: Api, service: Service) -> None:
    put = api.put("/v1/workflows/green", token=service.admin, json={"graph": GREEN})
    assert put.status_code == 201, put.text
    green = by_name(api, service.alice)["green"]
    assert {p["name"]: p["known"] for p in green["placeholders"]} == {"seed": True,
                                                                      "pfx": False}
    assert any("%pfx%" in w for w in green["warnings"])


def test_a_broken_file_is_listed_with_its_error(api: Api, service: Service) -> None:
    (service.workflows / "broken.json").write_text('{"1": {"inputs": {}}}')
    service.orch.registry.reload(["broken"])  # type: ignore[union-attr]
    broken = by_name(api, service.alice)["broken"]
    assert broken["ok"] is False and broken["serving"] is None
    assert "class_type" in broken["error"]
    detail = api.get("/v1/workflows/broken", token=service.alice).json()
    assert detail["graph"] is None and detail["error"]


def test_get_returns_graph_and_metadata(api: Api, service: Service) -> None:
    response = api.get("/v1/workflows/solid", token=service.alice)
    assert response.status_code == 200
    detail = response.json()
    assert detail["graph"] == SOLID
    assert detail["meta"]["placeholders"]["color"]["default"] == "#336699"
    assert api.get("/v1/workflows/nope", token=service.alice).status_code == 404


def test_upload_stores_the_files_and_serves_the_new_version(api: Api, service: Service) -> None:
    meta = {"title": "Green", "placeholders": {"pfx": {"default": "g"}}}
    first = api.put("/v1/workflows/green2", token=service.admin,
                    json={"graph": GREEN, "meta": meta})
    assert first.status_code == 201
    assert json.loads((service.workflows / "green2.json").read_text()) == GREEN
    assert first.json()["title"] == "Green" and first.json()["ok"] is True
    job = api.submit(service.alice, workflow="green2")
    assert api.wait_job(service.alice, job["id"])["status"] == "succeeded"
    replaced = api.put("/v1/workflows/green2", token=service.admin,
                       json={"graph": GREEN, "meta": {**meta, "title": "Greener"}})
    assert replaced.status_code == 200 and replaced.json()["title"] == "Greener"
    assert replaced.json()["serving"] != first.json()["serving"]


def test_uploading_without_meta_removes_the_old_meta(api: Api, service: Service) -> None:
    api.put("/v1/workflows/green3", token=service.admin,
            json={"graph": GREEN, "meta": {"title": "G3"}})
    response = api.put("/v1/workflows/green3", token=service.admin, json={"graph": GREEN})
    assert response.json()["title"] == "green3"
    assert not (service.workflows / "green3.meta.json").exists()


@pytest.mark.parametrize(("body", "where"), [
    ({"graph": {"nodes": [], "links": []}}, "UI export"),
    ({"graph": {"1": {"inputs": {}}}}, "class_type"),
    ({"graph": GREEN, "meta": {"kind": "poster", "titel": "x"}}, "$.kind"),
])
def test_an_invalid_upload_is_422_with_problems_and_writes_nothing(
        api: Api, service: Service, body: dict[str, Any], where: str) -> None:
    before = sorted(p.name for p in service.workflows.iterdir())
    response = api.put("/v1/workflows/bad", token=service.admin, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_workflow" and error["details"]["problems"]
    assert where in json.dumps(error)
    assert sorted(p.name for p in service.workflows.iterdir()) == before


def test_a_body_without_a_graph_is_refused(api: Api, service: Service) -> None:
    response = api.put("/v1/workflows/x", token=service.admin, json={"meta": {}})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("name", ["..", ".hidden", "a..b", "..%2Fescape", "%2E%2E%2Fescape",
                                  "x" * 101, "a%5Cb"])
def test_names_cannot_reach_outside_the_folder(api: Api, service: Service, name: str) -> None:
    parent = sorted(p.name for p in service.workflows.parent.iterdir())
    for method in ("GET", "PUT", "DELETE"):
        response = api.request(method, f"/v1/workflows/{name}", token=service.admin,
                               json={"graph": GREEN} if method == "PUT" else None)
        assert 400 <= response.status_code < 500, (method, name)
    assert sorted(p.name for p in service.workflows.parent.iterdir()) == parent


def test_delete_removes_both_files_and_the_workflow(api: Api, service: Service) -> None:
    api.put("/v1/workflows/gone", token=service.admin,
            json={"graph": GREEN, "meta": {"title": "Gone"}})
    response = api.delete("/v1/workflows/gone", token=service.admin)
    assert response.status_code == 204
    assert not (service.workflows / "gone.json").exists()
    assert not (service.workflows / "gone.meta.json").exists()
    assert "gone" not in by_name(api, service.alice)
    assert api.delete("/v1/workflows/gone", token=service.admin).status_code == 404
