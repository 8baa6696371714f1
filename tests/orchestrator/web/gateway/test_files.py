"""``/upload/image`` and ``/view``: ComfyUI's names, rename on clash, Pillow checks, and no
name that reaches outside."""

from __future__ import annotations

import io
import json

import pytest
import requests
from PIL import Image

from tests import graphs
from tests.orchestrator.web.conftest import HTTP_TIMEOUT, Service, png_bytes
from tests.orchestrator.web.gateway.conftest import ComfyApi


def _upload(api: ComfyApi, data: bytes, name: str = "photo.png", **fields: str
            ) -> dict[str, str]:
    response = api.post("/upload/image", files={"image": (name, data, "image/png")},
                        data=fields)
    assert response.status_code == 200, response.text
    answer: dict[str, str] = response.json()
    return answer


def _blob_count(service: Service) -> int:
    return sum(1 for path in (service.orch.data_dir / "blobs").rglob("*") if path.is_file())


def test_upload_answers_name_subfolder_and_type(alice: ComfyApi) -> None:
    assert _upload(alice, png_bytes(color="#123456"), "first.png") == {
        "name": "first.png", "subfolder": "", "type": "input"}
    assert _upload(alice, png_bytes(color="#123456"), "first.png", subfolder="avatars") == {
        "name": "first.png", "subfolder": "avatars", "type": "input"}


def test_a_clashing_name_is_renamed_like_comfyui(alice: ComfyApi) -> None:
    red, blue = png_bytes(color="#ff0000"), png_bytes(color="#0000ff")

    assert _upload(alice, red, "clash.png")["name"] == "clash.png"
    assert _upload(alice, blue, "clash.png")["name"] == "clash (1).png"
    assert _upload(alice, red, "clash.png")["name"] == "clash.png"  # same bytes: same name
    assert _upload(alice, blue, "clash.png")["name"] == "clash (1).png"
    assert _upload(alice, png_bytes(color="#00ff00"), "clash.png")["name"] == "clash (2).png"
    assert _upload(alice, blue, "clash.png", overwrite="true")["name"] == "clash.png"
    view = alice.get("/view", params={"filename": "clash.png", "type": "input"})
    assert view.content == blue


def test_owners_have_their_own_names(alice: ComfyApi, bob: ComfyApi) -> None:
    _upload(alice, png_bytes(color="#010101"), "own.png")

    assert _upload(bob, png_bytes(color="#020202"), "own.png")["name"] == "own.png"
    assert bob.get("/view", params={"filename": "own.png", "type": "input"}).content == \
        png_bytes(color="#020202")


def test_a_non_image_upload_is_400_and_nothing_is_stored(alice: ComfyApi,
                                                        service: Service) -> None:
    before = _blob_count(service)

    response = alice.post("/upload/image", files={"image": ("notes.png", b"hello", "image/png")})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert _blob_count(service) == before
    assert alice.get("/view", params={"filename": "notes.png", "type": "input"}
                     ).status_code == 404


@pytest.mark.parametrize("name, subfolder", [("../escape.png", ""), ("a/b.png", ""),
                                              ("x.png", "../.."), ("x.png", "/etc")])
def test_an_upload_name_that_leaves_the_folder_is_400(alice: ComfyApi, name: str,
                                                      subfolder: str) -> None:
    response = alice.post("/upload/image", files={"image": (name, png_bytes(), "image/png")},
                          data={"subfolder": subfolder})

    assert response.status_code == 400


@pytest.mark.parametrize("params, status", [
    ({"filename": "../secret.png"}, 400),
    ({"filename": "/etc/passwd"}, 400),
    ({"filename": "x.png", "type": "bogus"}, 400),
    ({"filename": "x.png", "subfolder": "../../.."}, 403),
    ({"filename": "x.png", "subfolder": "/etc", "type": "input"}, 403),
    ({"filename": "passwd", "subfolder": "../../../etc", "type": "input"}, 403),
    ({"filename": "nothing.png"}, 404),
    ({"filename": "nothing.png", "type": "input"}, 404),
    ({"subfolder": ""}, 404),
])
def test_view_refuses_names_like_comfyui(alice: ComfyApi, params: dict[str, str],
                                         status: int) -> None:
    assert alice.get("/view", params=params).status_code == status


def test_an_uploaded_image_named_in_a_graph_runs_on_the_node(alice: ComfyApi) -> None:
    uploaded = _upload(alice, png_bytes(12, 10, "#ff8800"), "input.png", subfolder="mine")
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "mine/input.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "in"}},
    }
    assert uploaded["name"] == "input.png"

    entry = alice.history(alice.prompt(graph))

    image = entry["outputs"]["2"]["images"][0]
    with Image.open(io.BytesIO(alice.get("/view", params=image).content)) as out:
        assert out.size == (12, 10)
        assert out.convert("RGB").getpixel((0, 0)) == (255, 136, 0)


def test_an_unknown_file_name_in_a_graph_is_answered_as_comfyui_answers_it(
        alice: ComfyApi, comfy_url: str) -> None:
    """LoadImage checks its file in its own VALIDATE_INPUTS, so the node's answer is the
    one a client must get (``custom_validation_failed`` on today's releases)."""
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "never-uploaded.png"}},
             "2": graphs.solid_image()["2"]}
    direct = requests.post(f"{comfy_url}/prompt", json={"prompt": graph}, timeout=HTTP_TIMEOUT)

    response = alice.post("/prompt", json={"prompt": graph})

    assert direct.status_code == 400, direct.text
    assert response.status_code == 400
    assert response.json() == direct.json()
    error = response.json()["node_errors"]["1"]["errors"][0]
    assert "never-uploaded.png" in json.dumps(error)
