"""``POST /prompt``, ``/history``, ``/queue`` and ``/interrupt``, over a real uvicorn and a
real ComfyUI node (``/api/jobs``: ``test_jobs.py``)."""

from __future__ import annotations

import copy
import io
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from PIL import Image

from tests import graphs
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import HTTP_TIMEOUT, Service
from tests.orchestrator.web.gateway.conftest import ComfyApi

BAD_GRAPHS = {
    "below min": graphs.solid_image(width=0),
    "above max and missing": {
        "1": {"class_type": "OrchTestSolidImage",
              "inputs": {"width": 99999, "height": 8, "color": "#000000", "batch_size": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    },
    "not in list": graphs.txt2img(checkpoint="missing.safetensors"),
    "unknown class": {"1": {"class_type": "NoSuchNode", "inputs": {}},
                      "2": {"class_type": "SaveImage",
                            "inputs": {"images": ["1", 0], "filename_prefix": "x"}}},
    "no class_type": {"1": {"inputs": {}}},
    "no outputs": {"1": graphs.solid_image()["1"]},
    "output node at fault": {"1": graphs.solid_image()["1"],
                             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}},
}


def _post_direct(comfy_url: str, graph: dict[str, Any]) -> requests.Response:
    return requests.post(f"{comfy_url}/prompt", timeout=HTTP_TIMEOUT,
                         json={"prompt": graph, "client_id": "direct"})


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _rgb(data: bytes) -> tuple[int, int, int]:
    red, green, blue = _png(data).convert("RGB").getpixel((0, 0))  # type: ignore[misc]
    return red, green, blue


def test_post_prompt_answers_id_number_and_node_errors(alice: ComfyApi) -> None:
    response = alice.post("/prompt", data=json.dumps({"prompt": graphs.solid_image(seed=1)}))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"prompt_id", "number", "node_errors"}
    assert body["node_errors"] == {}
    assert isinstance(body["number"], int)
    alice.history(body["prompt_id"])  # the shared node is cleared after each test


def test_a_clients_prompt_id_becomes_the_job_id(alice: ComfyApi, service: Service) -> None:
    chosen = str(uuid.uuid4())

    got = alice.prompt(graphs.solid_image(seed=2), prompt_id=chosen)

    assert got == chosen
    assert service.orch.get(chosen).spec.owner == "alice"
    again = alice.post("/prompt", json={"prompt": graphs.solid_image(), "prompt_id": chosen})
    assert again.status_code == 400
    assert again.json()["error"]["type"] == "invalid_prompt"
    alice.history(chosen)


def test_sillytavern_flow_post_poll_history_then_view(alice: ComfyApi) -> None:
    """POST /prompt without a socket, poll /history/{id}, fetch each image with /view."""
    prompt_id = alice.prompt(graphs.solid_image(40, 24, "#00ff00", seed=3))

    entry = alice.history(prompt_id)

    assert entry["status"] == {"status_str": "success", "completed": True,
                               "messages": entry["status"]["messages"]}
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start", "execution_cached", "execution_success"]
    assert entry["prompt"][1] == prompt_id and entry["prompt"][4] == ["2"]
    image = entry["outputs"]["2"]["images"][0]
    assert image["subfolder"] == "" and image["type"] == "output"
    view = alice.get("/view", params=image)
    assert view.status_code == 200 and view.headers["content-type"] == "image/png"
    assert _png(view.content).size == (40, 24)


def test_history_is_empty_until_the_prompt_ends(alice: ComfyApi) -> None:
    prompt_id = alice.prompt(graphs.sleep(1.5, seed=4))

    assert alice.get(f"/history/{prompt_id}").json() == {}
    assert prompt_id in alice.history(prompt_id)["prompt"]


