"""``/v1/outputs`` and ``/v1/gallery`` over HTTP: listing, metadata, bytes, caching,
ranges, thumbnails, regenerate, delete, and the public and private galleries."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orchestrator.provision.install import ComfyInstall
from tests import graphs
from tests.orchestrator.web.conftest import Api, Service, png_bytes


def finished_output(api: Api, token: str, **body: Any) -> dict[str, Any]:
    """The metadata of the first image of a new solid-colour job."""
    job = api.submit(token, workflow="solid", **body)
    output_id = api.wait_job(token, job["id"])["output_ids"][0]
    found: dict[str, Any] = api.get(f"/v1/outputs/{output_id}", token=token).json()
    return found


@pytest.fixture(scope="module")
def output(api: Api, service: Service) -> dict[str, Any]:
    """One finished red 16x16 image of alice's."""
    job = api.submit(service.alice, workflow="solid", values={"color": "#ff0000", "seed": 3})
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    found: dict[str, Any] = api.get(f"/v1/outputs/{output_id}", token=service.alice).json()
    return found


def test_metadata_says_what_made_the_output(output: dict[str, Any], api: Api) -> None:
    assert (output["kind"], output["mime"], output["width"], output["height"]) == (
        "image", "image/png", 16, 16)
    assert (output["workflow"], output["seed"], output["owner"]) == ("solid", 3, "alice")
    assert output["values"]["color"] == "#ff0000"
    assert output["content_url"] == f"{api.url}/v1/outputs/{output['id']}/content"
    assert output["created_at"].endswith("Z")


def test_content_has_its_type_length_and_sha256_etag(output: dict[str, Any], api: Api,
                                                      service: Service) -> None:
    response = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["ETag"] == f'"{output["sha256"]}"'
    assert int(response.headers["Content-Length"]) == output["size_bytes"] == len(
        response.content)
    assert response.headers["Accept-Ranges"] == "bytes"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_a_matching_if_none_match_answers_304(output: dict[str, Any], api: Api,
                                              service: Service) -> None:
    etag = f'"{output["sha256"]}"'
    response = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice,
                       headers={"If-None-Match": etag})
    assert (response.status_code, response.content) == (304, b"")
    other = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice,
                    headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_a_range_answers_206_with_those_bytes(output: dict[str, Any], api: Api,
                                              service: Service) -> None:
    whole = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice).content
    size = len(whole)
    for header, first, last in (("bytes=0-9", 0, 9), ("bytes=-5", size - 5, size - 1),
                                (f"bytes={size - 3}-", size - 3, size - 1)):
        response = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice,
                           headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert response.content == whole[first:last + 1]


