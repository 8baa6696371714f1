"""Numbers from requests are ASCII digits and bounded: never a 500 for a Unicode digit
(``str.isdigit`` takes ``"²"``, ``int`` does not), a 5,000-digit number or one SQLite
cannot bind. Parsed without a server, then over HTTP against the real service."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from orchestrator.web.digits import MAX_DIGITS, clamped_decimal, parse_decimal
from tests.orchestrator.web.conftest import Api, Service, png_bytes

HUGE = "9" * 5000


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0), ("42", 42), ("9" * MAX_DIGITS, int("9" * MAX_DIGITS)), ("9" * 19, None),
    ("²", None), ("٣", None), ("1²", None), ("", None), ("-1", None), (" 1", None),
    ("+1", None), ("1_000", None), (HUGE, None),
])
def test_parse_decimal_takes_ascii_digits_only_and_bounded(text: str,
                                                           expected: int | None) -> None:
    assert parse_decimal(text) == expected


def test_clamped_decimal_caps_a_huge_number_without_converting_it() -> None:
    assert clamped_decimal(HUGE, ceiling=1000) == 1000
    assert clamped_decimal("999", ceiling=1000) == 999
    assert clamped_decimal("²") is None


# --- over HTTP ---------------------------------------------------------------------------------


def cursor(kind: str, seq: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def output(service: Service) -> dict[str, Any]:
    """One image output of alice's, made by the real node."""
    job = service.api.submit(service.alice, workflow="solid", values={"seed": 31})
    done = service.api.wait_job(service.alice, job["id"])
    assert done["status"] == "succeeded", done
    found: dict[str, Any] = service.api.get(f"/v1/outputs/{done['output_ids'][0]}",
                                            token=service.alice).json()
    return found


@pytest.fixture(scope="module")
def asset(service: Service) -> tuple[str, bytes]:
    data = png_bytes(12, 12, "#123456")
    response = service.api.post("/api/v2/assets", token=service.alice,
                                files={"file": ("a.png", data, "image/png")},
                                data={"content_type": "image/png", "file_path": "a.png"})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"], data


def content_paths(output: dict[str, Any], asset: tuple[str, bytes]) -> list[str]:
    return [f"/v1/outputs/{output['id']}/content", f"/api/v2/assets/{asset[0]}/content"]


@pytest.mark.parametrize("header", ["bytes=²-", "bytes=0-²", "bytes=-٣", "bytes=１-2"])
def test_a_range_with_unicode_digits_is_ignored_and_the_whole_file_sent(
        api: Api, service: Service, output: dict[str, Any], asset: tuple[str, bytes],
        header: str) -> None:
    for path in content_paths(output, asset):
        whole = api.get(path, token=service.alice)
        response = api.get(path, token=service.alice, headers={"Range": header.encode()})
        assert response.status_code == 200, (path, response.text)
        assert response.content == whole.content and "Content-Range" not in response.headers


def test_a_range_starting_5000_digits_in_is_416_with_the_size(
        api: Api, service: Service, output: dict[str, Any], asset: tuple[str, bytes]) -> None:
    for path in content_paths(output, asset):
        size = len(api.get(path, token=service.alice).content)
        response = api.get(path, token=service.alice, headers={"Range": f"bytes={HUGE}-"})
        assert response.status_code == 416, (path, response.text)
        assert response.headers["Content-Range"] == f"bytes */{size}"
        assert response.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", [f"bytes=0-{HUGE}", f"bytes=-{HUGE}"])
def test_a_range_ending_5000_digits_in_is_the_whole_file_as_206(
        api: Api, service: Service, output: dict[str, Any], asset: tuple[str, bytes],
        header: str) -> None:
    for path in content_paths(output, asset):
        whole = api.get(path, token=service.alice).content
        response = api.get(path, token=service.alice, headers={"Range": header})
        assert response.status_code == 206, (path, response.text)
        assert response.content == whole
        assert response.headers["Content-Range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"
    assert hashlib.sha256(whole).hexdigest() == hashlib.sha256(asset[1]).hexdigest()


@pytest.mark.parametrize("value", ["²", "٣٣", HUGE, "9" * 30])
def test_a_last_event_id_of_unicode_or_too_many_digits_is_400(
        api: Api, service: Service, output: dict[str, Any], value: str) -> None:
    response = api.get(f"/v1/jobs/{output['job_id']}/events", token=service.alice,
                       headers={"Last-Event-ID": value.encode()}, stream=True)
    with response:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_request"
        assert "Last-Event-ID" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/outputs", "/v1/gallery",
                                  "/v1/gallery?character=mira"])
@pytest.mark.parametrize("seq", ["99999999999999999999", HUGE[:300], "²"])
def test_a_rest_cursor_whose_number_overflows_sqlite_is_400(api: Api, service: Service,
                                                            path: str, seq: str) -> None:
    kind = "j" if path == "/v1/jobs" else "o"
    sep = "&" if "?" in path else "?"
    response = api.get(f"{path}{sep}cursor={cursor(kind, seq)}", token=service.alice)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("seq", ["99999999999999999999", HUGE[:300]])
def test_a_v2_cursor_whose_number_overflows_sqlite_is_422_invalid_cursor(
        api: Api, service: Service, seq: str) -> None:
    response = api.get(f"/api/v2/jobs?cursor={cursor('j', seq)}", token=service.alice)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("value", ["²²²", "٣٠٠", HUGE])
def test_an_asset_expires_in_of_unicode_or_too_many_digits_is_422(api: Api, service: Service,
                                                                  value: str) -> None:
    response = api.post("/api/v2/assets", token=service.alice,
                        files={"file": ("b.png", png_bytes(), "image/png")},
                        data={"content_type": "image/png", "file_path": "b.png",
                              "expires_in": value})
    assert response.status_code == 422, response.text
    assert "expires_in" in response.json()["error"]["message"]
