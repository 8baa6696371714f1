"""The one JSON body reader: what it accepts, and the 400 it answers for what it refuses."""

from __future__ import annotations

import time

import pytest
import requests

from orchestrator.web.body import MAX_DEPTH, InvalidJson, read_json
from orchestrator.web.errors import envelope
from tests.orchestrator.web.conftest import Service, ServiceFactory


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def refusal(raw: bytes | str, **kwargs: object) -> InvalidJson:
    with pytest.raises(InvalidJson) as caught:
        read_json(raw, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_ordinary_json_parses_to_plain_values() -> None:
    assert read_json(b'{"a": [1, 2.5, "x\\u00e9", null, true]}') == {
        "a": [1, 2.5, "x\u00e9", None, True]}
    assert read_json('{"emoji": "\\ud83d\\ude00"}') == {"emoji": "\U0001F600"}


def test_nesting_up_to_the_limit_is_accepted_and_one_more_level_is_refused() -> None:
    assert read_json(nested(MAX_DEPTH)) is not None
    exc = refusal(nested(MAX_DEPTH + 1))
    assert f"deeper than {MAX_DEPTH} levels" in str(exc)


@pytest.mark.parametrize("depth", [900, 10_000, 100_000])
def test_deep_nesting_is_a_400_never_a_recursion_error(depth: int) -> None:
    exc = refusal(nested(depth).encode())
    env = envelope(exc)
    assert env.status == 400
    assert env.body["error"]["code"] == "invalid_request"
    assert env.body["error"]["details"] == {"field": "body", "reason": exc.reason}


def test_objects_and_arrays_count_alike_and_brackets_in_strings_do_not_count() -> None:
    mixed = '{"a": [{"a": [{"a": []}]}]}'  # 6 levels
    assert read_json(mixed, max_depth=6) is not None
    refusal(mixed, max_depth=5)
    assert read_json('["[[[[[[[[[[[[\\"[[[[", {"]]]]": []}]', max_depth=3) is not None


def test_a_deep_body_is_measured_quickly_whether_deep_or_wide() -> None:
    wide = b"[" + b"[]," * 2_000_000 + b"[]]"
    deep = b"[" * 3_000_000 + b"]" * 3_000_000
    start = time.perf_counter()
    assert len(read_json(wide)) == 2_000_001
    refusal(deep)
    # Generous: the point is linear C-speed work, not a Python loop per bracket.
    assert time.perf_counter() - start < 20


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1E400"])
def test_non_finite_numbers_are_refused_and_named(literal: str) -> None:
    exc = refusal(f'{{"number": {literal}}}')
    assert literal in str(exc) and "finite" in str(exc)


def test_an_integer_over_the_digit_limit_is_refused_not_a_value_error() -> None:
    assert "digits" in str(refusal("9" * 5000))


@pytest.mark.parametrize("raw", ['"\\ud800"', '{"\\udc00": 1}', '["a", "\\uDBFF x"]'])
def test_a_lone_surrogate_escape_is_refused(raw: str) -> None:
    assert "surrogate" in str(refusal(raw))


def test_a_lone_surrogate_in_text_is_refused() -> None:
    assert "surrogate" in str(refusal('"\ud800"'))


@pytest.mark.parametrize("raw", [b"", b"{x", b"\xff\xfe\xfd", b"[1,]", b"{} {}"])
def test_syntax_errors_name_where_and_what(raw: bytes) -> None:
    exc = refusal(raw, where="form field 'values'")
    assert str(exc).startswith("form field 'values' is not acceptable JSON: ")
    assert exc.where == "form field 'values'"


# --- every face, over HTTP --------------------------------------------------------------------

DEEP = nested(10_000).encode()
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def idle(service_factory: ServiceFactory) -> Service:
    """A service with no node: nothing a test submits runs, and nothing needs to."""
    return service_factory(nodes=())


def assert_refused(response: requests.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and fragment in error["message"], error


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/nodes", "/v1/workflows/solid/check"])
def test_rest_refuses_a_body_nested_10000_deep_with_400(idle: Service, path: str) -> None:
    response = idle.api.post(path, token=idle.admin, data=DEEP, headers=JSON)
    assert_refused(response, 400, f"deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("path", ["/api/v2/jobs", "/api/v2/assets/from-hash"])
def test_v2_refuses_a_body_nested_10000_deep_with_422(idle: Service, path: str) -> None:
    response = idle.api.post(path, token=idle.alice, data=DEEP, headers=JSON)
    assert_refused(response, 422, f"deeper than {MAX_DEPTH} levels")


def test_a_deep_json_form_field_of_a_multipart_submit_is_refused_by_name(idle: Service) -> None:
    response = idle.api.post("/v1/jobs", token=idle.alice,
                             files={"workflow": (None, "solid"),
                                    "values": (None, nested(10_000))})
    assert_refused(response, 400, "form field 'values' is not acceptable JSON")


def test_a_model_body_that_is_not_utf8_is_a_400_naming_the_body(idle: Service) -> None:
    response = idle.api.post("/v1/nodes", token=idle.admin, data=b'{"url": "\xff"}',
                             headers=JSON)
    assert_refused(response, 400, "body is not acceptable JSON")
    response = idle.api.post("/api/v2/assets/from-hash", token=idle.alice,
                             data=b'{"hash": "\xff"}', headers=JSON)
    assert_refused(response, 422, "body is not acceptable JSON")


NAN_GRAPH = ('{"1": {"class_type": "OrchTestSleep", "inputs": {"seconds": NaN, "steps": 1, '
             '"seed": 1}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], '
             '"filename_prefix": "nan"}}}')


def job_ids(service: Service) -> list[str]:
    rest = service.api.get("/v1/jobs", token=service.alice).json()["jobs"]
    v2 = service.api.get("/api/v2/jobs", token=service.alice).json()["jobs"]
    return sorted(j["id"] for j in rest + v2)


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/v1/jobs", '{"graph": ' + NAN_GRAPH + "}", 400),
    ("/v1/jobs", '{"workflow": "nap", "values": {"seconds": Infinity}}', 400),
    ("/v1/jobs", '{"workflow": "nap", "values": {"seconds": 1e999}}', 400),
    ("/api/v2/jobs", '{"workflow": ' + NAN_GRAPH + "}", 422),
    ("/api/v2/jobs", '{"workflow": ' + NAN_GRAPH.replace("NaN", "-Infinity") + "}", 422),
])
def test_a_non_finite_number_is_refused_at_the_door_and_no_job_is_recorded(
        service: Service, path: str, body: str, status: int) -> None:
    before = job_ids(service)
    response = service.api.post(path, token=service.alice, data=body.encode(), headers=JSON)
    assert_refused(response, status, "is not a finite number")
    assert job_ids(service) == before


def test_a_non_finite_form_value_is_refused_and_no_job_is_recorded(service: Service) -> None:
    before = job_ids(service)
    response = service.api.post("/v1/jobs", token=service.alice,
                                files={"workflow": (None, "nap"),
                                       "values": (None, '{"seconds": NaN}')})
    assert_refused(response, 400, "form field 'values' is not acceptable JSON: NaN")
    assert job_ids(service) == before
