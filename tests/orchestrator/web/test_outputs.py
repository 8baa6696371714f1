"""``/v1/outputs`` and ``/v1/gallery`` over HTTP: metadata, bytes, caching, ranges,
thumbnails, regenerate, and the public and private galleries."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from PIL import Image

from tests.orchestrator.web.conftest import Api, Service


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
