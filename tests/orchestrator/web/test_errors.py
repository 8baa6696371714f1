"""Every orchestrator error leaves the service as one envelope with the right status."""

from __future__ import annotations

import pytest

from orchestrator.errors import (
    AccessDenied,
    ConfigError,
    GraphRejected,
    InputProblem,
    InvalidCursor,
    JobCancelled,
    JobNotFound,
    NodeTimeout,
    NodeUnreachable,
    OrchestratorError,
    StoreError,
    SubstitutionError,
    WorkflowFormatError,
    WorkflowInvalid,
    WorkflowNotFound,
)
from orchestrator.web.errors import (
    RangeNotSatisfiable,
    TooManyRequests,
    Unauthorized,
    envelope,
)


@pytest.mark.parametrize(("exc", "status", "code"), [
    (JobNotFound("j1"), 404, "not_found"),
    (WorkflowNotFound("portrait"), 404, "not_found"),
    (AccessDenied("alice's job"), 404, "not_found"),
    (WorkflowFormatError("not JSON", source="x.json"), 422, "invalid_workflow"),
    (SubstitutionError("solid", "missing %prompt%"), 422, "invalid_workflow"),
    (GraphRejected("bad"), 422, "invalid_workflow"),
    (ConfigError("bad URL"), 400, "invalid_request"),
    (InvalidCursor("zz"), 400, "invalid_request"),
    (NodeUnreachable("http://10.0.0.5:8188", "refused"), 502, "upstream_error"),
    (NodeTimeout("http://10.0.0.5:8188", "slow"), 502, "upstream_error"),
    (JobCancelled("j1"), 409, "conflict"),
    (StoreError("/srv/secret/db: disk full"), 503, "unavailable"),
    (OrchestratorError("closed"), 500, "internal_error"),
    (Unauthorized("no token"), 401, "unauthorized"),
    (TooManyRequests("queue_full", "full", 30), 429, "queue_full"),
])
def test_status_and_code(exc: OrchestratorError, status: int, code: str) -> None:
    env = envelope(exc)
    assert (env.status, env.body["error"]["code"]) == (status, code)
    assert set(env.body["error"]) == {"code", "message", "details"}


def test_upstream_and_internal_messages_never_name_addresses_or_paths() -> None:
    for exc in (NodeUnreachable("http://10.0.0.5:8188", "refused"),
                StoreError("/srv/secret/db: disk full")):
        message = envelope(exc).body["error"]["message"]
        assert "10.0.0.5" not in message and "/srv/secret" not in message


def test_access_denied_reads_like_a_missing_id() -> None:
    assert envelope(AccessDenied("owned by bob")).body["error"]["message"] == "not found"


def test_graph_problems_are_listed_per_node_and_input() -> None:
    exc = GraphRejected("cannot run", [InputProblem("3", "KSampler", "too big", "steps",
                                                    "value_bigger_than_max", 9999)])
    problems = envelope(exc).body["error"]["details"]["problems"]
    assert problems == [{"node_id": "3", "class_type": "KSampler", "input": "steps",
                         "type": "value_bigger_than_max", "message": "too big"}]


def test_every_problem_of_an_invalid_file_is_listed() -> None:
    exc = WorkflowInvalid([WorkflowFormatError("wrong type", source="m.json", path="$.kind"),
                           WorkflowFormatError("bad JSON", source="m.json", line=2, column=5)],
                          source="m.json")
    problems = envelope(exc).body["error"]["details"]["problems"]
    assert [(p["path"], p["line"]) for p in problems] == [("$.kind", None), (None, 2)]


def test_refusals_carry_their_headers() -> None:
    assert envelope(Unauthorized("x")).headers == {"WWW-Authenticate": "Bearer"}
    assert envelope(TooManyRequests("rate_limited", "slow down", 0.2)).headers == {
        "Retry-After": "1"}
    assert envelope(RangeNotSatisfiable(10)).headers == {"Content-Range": "bytes */10"}