def test_history_lists_own_prompts_oldest_first_with_max_items(alice: ComfyApi) -> None:
    ids = [alice.prompt(graphs.solid_image(seed=10 + i)) for i in range(3)]
    for prompt_id in ids:
        alice.history(prompt_id)

    newest_two = alice.get("/history", params={"max_items": 2}).json()

    assert list(newest_two) == ids[1:]
    assert set(ids) <= set(alice.get("/history").json())


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_a_rejected_graph_answers_400_exactly_as_comfyui(case: str, alice: ComfyApi,
                                                         comfy_url: str) -> None:
    graph = BAD_GRAPHS[case]
    direct = _post_direct(comfy_url, copy.deepcopy(graph))

    ours = alice.post("/prompt", json={"prompt": graph})

    assert direct.status_code == 400, direct.text
    assert ours.status_code == 400
    assert ours.json() == direct.json()


def test_no_prompt_in_the_body_is_comfyuis_no_prompt(alice: ComfyApi) -> None:
    response = alice.post("/prompt", json={"client_id": "x"})

    assert response.status_code == 400
    assert response.json() == {"error": {"type": "no_prompt", "message": "No prompt provided",
                                         "details": "No prompt provided", "extra_info": {}},
                               "node_errors": {}}


def test_get_prompt_reports_queue_remaining(alice: ComfyApi) -> None:
    body = alice.get("/prompt").json()

    assert isinstance(body["exec_info"]["queue_remaining"], int)


def _wait_running(api: ComfyApi, prompt_id: str) -> None:
    def running() -> bool:
        return any(item[1] == prompt_id for item in api.get("/queue").json()["queue_running"])

    wait_until(running, 60, f"{prompt_id} to run")


def test_queue_shows_running_and_pending_and_delete_cancels_pending(
        alice: ComfyApi) -> None:
    running = alice.prompt(graphs.sleep(30, 30, seed=20))
    _wait_running(alice, running)
    pending = [alice.prompt(graphs.sleep(30, 30, seed=21 + i)) for i in range(2)]

    queue = alice.get("/queue").json()
    assert [item[1] for item in queue["queue_running"]] == [running]
    assert {item[1] for item in queue["queue_pending"]} == set(pending)
    assert queue["queue_running"][0][2] == graphs.sleep(30, 30, seed=20)

    assert alice.post("/queue", json={"delete": [pending[0], running]}).status_code == 200
    assert alice.history(pending[0])["status"]["messages"][-1][0] == "execution_interrupted"
    assert alice.post("/queue", json={"clear": True}).status_code == 200
    assert alice.history(pending[1])["status"]["completed"] is False
    assert alice.get(f"/history/{running}").json() == {}  # delete and clear spare it
    assert alice.post("/interrupt", json={"prompt_id": running}).status_code == 200
    assert alice.history(running)["status"]["status_str"] == "error"


def test_interrupt_without_id_stops_only_the_callers_prompts(alice: ComfyApi,
                                                             bob: ComfyApi) -> None:
    mine = alice.prompt(graphs.sleep(30, 30, seed=30))
    _wait_running(alice, mine)

    assert bob.post("/interrupt").status_code == 200
    assert bob.post("/interrupt", json={"prompt_id": mine}).status_code == 200
    assert alice.get(f"/history/{mine}").json() == {}
    assert alice.post("/interrupt", data=b"").status_code == 200
    assert alice.history(mine)["status"]["messages"][-1][0] == "execution_interrupted"


def test_another_owners_prompt_answers_404(alice: ComfyApi, bob: ComfyApi) -> None:
    prompt_id = alice.prompt(graphs.solid_image(seed=60))
    image = alice.history(prompt_id)["outputs"]["2"]["images"][0]

    for response in (bob.get(f"/history/{prompt_id}"), bob.get("/view", params=image)):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert prompt_id not in bob.get("/history").json()
    assert alice.get("/view", params=image).status_code == 200


def test_extra_data_reaches_the_node_and_api_keys_stay_out_of_history(
        alice: ComfyApi, service: Service, comfy_url: str) -> None:
    extra = {"extra_pnginfo": {"workflow": {"id": "wf-1"}}, "api_key_comfy_org": "secret"}

    prompt_id = alice.prompt(graphs.solid_image(seed=90), extra_data=extra, client_id="c9")

    ours = alice.history(prompt_id)["prompt"][3]
    assert ours["extra_pnginfo"] == extra["extra_pnginfo"] and ours["client_id"] == "c9"
    assert "api_key_comfy_org" not in ours
    node_prompt = service.orch.get(prompt_id).items[0].prompt_id
    node_entry = requests.get(f"{comfy_url}/history/{node_prompt}", timeout=HTTP_TIMEOUT).json()
    assert node_entry[node_prompt]["prompt"][3]["extra_pnginfo"] == extra["extra_pnginfo"]