def test_a_range_outside_the_file_answers_416(output: dict[str, Any], api: Api,
                                              service: Service) -> None:
    response = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice,
                       headers={"Range": f"bytes={output['size_bytes']}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{output['size_bytes']}"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


def test_thumbnails_are_small_images_with_their_own_etag(output: dict[str, Any], api: Api,
                                                         service: Service) -> None:
    response = api.get(f"/v1/outputs/{output['id']}/thumbnail", token=service.alice,
                       params={"size": "8"})
    assert response.status_code == 422  # below the smallest size offered
    response = api.get(f"/v1/outputs/{output['id']}/thumbnail", token=service.alice)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("image/")
    with Image.open(io.BytesIO(response.content)) as image:
        assert max(image.size) <= 256
    cached = api.get(f"/v1/outputs/{output['id']}/thumbnail", token=service.alice,
                     headers={"If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304


@pytest.mark.parametrize("bad", ["..", "..%2F..%2Fetc%2Fpasswd", ".hidden", "a..b",
                                 "%2E%2E", "x" * 101])
def test_output_ids_cannot_reach_outside_the_store(api: Api, service: Service,
                                                   bad: str) -> None:
    for suffix in ("", "/content", "/thumbnail"):
        response = api.get(f"/v1/outputs/{bad}{suffix}", token=service.admin)
        assert 400 <= response.status_code < 500, (bad, suffix)
        assert "root:" not in response.text


def test_unknown_output_ids_answer_404(api: Api, service: Service) -> None:
    response = api.get(f"/v1/outputs/{uuid.uuid4().hex}/content", token=service.alice)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_regenerate_with_a_seed_reuses_the_values(output: dict[str, Any], api: Api,
                                                  service: Service) -> None:
    response = api.post(f"/v1/outputs/{output['id']}/regenerate", token=service.alice,
                        json={"seed": 42})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["Location"] == job["url"]
    done = api.wait_job(service.alice, job["id"])
    assert done["items"][0]["seed"] == 42 and done["values"]["color"] == "#ff0000"


def test_regenerate_without_a_seed_draws_a_new_one(output: dict[str, Any], api: Api,
                                                   service: Service) -> None:
    job = api.post(f"/v1/outputs/{output['id']}/regenerate", token=service.alice,
                   json={"seed": None}).json()
    assert api.wait_job(service.alice, job["id"])["items"][0]["seed"] != 3


def test_regenerating_a_public_output_makes_a_job_of_the_caller(api: Api,
                                                                service: Service) -> None:
    job = api.submit(service.alice, workflow="solid", visibility="public",
                     character=uuid.uuid4().hex)
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    response = api.post(f"/v1/outputs/{output_id}/regenerate", token=service.bob, json={})
    assert response.status_code == 202 and response.json()["owner"] == "bob"


def test_the_character_gallery_is_public_and_only_public(api: Api, service: Service) -> None:
    character = uuid.uuid4().hex
    shown = api.submit(service.alice, workflow="solid", character=character,
                       visibility="public")
    hidden = api.submit(service.alice, workflow="solid", character=character)
    shown_output = api.wait_job(service.alice, shown["id"])["output_ids"][0]
    api.wait_job(service.alice, hidden["id"])
    page = api.get("/v1/gallery", token=service.bob, params={"character": character}).json()
    assert [o["id"] for o in page["outputs"]] == [shown_output]
    assert page["next_cursor"] is None


def test_a_conversation_gallery_is_private_to_its_owner(api: Api, service: Service) -> None:
    conversation = uuid.uuid4().hex
    job = api.submit(service.alice, workflow="solid", conversation=conversation, count=3)
    outputs = api.wait_job(service.alice, job["id"])["output_ids"]

    def gallery(token: str, **extra: str) -> dict[str, Any]:
        response = api.get("/v1/gallery", token=token,
                           params={"conversation": conversation, **extra})
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    assert {o["id"] for o in gallery(service.alice)["outputs"]} == set(outputs)
    assert gallery(service.bob)["outputs"] == []
    assert {o["id"] for o in gallery(service.admin)["outputs"]} == set(outputs)
    first = gallery(service.alice, limit="2")
    rest = gallery(service.alice, limit="2", cursor=first["next_cursor"])
    assert len(first["outputs"]) == 2 and len(rest["outputs"]) == 1


def test_a_gallery_needs_exactly_one_of_character_and_conversation(api: Api,
                                                                   service: Service) -> None:
    for params in ({}, {"character": "a", "conversation": "b"}):
        response = api.get("/v1/gallery", token=service.alice, params=params)
        assert response.status_code == 400


# --- listing ------------------------------------------------------------------------------


def test_the_listing_shows_own_and_public_outputs_filtered(api: Api, service: Service) -> None:
    tag = uuid.uuid4().hex
    mine = finished_output(api, service.alice, character=tag, conversation=f"{tag}-1")
    shared = finished_output(api, service.bob, character=tag, visibility="public")
    hidden = finished_output(api, service.bob, character=tag)

    def listed(token: str, **query: str) -> list[str]:
        response = api.get("/v1/outputs", token=token, params=query)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["outputs"]]

    assert listed(service.alice, character=tag) == [shared["id"], mine["id"]]
    assert listed(service.bob, character=tag) == [hidden["id"], shared["id"]]
    assert listed(service.admin, character=tag) == [hidden["id"], shared["id"], mine["id"]]
    assert listed(service.alice, character=tag, owner="bob") == [shared["id"]]
    assert listed(service.admin, character=tag, owner="bob") == [hidden["id"], shared["id"]]
    assert listed(service.alice, conversation=f"{tag}-1") == [mine["id"]]
    assert listed(service.alice, job=mine["job_id"]) == [mine["id"]]
    assert listed(service.alice, character=tag, workflow="nap") == []


def test_the_listing_pages_with_its_cursor(api: Api, service: Service) -> None:
    tag = uuid.uuid4().hex
    job = api.submit(service.alice, workflow="solid", character=tag, count=3)
    made = api.wait_job(service.alice, job["id"])["output_ids"]
    first = api.get("/v1/outputs", token=service.alice,
                    params={"character": tag, "limit": "2"}).json()
    rest = api.get("/v1/outputs", token=service.alice,
                   params={"character": tag, "limit": "2", "cursor": first["next_cursor"]}).json()
    seen = [o["id"] for o in first["outputs"] + rest["outputs"]]
    assert sorted(seen) == sorted(made) and len(seen) == 3 and rest["next_cursor"] is None


# --- delete -------------------------------------------------------------------------------


def blob(service: Service, output: dict[str, Any]) -> Any:
    return service.orch._blobs.path(output["sha256"])


def test_an_owner_deletes_an_output_and_its_unshared_bytes(api: Api, service: Service) -> None:
    output = finished_output(api, service.alice)
    assert api.get(f"/v1/outputs/{output['id']}/thumbnail", token=service.alice).ok
    assert blob(service, output).is_file()
    response = api.delete(f"/v1/outputs/{output['id']}", token=service.alice)
    assert response.status_code == 204
    for suffix in ("", "/content", "/thumbnail"):
        assert api.get(f"/v1/outputs/{output['id']}{suffix}",
                       token=service.alice).status_code == 404
    assert not blob(service, output).exists()
    assert not list(blob(service, output).parent.glob(f"{output['sha256']}.thumb*"))
    assert api.delete(f"/v1/outputs/{output['id']}", token=service.alice).status_code == 404


def test_another_owners_output_is_404_even_when_public(api: Api, service: Service) -> None:
    private = finished_output(api, service.alice)
    public = finished_output(api, service.alice, visibility="public")
    for output in (private, public):
        response = api.delete(f"/v1/outputs/{output['id']}", token=service.bob)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
        assert api.get(f"/v1/outputs/{output['id']}", token=service.alice).status_code == 200
    assert api.delete(f"/v1/outputs/{public['id']}", token=service.admin).status_code == 204
    assert api.get(f"/v1/outputs/{public['id']}", token=service.alice).status_code == 404


def test_bytes_another_output_shares_are_kept(api: Api, service: Service) -> None:
    output = finished_output(api, service.alice)
    record = service.orch.output(output["id"])
    twin = service.orch._store.add_output(record.model_copy(
        update={"id": uuid.uuid4().hex, "filename": "twin.png"}))
    assert api.delete(f"/v1/outputs/{output['id']}", token=service.alice).status_code == 204
    assert blob(service, output).is_file()
    assert api.get(f"/v1/outputs/{twin.id}/content", token=service.alice).status_code == 200
    assert api.delete(f"/v1/outputs/{twin.id}", token=service.alice).status_code == 204
    assert not blob(service, output).exists()


@pytest.mark.parametrize("user", ["gateway upload", "v2 asset", "job input"])
def test_bytes_an_upload_or_a_job_uses_are_kept(api: Api, service: Service, user: str) -> None:
    output = finished_output(api, service.alice, values={"color": f"#{uuid.uuid4().hex[:6]}"})
    data = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice).content
    if user == "gateway upload":
        response = api.post(f"/comfyui/{service.alice}/upload/image",
                            files={"image": ("again.png", data, "image/png")})
    elif user == "v2 asset":
        response = api.post("/api/v2/assets", token=service.alice,
                            files={"file": ("again.png", data, "image/png")},
                            data={"content_type": "image/png", "file_path": "again.png"})
    else:
        response = api.post("/v1/jobs", token=service.alice, data={"workflow": "avatar"},
                            files={"char_avatar": ("again.png", data, "image/png")})
    assert response.ok, response.text
    assert api.delete(f"/v1/outputs/{output['id']}", token=service.alice).status_code == 204
    assert blob(service, output).is_file()


def test_an_upload_of_the_same_bytes_during_a_delete_keeps_them(
        api: Api, service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given alice's output with bytes nothing else names, when bob uploads the same bytes
    as a v2 asset after the delete found them unused but before it removed them, then bob's
    asset still serves its bytes (the race is made certain by a hook after the check)."""
    output = finished_output(api, service.alice, values={"color": f"#{uuid.uuid4().hex[:6]}"})
    data = api.get(f"/v1/outputs/{output['id']}/content", token=service.alice).content
    uploaded: list[dict[str, Any]] = []
    check = service.orch._store.blob_in_use  # the one query that decides a release

    def check_then_upload(sha256: str) -> bool:
        in_use = check(sha256)
        response = api.post("/api/v2/assets", token=service.bob,
                            files={"file": ("same.png", data, "image/png")},
                            data={"content_type": "image/png", "file_path": "same.png"})
        assert response.status_code == 201, response.text
        uploaded.append(response.json())
        return in_use

    monkeypatch.setattr(service.orch._store, "blob_in_use", check_then_upload)
    assert api.delete(f"/v1/outputs/{output['id']}", token=service.alice).status_code == 204
    monkeypatch.undo()
    (asset,) = uploaded
    content = api.get(f"/api/v2/assets/{asset['id']}/content", token=service.bob)
    assert (content.status_code, content.content) == (200, data)
    assert blob(service, output).is_file()


# --- what others get of a public output ------------------------------------------------------

TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


@pytest.fixture(scope="module")
def avatar_output(api: Api, service: Service) -> dict[str, Any]:
    """Alice's public image made from her uploaded avatar (which ComfyUI embeds)."""
    response = api.post("/v1/jobs", token=service.alice,
                        data={"workflow": "avatar", "visibility": "public"},
                        files={"char_avatar": ("me.png", png_bytes(color="#c0ffee"),
                                               "image/png")})
    assert response.status_code == 202, response.text
    output_id = api.wait_job(service.alice, response.json()["id"])["output_ids"][0]
    found: dict[str, Any] = api.get(f"/v1/outputs/{output_id}", token=service.alice).json()
    return found


def test_the_owner_gets_the_file_as_comfyui_wrote_it(avatar_output: dict[str, Any], api: Api,
                                                     service: Service) -> None:
    response = api.get(f"/v1/outputs/{avatar_output['id']}/content", token=service.alice)
    avatar = base64.b64encode(png_bytes(color="#c0ffee"))
    assert b"tEXt" in response.content and avatar in response.content
    assert hashlib.sha256(response.content).hexdigest() == avatar_output["sha256"]
    assert response.headers["ETag"] == f'"{avatar_output["sha256"]}"'


@pytest.mark.parametrize("who", ["bob", "admin"])
def test_anyone_else_gets_the_picture_without_its_embedded_graph(
        avatar_output: dict[str, Any], api: Api, service: Service, who: str) -> None:
    """Given alice's public output made from her avatar, when another token downloads it,
    then it has no text chunks (no prompt, no avatar) and the same pixels, with an ETag of
    its own that conditional and range requests honour."""
    url = f"/v1/outputs/{avatar_output['id']}/content"
    token = getattr(service, who)
    original = api.get(url, token=service.alice).content
    response = api.get(url, token=token)
    assert response.status_code == 200
    assert not any(chunk in response.content for chunk in TEXT_CHUNKS)
    assert b"prompt" not in response.content and b"workflow" not in response.content
    with Image.open(io.BytesIO(response.content)) as mine, \
            Image.open(io.BytesIO(original)) as theirs:
        assert mine.convert("RGB").tobytes() == theirs.convert("RGB").tobytes()
    etag = response.headers["ETag"]
    assert etag == f'"{avatar_output["sha256"]}-public"'
    assert int(response.headers["Content-Length"]) == len(response.content) < len(original)
    assert api.get(url, token=token, headers={"If-None-Match": etag}).status_code == 304
    assert api.get(url, token=token, headers={
        "If-None-Match": f'"{avatar_output["sha256"]}"'}).status_code == 200
    part = api.get(url, token=token, headers={"Range": "bytes=8-15"})
    assert (part.status_code, part.content) == (206, response.content[8:16])
    assert part.headers["Content-Range"] == f"bytes 8-15/{len(response.content)}"


def test_the_gateway_view_of_anothers_output_has_no_embedded_graph(
        avatar_output: dict[str, Any], api: Api, service: Service) -> None:
    name = avatar_output["id"] + ".png"
    theirs = api.get(f"/comfyui/{service.bob}/view", params={"filename": name})
    mine = api.get(f"/comfyui/{service.alice}/view", params={"filename": name})
    assert theirs.status_code == mine.status_code == 200
    assert not any(chunk in theirs.content for chunk in TEXT_CHUNKS)
    assert b"tEXt" in mine.content


def test_anothers_output_made_from_input_images_is_not_regenerated(
        avatar_output: dict[str, Any], api: Api, service: Service) -> None:
    """Regenerating would hand alice's avatar to bob in his new job (its graph, its
    /api/v2 workflow): 403 naming the inputs, and no job for bob."""
    before = api.get("/v1/jobs", token=service.bob).json()["jobs"]
    response = api.post(f"/v1/outputs/{avatar_output['id']}/regenerate", token=service.bob,
                        json={})
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden" and error["details"]["inputs"] == ["char_avatar"]
    assert "char_avatar" in error["message"] and "input images" in error["message"]
    assert api.get("/v1/jobs", token=service.bob).json()["jobs"] == before
    mine = api.post(f"/v1/outputs/{avatar_output['id']}/regenerate", token=service.alice,
                    json={})
    assert mine.status_code == 202  # the owner still may


def test_anothers_output_without_inputs_is_regenerated_with_its_values_only(
        api: Api, service: Service) -> None:
    public = finished_output(api, service.alice, visibility="public",
                             values={"color": "#123456"})
    response = api.post(f"/v1/outputs/{public['id']}/regenerate", token=service.bob, json={})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["owner"] == "bob" and job["values"]["color"] == "#123456"
    api.wait_job(service.bob, job["id"])
    graph = api.get(f"/api/v2/jobs/{job['id']}/workflow", token=service.bob).json()["workflow"]
    assert [node["class_type"] for node in graph.values()] == [
        "OrchTestSolidImage", "SaveImage"]


def test_anothers_output_of_a_raw_graph_is_not_regenerated(api: Api,
                                                           service: Service) -> None:
    job = api.submit(service.alice, graph=graphs.txt2img(seed=4, steps=1),
                     visibility="public")
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    response = api.post(f"/v1/outputs/{output_id}/regenerate", token=service.bob, json={})
    assert response.status_code == 403
    assert response.json()["error"]["details"]["inputs"] == ["graph"]


# --- regenerating a raw graph ----------------------------------------------------------------


def _pixels(api: Api, token: str, output_id: str) -> bytes:
    data = api.get(f"/v1/outputs/{output_id}/content", token=token).content
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def test_a_raw_graph_is_regenerated_with_the_new_seed_in_its_sampler(
        api: Api, service: Service) -> None:
    """Given a txt2img graph submitted raw with seed 1, when its output is regenerated with
    seed 2 and with no seed, then each new job's graph carries its new seed in KSampler and
    makes a different image."""
    job = api.submit(service.alice, graph=graphs.txt2img(seed=1, steps=2))
    first = api.wait_job(service.alice, job["id"])["output_ids"][0]
    seeds = {}
    for asked in (2, None):
        response = api.post(f"/v1/outputs/{first}/regenerate", token=service.alice,
                            json={"seed": asked})
        assert response.status_code == 202, response.text
        again = api.wait_job(service.alice, response.json()["id"])
        assert again["status"] == "succeeded"
        graph = api.get(f"/api/v2/jobs/{again['id']}/workflow",
                        token=service.alice).json()["workflow"]
        seeds[asked] = graph["3"]["inputs"]["seed"]
        assert again["values"]["seed"] == seeds[asked]
        assert _pixels(api, service.alice, again["output_ids"][0]) != _pixels(
            api, service.alice, first)
    assert seeds[2] == 2 and seeds[None] not in (1, 2)


def test_a_raw_graph_without_a_seed_input_is_refused_naming_why(api: Api,
                                                                service: Service) -> None:
    job = api.submit(service.alice, graph=graphs.solid_image(8, 8, "#445566"))
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    response = api.post(f"/v1/outputs/{output_id}/regenerate", token=service.alice,
                        json={"seed": 5})
    assert response.status_code == 422, response.text
    assert "no seed input found" in response.json()["error"]["message"]
    assert job["id"] in response.json()["error"]["message"]


def test_image_values_of_anothers_output_are_not_listed(api: Api, service: Service) -> None:
    """An avatar sent as base64 text (as SillyTavern does) is a value of the output; others
    see the output's other values, never the avatar, in its metadata and galleries."""
    avatar = base64.b64encode(png_bytes(color="#abcdef")).decode()
    job = api.submit(service.alice, workflow="avatar", visibility="public",
                     character="kit", values={"char_avatar": avatar, "prompt": "a fox"})
    output_id = api.wait_job(service.alice, job["id"])["output_ids"][0]
    mine = api.get(f"/v1/outputs/{output_id}", token=service.alice).json()
    theirs = api.get(f"/v1/outputs/{output_id}", token=service.bob).json()
    gallery = api.get("/v1/gallery", token=service.bob, params={"character": "kit"}).json()
    listed = api.get("/v1/outputs", token=service.bob, params={"owner": "alice"}).json()
    assert mine["values"]["char_avatar"] == avatar
    for shown in (theirs, *gallery["outputs"], *listed["outputs"]):
        assert "char_avatar" not in shown["values"]
        assert avatar not in str(shown)
    assert theirs["values"]["prompt"] == "a fox"
    regenerate = api.post(f"/v1/outputs/{output_id}/regenerate", token=service.bob, json={})
    assert regenerate.status_code == 403
    assert regenerate.json()["error"]["details"]["inputs"] == ["char_avatar"]


MEDIA_GRAPH = {
    "1": {"class_type": "OrchTestSolidImage",
          "inputs": {"width": 32, "height": 32, "color": "#804020", "batch_size": 4, "seed": 9}},
    "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
    "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 0], "format": "mp4",
                                                "codec": "auto", "filename_prefix": "clip"}},
    "4": {"class_type": "SaveWEBM", "inputs": {"images": ["1", 0], "codec": "vp9", "fps": 8.0,
                                               "crf": 32.0, "filename_prefix": "clip"}},
    "5": {"class_type": "EmptyAudio",
          "inputs": {"duration": 0.5, "sample_rate": 8000, "channels": 1}},
    "6": {"class_type": "SaveAudio", "inputs": {"audio": ["5", 0], "filename_prefix": "tone"}},
}
# Decodes a file with the PyAV of ComfyUI's own environment: what a player would show.
DECODE = """
import sys, av
with av.open(sys.argv[1]) as media:
    kind = "video" if media.streams.video else "audio"
    frames = sum(1 for _ in media.decode(**{kind: 0}))
print(kind, frames)
"""


