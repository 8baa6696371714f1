"""``/api/v2/assets`` beyond the SDK's happy path: checks, holds, byte ranges, and bytes
that go with the last asset over them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import httpx
from blake3 import blake3
from comfy_sdk import Comfy

from tests.orchestrator.web.v2 import graphs
from tests.orchestrator.web.v2.conftest import V2Service, png_bytes

Raw = Callable[..., httpx.Response]


def _upload(raw: Raw, v2: V2Service, data: bytes, name: str, **fields: str) -> httpx.Response:
    return raw(v2, "POST", "/api/v2/assets", token=v2.alice,
               files={"file": (name, data, "image/png")},
               data={"content_type": "image/png", "file_path": name, **fields})


def test_a_wrong_expected_hash_is_409_and_stores_nothing(raw: Raw, v2: V2Service) -> None:
    data = png_bytes("#abcdef")
    answer = _upload(raw, v2, data, "mismatch.png", expected_hash="blake3:" + "0" * 64)

    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "hash_mismatch")
    digest = blake3(data).hexdigest()
    assert raw(v2, "HEAD", f"/api/v2/assets/by-hash/blake3:{digest}",
               token=v2.alice).status_code == 404


def test_bytes_that_are_not_an_image_are_refused(raw: Raw, v2: V2Service) -> None:
    answer = _upload(raw, v2, b"not an image at all", "fake.png")

    assert answer.status_code == 415


def test_from_hash_mints_over_the_callers_own_bytes_only(raw: Raw, v2: V2Service) -> None:
    made = _upload(raw, v2, png_bytes("#fedcba"), "mine.png").json()

    minted = raw(v2, "POST", "/api/v2/assets/from-hash", token=v2.alice,
                 json={"hash": made["hash"], "file_path": "copy.png"})
    stranger = raw(v2, "POST", "/api/v2/assets/from-hash", token=v2.bob,
                   json={"hash": made["hash"]})

    assert minted.status_code == 201 and minted.json()["id"] != made["id"]
    assert minted.json()["file_path"] == "copy.png"
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "blob_not_found")


def test_content_serves_ranges_and_refuses_ranges_past_the_end(raw: Raw, v2: V2Service) -> None:
    data = png_bytes("#010203")
    asset = _upload(raw, v2, data, "ranges.png").json()
    path = f"/api/v2/assets/{asset['id']}/content"

    whole = raw(v2, "GET", path, token=v2.alice)
    part = raw(v2, "GET", path, token=v2.alice, headers={"Range": "bytes=1-3"})
    past = raw(v2, "GET", path, token=v2.alice, headers={"Range": f"bytes={len(data)}-"})

    assert (whole.status_code, whole.content) == (200, data)
    assert (part.status_code, part.content) == (206, data[1:4])
    assert part.headers["content-range"] == f"bytes 1-3/{len(data)}"
    assert past.status_code == 416


def test_deleting_an_upload_works_once_and_an_output_is_held(sdk: Comfy, raw: Raw,
                                                             v2: V2Service) -> None:
    asset = _upload(raw, v2, png_bytes("#0a0b0c"), "gone.png").json()
    job = sdk.run(sdk.workflows.from_json(graphs.solid()), timeout=60)

    first = raw(v2, "DELETE", f"/api/v2/assets/{asset['id']}", token=v2.alice)
    second = raw(v2, "DELETE", f"/api/v2/assets/{asset['id']}", token=v2.alice)
    held = raw(v2, "DELETE", f"/api/v2/assets/{job.outputs[0].id}", token=v2.alice)

    assert (first.status_code, second.status_code) == (204, 404)
    assert (held.status_code, held.json()["error"]["code"]) == (409, "asset_in_use")
    output = raw(v2, "GET", f"/api/v2/assets/{job.outputs[0].id}", token=v2.alice).json()
    assert output["job_id"] == job.id and output["hash"] == job.outputs[0]._model.hash


def test_deleting_an_upload_deletes_its_bytes(raw: Raw, v2: V2Service) -> None:
    data = png_bytes("#0d0e0f")
    blob = v2.orch._blobs.path(hashlib.sha256(data).hexdigest())
    asset = _upload(raw, v2, data, "alone.png").json()
    assert blob.is_file()

    deleted = raw(v2, "DELETE", f"/api/v2/assets/{asset['id']}", token=v2.alice)

    assert deleted.status_code == 204
    assert not blob.exists()


def test_bytes_two_assets_share_go_with_the_second_delete(raw: Raw, v2: V2Service) -> None:
    data = png_bytes("#101112")
    blob = v2.orch._blobs.path(hashlib.sha256(data).hexdigest())
    first = _upload(raw, v2, data, "first.png")
    second = _upload(raw, v2, data, "second.png")
    assert (first.status_code, second.status_code) == (201, 200)  # the bytes are deduplicated
    assert first.json()["id"] != second.json()["id"]

    one = raw(v2, "DELETE", f"/api/v2/assets/{first.json()['id']}", token=v2.alice)

    assert one.status_code == 204 and blob.is_file()
    content = raw(v2, "GET", f"/api/v2/assets/{second.json()['id']}/content", token=v2.alice)
    assert content.content == data

    two = raw(v2, "DELETE", f"/api/v2/assets/{second.json()['id']}", token=v2.alice)

    assert two.status_code == 204 and not blob.exists()