def _jobs_of(service: Service, owner: str) -> list[str]:
    return [job.id for job in service.orch.list(owner=owner, limit=1000).jobs]


@pytest.mark.parametrize("raw", [
    '{"prompt": %s, "number": "nan"}', '{"prompt": %s, "number": "-inf"}',
    '{"prompt": %s, "number": NaN}', '{"prompt": %s, "number": 1e999}',
    '{"prompt": %s, "extra_data": {"x": Infinity}}'])
def test_a_non_finite_number_is_refused_before_anything_is_recorded(
        raw: str, alice: ComfyApi, service: Service) -> None:
    """Python's json takes NaN and float() takes "nan": once both were recorded and run,
    then answered 500, so a retrying client ran its prompt twice."""
    before = _jobs_of(service, "alice")

    response = alice.post("/prompt", data=raw % json.dumps(graphs.solid_image(seed=200)))

    assert response.status_code == 400, response.text
    assert "finite" in json.dumps(response.json())
    assert _jobs_of(service, "alice") == before


def test_a_nan_graph_input_is_refused_with_400(alice: ComfyApi, service: Service) -> None:
    before = _jobs_of(service, "alice")
    text = json.dumps({"prompt": graphs.sleep(0.1, seed=201)}).replace("0.1", "NaN")

    response = alice.post("/prompt", data=text)

    assert response.status_code == 400, response.text
    assert "NaN" in response.json()["error"]["message"]
    assert _jobs_of(service, "alice") == before


def test_json_nested_ten_thousand_deep_is_a_400(alice: ComfyApi) -> None:
    deep = '{"prompt": ' + "[" * 10_000 + "]" * 10_000 + "}"

    for path in ("/prompt", "/queue", "/interrupt", "/api/jobs/cancel"):
        response = alice.post(path, data=deep)

        # /api/jobs/cancel is a 404 or 405 on releases without it (test_jobs.py)
        assert response.status_code in (400, 404, 405), (path, response.text)
        assert response.status_code == 400 or path == "/api/jobs/cancel"


def test_concurrent_posts_of_one_prompt_id_give_one_job_and_comfyuis_400s(
        alice: ComfyApi, service: Service) -> None:
    chosen = str(uuid.uuid4())
    body = json.dumps({"prompt": graphs.solid_image(seed=202), "prompt_id": chosen})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: alice.post("/prompt", data=body), range(8)))

    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [400] * 7, [a.text for a in answers]
    refused = [a.json()["error"] for a in answers if a.status_code == 400]
    assert all(e["type"] == "invalid_prompt" and "already in use" in e["message"]
               for e in refused)
    assert _jobs_of(service, "alice").count(chosen) == 1
    alice.history(chosen)


def _two_branches() -> dict[str, Any]:
    return {"1": graphs.solid_image(8, 8, "#ff0000", seed=300)["1"],
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "red"}},
            "3": graphs.solid_image(8, 8, "#0000ff", seed=301)["1"],
            "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0],
                                                          "filename_prefix": "blue"}}}


def test_partial_execution_targets_run_only_the_named_outputs(alice: ComfyApi) -> None:
    prompt_id = alice.prompt(_two_branches(), partial_execution_targets=["4"])

    entry = alice.history(prompt_id)

    assert list(entry["outputs"]) == ["4"]
    image = alice.get("/view", params=entry["outputs"]["4"]["images"][0])
    assert _rgb(image.content) == (0, 0, 255)