def _decoded(comfy_install: ComfyInstall, tmp_path: Path, data: bytes) -> str:
    path = tmp_path / uuid.uuid4().hex
    path.write_bytes(data)
    done = subprocess.run([str(comfy_install.python), "-c", DECODE, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_public_videos_and_audio_reach_others_without_their_graph(
        api: Api, service: Service, comfy_install: ComfyInstall, tmp_path: Path) -> None:
    """ComfyUI's SaveVideo (MP4), SaveWEBM and SaveAudio (FLAC) write the graph into the
    container's metadata; another token gets files without it that still decode to the
    same frames and samples."""
    # Submitted in-process: the pre-flight check does not know SaveVideo's dynamic combo
    # input (codec) yet, and what is tested here is what is served.
    job = service.orch.submit(graph=MEDIA_GRAPH, owner="alice", visibility="public")
    done = api.wait_job(service.alice, job.id, timeout=120)
    assert done["status"] == "succeeded", done
    mimes = set()
    for output_id in done["output_ids"]:
        url = f"/v1/outputs/{output_id}/content"
        mine = api.get(url, token=service.alice)
        theirs = api.get(url, token=service.bob)
        mimes.add(mine.headers["Content-Type"])
        assert b"OrchTestSolidImage" in mine.content
        assert theirs.status_code == 200 and b"OrchTestSolidImage" not in theirs.content
        assert len(theirs.content) == len(mine.content)  # overwritten in place
        assert _decoded(comfy_install, tmp_path, theirs.content) == _decoded(
            comfy_install, tmp_path, mine.content)
    assert mimes == {"video/mp4", "video/webm", "audio/flac"}
