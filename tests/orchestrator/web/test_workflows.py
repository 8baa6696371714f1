"""``/v1/workflows`` over HTTP: the list with its report, one workflow, upload, delete."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.orchestrator.web.conftest import SOLID, Api, Service, ServiceFactory, png_bytes

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


def test_each_placeholder_carries_its_effective_declaration(api: Api,
                                                            service: Service) -> None:
    meta = {"title": "Tuned", "placeholders": {
        "steps": {"default": 8, "label": "Steps", "help": "fewer is faster"},
        "pfx": {"choices": ["a", "b"], "default": "a"}}}
    graph = json.loads(json.dumps(GREEN))
    graph["1"]["inputs"]["batch_size"] = "%steps%"
    put = api.put("/v1/workflows/tuned", token=service.admin, json={"graph": graph, "meta": meta})
    assert put.status_code == 201, put.text
    found = {p["name"]: p for p in put.json()["placeholders"]}
    steps, seed, pfx = found["steps"], found["seed"], found["pfx"]
    assert (steps["origin"], steps["type"], steps["default"], steps["min"], steps["max"]) == (
        "declared", "int", 8, 1, 10000)  # limits inherited from the built-in catalog
    assert (steps["label"], steps["help"]) == ("Steps", "fewer is faster")
    assert (seed["origin"], seed["type"], seed["default"], seed["min"]) == (
        "built-in", "int", -1, -1)
    assert seed["max"] == 2**64 - 1 and seed["help"] and seed["label"] == ""
    assert (pfx["origin"], pfx["type"], pfx["choices"], pfx["default"]) == (
        "declared", "str", ["a", "b"], "a")
    listed = {p["name"]: p for p in by_name(api, service.alice)["tuned"]["placeholders"]}
    assert listed["steps"] == steps


def test_the_detail_has_the_presence_list(api: Api, service: Service) -> None:
    meta = {"custom_placeholders": [{"find": "%era%", "replace": "1920s"}]}
    graph = json.loads(json.dumps(GREEN))
    graph["2"]["inputs"]["filename_prefix"] = "%mood%/%year%"
    api.put("/v1/workflows/moody", token=service.admin, json={"graph": graph, "meta": meta})
    rows = {r["name"]: r for r in api.get("/v1/workflows/moody", token=service.alice)
            .json()["presence"]}
    assert (rows["seed"]["origin"], rows["seed"]["used"], rows["seed"]["sites"]) == (
        "built-in", True, ["1.seed"])
    assert (rows["prompt"]["used"], rows["era"]["origin"], rows["era"]["used"]) == (
        False, "custom", False)
    assert (rows["mood"]["origin"], rows["mood"]["used"]) == ("undeclared", True)
    assert "year" not in rows  # ComfyUI expands %year% itself


def test_unknown_placeholders_are_flagged(api: Api, service: Service) -> None:
    put = api.put("/v1/workflows/green", token=service.admin, json={"graph": GREEN})
    assert put.status_code == 201, put.text
    green = by_name(api, service.alice)["green"]
    assert {p["name"]: p["known"] for p in green["placeholders"]} == {"seed": True,
                                                                      "pfx": False}
    assert any("%pfx%" in w for w in green["warnings"])


def test_a_broken_file_is_listed_with_its_error(api: Api, service: Service) -> None:
    (service.workflows / "broken.json").write_text('{"1": {"inputs": {}}}')
    service.orch._registry.reload(["broken"])  # type: ignore[union-attr]
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


# --- check without saving --------------------------------------------------------------


def check(api: Api, token: str, name: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/workflows/{name}/check", token=token, json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_check_reports_like_an_upload_and_writes_nothing(api: Api, service: Service) -> None:
    before = sorted(p.name for p in service.workflows.iterdir())
    meta = {"title": "Green", "placeholders": {"pfx": {"default": "g", "label": "Prefix"}}}
    report = check(api, service.alice, "green-check", graph=GREEN, meta=meta)
    assert (report["name"], report["ok"], report["problems"]) == ("green-check", True, [])
    assert report["pool_checked"] is True and report["pool_problems"] == []
    assert {p["name"]: p["label"] for p in report["placeholders"]} == {"seed": "",
                                                                        "pfx": "Prefix"}
    assert {r["name"] for r in report["presence"] if r["used"]} == {"seed", "pfx"}
    assert sorted(p.name for p in service.workflows.iterdir()) == before
    assert api.get("/v1/workflows/green-check", token=service.alice).status_code == 404


def test_check_warns_about_undeclared_placeholders(api: Api, service: Service) -> None:
    report = check(api, service.alice, "odd", graph=GREEN)
    assert report["ok"] is True
    assert any("%pfx%" in w for w in report["warnings"])


def test_check_of_text_names_the_line_of_a_json_mistake(api: Api, service: Service) -> None:
    report = check(api, service.alice, "broken", graph='{"1": ', meta='{"title": 3}')
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert (problem["source"], problem["line"]) == ("broken.json", 1)
    assert "broken.json" in problem["text"] and problem["message"]


def test_check_lists_every_metadata_problem_with_its_path(api: Api, service: Service) -> None:
    meta = {"title": 3, "placeholders": {"pfx": {"default": "g", "maxx": 2}}}
    report = check(api, service.alice, "bad", graph=json.dumps(GREEN), meta=json.dumps(meta))
    assert report["ok"] is False
    assert {p["path"] for p in report["problems"]} == {"$.title", "$.placeholders.pfx"}
    assert all(p["source"] == "bad.meta.json" for p in report["problems"])


def test_check_refuses_a_ui_export_with_what_to_do(api: Api, service: Service) -> None:
    report = check(api, service.alice, "ui", graph={"nodes": [], "links": []})
    assert report["ok"] is False and "API format" in report["problems"][0]["text"]


def test_check_runs_the_pools_preflight(api: Api, service: Service) -> None:
    graph = json.loads(json.dumps(GREEN))
    graph["1"]["class_type"] = "NoSuchNode"
    graph["2"]["inputs"]["images"] = ["1", 0]
    graph["3"] = {"class_type": "OrchTestSolidImage",
                  "inputs": {"width": 1_000_000, "height": 8, "color": "#000000",
                             "batch_size": 1, "seed": "%seed%"}}
    report = check(api, service.alice, "unrunnable", graph=graph)
    assert report["ok"] is True  # an upload would be stored: a node may come that runs it
    by_node = {p["node_id"]: p for p in report["pool_problems"]}
    assert by_node["1"]["code"] == "unknown_class" and by_node["1"]["class_type"] == "NoSuchNode"
    assert (by_node["3"]["input"], by_node["3"]["code"]) == ("width", "value_bigger_than_max")
    assert "node 3 (OrchTestSolidImage)" in by_node["3"]["text"]


def test_check_without_a_node_says_the_pool_was_not_checked(
        service_factory: ServiceFactory) -> None:
    idle = service_factory(nodes=())
    report = check(idle.api, idle.alice, "green", graph=GREEN)
    assert (report["ok"], report["pool_checked"], report["pool_problems"]) == (True, False, [])


def test_check_names_are_checked_like_any_other(api: Api, service: Service) -> None:
    response = api.post("/v1/workflows/a..b/check", token=service.alice, json={"graph": GREEN})
    assert response.status_code == 400


# --- preview images ------------------------------------------------------------------------


def test_a_preview_image_next_to_the_workflow_is_served(api: Api, service: Service) -> None:
    (service.workflows / "shown.png").write_bytes(png_bytes(4, 4))
    api.put("/v1/workflows/shown", token=service.admin,
            json={"graph": GREEN, "meta": {"preview_image": "shown.png"}})
    listed = by_name(api, service.alice)["shown"]
    assert listed["preview_url"] == f"{api.url}/v1/workflows/shown/preview"
    response = api.get("/v1/workflows/shown/preview", token=service.alice)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content == (service.workflows / "shown.png").read_bytes()


@pytest.mark.parametrize("image", [None, "missing.png", "../outside.png", "/etc/passwd",
                                   "solid.json", "escape.png", "nul\x00.png"])
def test_no_preview_or_one_outside_the_folder_is_404(api: Api, service: Service,
                                                     image: str | None) -> None:
    (service.workflows.parent / "outside.png").write_bytes(png_bytes(4, 4))
    link = service.workflows / "escape.png"
    if not link.is_symlink():
        link.symlink_to(service.workflows.parent / "outside.png")
    meta = {} if image is None else {"preview_image": image}
    api.put("/v1/workflows/unshown", token=service.admin, json={"graph": GREEN, "meta": meta})
    assert by_name(api, service.alice)["unshown"]["preview_url"] is None
    response = api.get("/v1/workflows/unshown/preview", token=service.alice)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert api.get("/v1/workflows/nope/preview", token=service.alice).status_code == 404


# --- names that belong to another workflow's files, and server paths --------------------------


def test_a_name_ending_in_meta_is_refused_and_leaves_the_other_workflows_metadata(
        api: Api, service: Service) -> None:
    """``solid.meta.json`` is solid's metadata: a workflow ``solid.meta`` would overwrite it
    with a graph on PUT and delete it on DELETE."""
    meta_file = service.workflows / "solid.meta.json"
    before = meta_file.read_text()
    for method in ("PUT", "DELETE", "GET"):
        response = api.request(method, "/v1/workflows/solid.meta", token=service.admin,
                               json={"graph": GREEN} if method == "PUT" else None)
        assert response.status_code == 400, (method, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert "solid.meta.json is the metadata file of workflow 'solid'" in error["message"]
        assert error["details"]["file"] == "solid.meta.json"
    assert meta_file.read_text() == before
    assert by_name(api, service.alice)["solid"]["title"] == "Solid"


def test_load_errors_show_server_paths_to_admins_only(api: Api, service: Service) -> None:
    folder = str(service.workflows.resolve())
    (service.workflows / "pathy.json").write_text("{")
    (service.workflows / "pathy.meta.json").write_text('{"preview_image": "gone.png"}')
    service.orch._registry.reload(["pathy"])  # type: ignore[union-attr]
    admin = by_name(api, service.admin)["pathy"]
    assert admin["error"].startswith(f"{folder}/pathy.json, line 1")
    for token in (service.alice, service.bob):
        listed = by_name(api, token)["pathy"]
        assert listed["error"].startswith("pathy.json, line 1, column 2: not valid JSON")
        detail = api.get("/v1/workflows/pathy", token=token).json()
        assert detail["error"] == listed["error"]
        assert folder not in json.dumps(api.get("/v1/workflows", token=token).json())
        job = api.post("/v1/jobs", token=token, json={"workflow": "pathy"})
        assert job.status_code == 422 and folder not in job.text
        assert "pathy.json" in job.json()["error"]["message"]
    (service.workflows / "pathy.json").unlink()
    (service.workflows / "pathy.meta.json").unlink()
    service.orch._registry.reload(["pathy"])  # type: ignore[union-attr]


def test_check_of_deeply_nested_text_names_the_file_and_place(api: Api, service: Service) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = check(api, service.alice, "deep", graph=deep, meta='{"title": ' + deep + "}")
    assert body["ok"] is False
    [problem] = body["problems"]
    assert problem["text"] == ("deep.json, line 1, column 65: nests arrays and objects deeper "
                               "than 64 levels; an API-format workflow is about 4 deep, so this "
                               "is not one")