@pytest.mark.parametrize("targets", [[], ["1"], ["99"]])
def test_partial_execution_targets_naming_no_output_answer_as_comfyui(
        targets: list[str], alice: ComfyApi, comfy_url: str, service: Service) -> None:
    before = _jobs_of(service, "alice")
    direct = requests.post(f"{comfy_url}/prompt", timeout=HTTP_TIMEOUT, json={
        "prompt": _two_branches(), "partial_execution_targets": targets})

    ours = alice.post("/prompt", json={"prompt": _two_branches(),
                                       "partial_execution_targets": targets})

    assert direct.status_code == ours.status_code == 400
    assert ours.json() == direct.json()
    assert ours.json()["error"]["type"] == "prompt_no_outputs"
    assert _jobs_of(service, "alice") == before


def test_a_broken_branch_is_reported_while_the_valid_outputs_run(
        alice: ComfyApi, comfy_url: str) -> None:
    """ComfyUI answers 200 with node_errors for the outputs it leaves out."""
    graph = _two_branches()
    graph["2"]["inputs"]["images"] = ["gone", 0]  # a link to a node that is not there
    graph["3"]["inputs"]["width"] = 0  # below the minimum
    graph["5"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "still"}}
    direct = requests.post(f"{comfy_url}/prompt", timeout=HTTP_TIMEOUT,
                           json={"prompt": copy.deepcopy(graph)})

    ours = alice.post("/prompt", json={"prompt": graph})

    assert direct.status_code == ours.status_code == 200, ours.text
    mine, theirs = ours.json()["node_errors"], direct.json()["node_errors"]
    assert set(mine) == set(theirs) == {"2", "3"}
    # ComfyUI appends every failed output to every failing node it validated before, in
    # the order of a set: compare what does not depend on that order.
    assert mine["3"]["errors"] == theirs["3"]["errors"]
    assert set(mine["2"]["dependent_outputs"]) <= set(theirs["2"]["dependent_outputs"])
    assert mine["2"]["errors"][0]["type"] == theirs["2"]["errors"][0]["type"]
    entry = alice.history(ours.json()["prompt_id"])
    assert list(entry["outputs"]) == ["5"]


def test_images_of_one_output_come_back_in_the_order_the_node_made_them(
        alice: ComfyApi) -> None:
    graph = {"1": graphs.solid_image(8, 8, "#000000", seed=310)["1"],
             "2": graphs.solid_image(8, 8, "#ffffff", seed=311)["1"],
             "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0],
                                                         "image2": ["2", 0]}},
             "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0],
                                                         "filename_prefix": "order"}}}

    images = alice.history(alice.prompt(graph))["outputs"]["4"]["images"]

    colours = [_rgb(alice.get("/view", params=i).content) for i in images]
    assert colours == [(0, 0, 0), (255, 255, 255)]


def _lenient_graphs() -> dict[str, dict[str, Any]]:
    text_int = graphs.solid_image(8, 8, seed=320)
    text_int["1"]["inputs"]["width"] = "16"  # ComfyUI converts with int()
    webp = {"1": graphs.solid_image(8, 8, seed=321)["1"],
            "2": {"class_type": "SaveAnimatedWEBP",
                  "inputs": {"images": ["1", 0], "filename_prefix": "anim", "fps": 6.0,
                             "lossless": "yes", "quality": 80, "method": "default"}}}
    literal_image = {"1": {"class_type": "SaveImage",
                           "inputs": {"images": 5, "filename_prefix": "literal"}}}
    return {"INT given as text": text_int, "BOOLEAN given as text": webp,
            "literal for a linked type": literal_image}


@pytest.mark.parametrize("case", sorted(_lenient_graphs()))
def test_a_graph_comfyui_accepts_is_accepted(case: str, alice: ComfyApi,
                                             comfy_url: str) -> None:
    """The pre-flight is never stricter than ComfyUI's own validation."""
    graph = _lenient_graphs()[case]
    direct = _post_direct(comfy_url, copy.deepcopy(graph))

    ours = alice.post("/prompt", json={"prompt": graph})

    assert direct.status_code == 200, direct.text
    assert ours.status_code == 200, ours.text
    assert ours.json()["node_errors"] == direct.json()["node_errors"] == {}
    alice.history(ours.json()["prompt_id"])
