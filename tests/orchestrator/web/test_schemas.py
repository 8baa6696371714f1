"""Request parsing: names that stay in their folder, one job source, readable errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.web.errors import InvalidRequest
from orchestrator.web.schemas import (
    NODE_NAME_RE,
    JobRequest,
    aware,
    checked_name,
    parse_model,
)


@pytest.mark.parametrize("name", ["portrait", "a", "txt2img_v2.1", "Char-Avatar", "x" * 100])
def test_safe_names_pass(name: str) -> None:
    assert checked_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", "a\\b", ".hidden", "-x", "a..b",
                                  "x" * 101, "a b", "a%2Fb", "caf\u00e9", "a\x00"])
def test_names_that_could_leave_their_folder_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest, match="not allowed"):
        checked_name(name, "workflow name")


def test_node_names_may_hold_a_port() -> None:
    assert checked_name("127.0.0.1:8188", "node name", NODE_NAME_RE) == "127.0.0.1:8188"


@pytest.mark.parametrize("body", [{}, {"workflow": "a", "graph": {"1": {}}}])
def test_a_job_names_exactly_one_workflow_or_graph(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest, match='exactly one of "workflow" and "graph"'):
        parse_model(JobRequest, body)


def test_count_is_at_most_eight() -> None:
    with pytest.raises(InvalidRequest, match="count") as caught:
        parse_model(JobRequest, {"workflow": "a", "count": 9})
    assert caught.value.details["errors"][0]["field"] == "count"


def test_unknown_fields_are_refused_so_typos_show() -> None:
    with pytest.raises(InvalidRequest, match="valuse"):
        parse_model(JobRequest, {"workflow": "a", "valuse": {}})


def test_a_workflow_name_with_dots_is_refused_in_the_body_too() -> None:
    with pytest.raises(InvalidRequest, match="not allowed"):
        parse_model(JobRequest, {"workflow": "../secrets"})


def test_naive_times_are_taken_as_utc() -> None:
    assert aware(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert aware(None) is None
