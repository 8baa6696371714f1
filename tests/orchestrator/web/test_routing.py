"""RouteIndex: a request is tried only against the routes of its first path segment."""

from __future__ import annotations

import pytest
from starlette.routing import Match, Route

from orchestrator.web.routing import RouteIndex, first_segment


async def _endpoint(request: object) -> None:  # never called: only matching is tested
    raise AssertionError


def _scope(path: str, method: str = "GET") -> dict[str, object]:
    return {"type": "http", "path": path, "method": method, "root_path": ""}


def test_first_segment() -> None:
    assert first_segment("/comfyui/{token}/prompt") == "comfyui"
    assert first_segment("/v1") == "v1"
    assert first_segment("/") == ""


def test_the_first_full_match_of_the_group_wins_in_order() -> None:
    literal = Route("/comfyui/api/prompt", _endpoint)
    token = Route("/comfyui/{token}/prompt", _endpoint)
    index = RouteIndex([Route("/v1/health", _endpoint), literal, token])
    match, child = index.matches(_scope("/comfyui/api/prompt"))
    assert match == Match.FULL and child["orchestrator.route"] is literal
    match, child = index.matches(_scope("/comfyui/secret/prompt"))
    assert match == Match.FULL and child["orchestrator.route"] is token
    assert child["path_params"] == {"token": "secret"}


def test_other_groups_and_unknown_segments_do_not_match() -> None:
    index = RouteIndex([Route("/v1/health", _endpoint), Route("/comfyui/{p}", _endpoint)])
    assert index.matches(_scope("/health"))[0] == Match.NONE
    assert index.matches(_scope("/v2/comfyui"))[0] == Match.NONE


def test_a_wrong_method_is_a_partial_match_for_the_405() -> None:
    route = Route("/v1/jobs", _endpoint, methods=["POST"])
    match, child = RouteIndex([route]).matches(_scope("/v1/jobs", "GET"))
    assert match == Match.PARTIAL and child["orchestrator.route"] is route


def test_urls_are_built_from_the_routes_inside() -> None:
    index = RouteIndex([Route("/v1/jobs/{job_id}", _endpoint, name="job")])
    assert index.url_path_for("job", job_id="j1") == "/v1/jobs/j1"


def test_a_route_starting_with_a_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="literal first segment"):
        RouteIndex([Route("/{anything}/x", _endpoint)])
