"""Client mistakes on ``/api/v2`` are 4xx in the v2 envelope (checked against the spec by
the ``raw`` fixture), never a silent 500; what does end as a 500 is logged."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from orchestrator.errors import InvalidCursor, JobError
from orchestrator.web.v2.errors import UPSTREAM_MESSAGE, v2_error
from tests.orchestrator.web.v2 import graphs
from tests.orchestrator.web.v2.conftest import V2Service, png_bytes

Raw = Callable[..., httpx.Response]


def assert_422(answer: httpx.Response, fragment: str, code: str = "invalid_request") -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and fragment in error["message"], error


def jobs_of(raw: Raw, v2: V2Service) -> list[str]:
    return [j["id"] for j in raw(v2, "GET", "/api/v2/jobs", token=v2.alice).json()["jobs"]]


# --- uploads ------------------------------------------------------------------------------


def test_a_multipart_upload_without_a_boundary_is_422(raw: Raw, v2: V2Service) -> None:
    answer = raw(v2, "POST", "/api/v2/assets", token=v2.alice, content=b"--x\r\n",
                 headers={"Content-Type": "multipart/form-data"})
    assert_422(answer, "boundary")


def test_a_malformed_multipart_upload_is_422(raw: Raw, v2: V2Service) -> None:
    answer = raw(v2, "POST", "/api/v2/assets", token=v2.alice,
                 content=b"--zz\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--zz--\r\n",
                 headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert answer.status_code == 422, answer.text


def test_an_upload_of_two_files_is_422(raw: Raw, v2: V2Service) -> None:
    data = png_bytes("#010203")
    answer = raw(v2, "POST", "/api/v2/assets", token=v2.alice,
                 files=[("file", ("a.png", data, "image/png")),
                        ("file", ("b.png", data, "image/png"))],
                 data={"content_type": "image/png", "file_path": "a.png"})
    assert_422(answer, "files")


def test_an_upload_with_100_tags_is_422_naming_the_tags(raw: Raw, v2: V2Service) -> None:
    answer = raw(v2, "POST", "/api/v2/assets", token=v2.alice,
                 files={"file": ("t.png", png_bytes("#040506"), "image/png")},
                 data={"content_type": "image/png", "file_path": "t.png",
                       "tags": [f"tag{n}" for n in range(100)]})
    assert_422(answer, "tags")


@pytest.mark.parametrize(("body", "kind"), [
    (b"hello", "text/plain"), (b"not json", "application/json"),
    (b'{"hash": "\xff"}', "application/json"), (b"", "application/json"),
    (b'{"hash": "blake3:00", "expires_in": NaN}', "application/json"),
])
def test_from_hash_with_a_body_that_is_not_json_is_422(raw: Raw, v2: V2Service, body: bytes,
                                                       kind: str) -> None:
    answer = raw(v2, "POST", "/api/v2/assets/from-hash", token=v2.alice, content=body,
                 headers={"Content-Type": kind})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"


# --- submits ------------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", ["x", 3, ["a"], None])
def test_a_workflow_that_is_not_an_object_is_422_and_records_nothing(
        raw: Raw, v2: V2Service, workflow: object) -> None:
    before = jobs_of(raw, v2)
    answer = raw(v2, "POST", "/api/v2/jobs", token=v2.alice, json={"workflow": workflow})
    assert_422(answer, "workflow")
    assert jobs_of(raw, v2) == before


@pytest.mark.parametrize("value", [1, None, True, {"a": "b"}, ["x"]])
def test_a_metadata_value_that_is_not_a_string_is_422_metadata_invalid(
        raw: Raw, v2: V2Service, value: object) -> None:
    before = jobs_of(raw, v2)
    answer = raw(v2, "POST", "/api/v2/jobs", token=v2.alice,
                 json={"workflow": graphs.solid(), "metadata": {"scene": value}})
    assert_422(answer, "metadata.scene", code="metadata_invalid")
    assert jobs_of(raw, v2) == before


# --- the mapping itself ---------------------------------------------------------------------


def test_an_unexpected_error_is_a_generic_500_and_is_logged_with_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise RuntimeError("secret detail")
    except RuntimeError as exc:
        with caplog.at_level(logging.ERROR, logger="orchestrator.web.v2.errors"):
            refusal = v2_error(exc)
    assert (refusal.status, refusal.code, str(refusal)) == (500, "upstream_error",
                                                            UPSTREAM_MESSAGE)
    assert caplog.records and caplog.records[0].exc_info is not None
    assert "RuntimeError" in caplog.text and "secret detail" in caplog.text


def test_orchestrator_client_errors_keep_their_4xx() -> None:
    assert (v2_error(InvalidCursor("zz")).status, v2_error(InvalidCursor("zz")).code) == (
        422, "invalid_cursor")
    assert v2_error(JobError("already finished")).status == 409
