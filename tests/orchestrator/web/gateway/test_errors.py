"""Our pre-flight problems in ComfyUI's 400 shapes (pure)."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import GraphRejected, InputProblem
from orchestrator.web.gateway.errors import dependent_outputs, rejection_body, shape_error

INFO: dict[str, Any] = {
    "Make": {"input": {"required": {"n": ["INT", {"min": 1, "max": 9}],
                                    "pick": [["a", "b"], {}]}}, "output_node": False},
    "Save": {"input": {"required": {"images": ["IMAGE"]}}, "output_node": True},
}
GRAPH = {"1": {"class_type": "Make", "inputs": {"n": 0, "pick": "c"}},
         "2": {"class_type": "Save", "inputs": {"images": ["1", 0]}},
         "3": {"class_type": "Save", "inputs": {}}}


def _rejected(*problems: InputProblem, code: str = "x") -> GraphRejected:
    return GraphRejected("rejected", problems, code=code)


def test_per_input_problems_become_node_errors_with_dependent_outputs() -> None:
    body = rejection_body(_rejected(
        InputProblem("1", "Make", "low", "n", "value_smaller_than_min", 0),
        InputProblem("1", "Make", "nope", "pick", "value_not_in_list", "c"),
        InputProblem("3", "Save", "missing", "images", "required_input_missing")), GRAPH, INFO)

    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["error"]["details"] == "Required input is missing: images"
    first = body["node_errors"]["1"]
    assert first["dependent_outputs"] == ["2"] and first["class_type"] == "Make"
    assert first["errors"][0] == {
        "type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1",
        "details": "n", "extra_info": {"input_name": "n", "received_value": 0,
                                       "input_config": ["INT", {"min": 1, "max": 9}]}}
    assert first["errors"][1]["details"] == "pick: 'c' not in ['a', 'b']"
    assert body["node_errors"]["3"]["errors"][0]["extra_info"] == {"input_name": "images"}


def test_unknown_class_and_no_outputs_are_graph_level() -> None:
    nope = _rejected(InputProblem("2", "Nope", "x", None, "unknown_class"))
    old = rejection_body(nope, GRAPH, INFO, (0, 3, 75))
    new = rejection_body(nope, GRAPH, INFO, (0, 30, 0))
    empty = rejection_body(_rejected(code="prompt_no_outputs"), GRAPH, INFO)

    assert old == {"error": {"type": "invalid_prompt", "message": "Cannot execute because "
                             "node Nope does not exist.", "details": "Node ID '#2'",
                             "extra_info": {}}, "node_errors": {}}
    assert new == {"error": {"type": "missing_node_type", "message": "Node 'Nope' not found. "
                             "The custom node may not be installed.", "details": "Node ID '#2'",
                             "extra_info": {"node_id": "2", "class_type": "Nope",
                                            "node_title": "Nope"}}, "node_errors": {}}
    assert empty["error"]["type"] == "prompt_no_outputs" and empty["node_errors"] == {}


def test_shape_errors_name_the_node() -> None:
    assert shape_error(GRAPH) is None
    assert shape_error([]) is not None
    missing = shape_error({"5": {"inputs": {}}}, (0, 3, 75))
    assert missing is not None and missing["details"] == "Node ID '#5'"
    titled = shape_error({"5": {"inputs": {}, "_meta": {"title": "Loader"}}}, (0, 30, 0))
    assert titled is not None and titled["type"] == "missing_node_type"
    assert titled["message"].startswith("Node 'Loader' has no class_type.")
    dangling = {"1": {"class_type": "Save", "inputs": {"images": ["9", 0]}}}
    assert shape_error(dangling) is None  # it fails only its outputs: test_targets


def test_dependent_outputs_follow_links_upstream() -> None:
    assert dependent_outputs(GRAPH, "1", ["2", "3"]) == ["2"]
    assert dependent_outputs(GRAPH, "3", ["2", "3"]) == ["3"]
