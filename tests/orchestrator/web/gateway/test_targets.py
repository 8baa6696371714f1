"""Which outputs of a posted graph run (pure; ``test_prompts`` checks them against ComfyUI)."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import GraphRejected, InputProblem
from orchestrator.web.gateway.targets import chosen_outputs, dangling_errors, plan, prune

INFO: dict[str, Any] = {
    "Make": {"input": {"required": {"n": ["INT", {"min": 1, "max": 9}]}},
             "output_node": False},
    "Save": {"input": {"required": {"images": ["IMAGE"]}}, "output_node": True},
}
GRAPH: dict[str, Any] = {
    "1": {"class_type": "Make", "inputs": {"n": 1}},
    "2": {"class_type": "Save", "inputs": {"images": ["1", 0]}},
    "3": {"class_type": "Make", "inputs": {"n": 0}},
    "4": {"class_type": "Save", "inputs": {"images": ["3", 0]}},
    "5": {"class_type": "Save", "inputs": {"images": ["gone", 0]}},
}


def _check(graph: dict[str, Any]) -> None:
    problems = [InputProblem(node_id, node["class_type"], "too small", "n",
                             "value_smaller_than_min", 0)
                for node_id, node in graph.items() if node["inputs"].get("n") == 0]
    if problems:
        raise GraphRejected("rejected", problems)


def test_targets_choose_among_output_nodes_only() -> None:
    outputs = ["2", "4", "5"]

    assert chosen_outputs(GRAPH, outputs, None) == outputs
    assert chosen_outputs(GRAPH, outputs, ["4", "1", "x"]) == ["4"]
    assert chosen_outputs(GRAPH, outputs, []) == []


def test_prune_keeps_what_the_outputs_need_in_graph_order() -> None:
    assert list(prune(GRAPH, ["4", "2"])) == ["1", "2", "3", "4"]
    assert list(prune(GRAPH, ["2"])) == ["1", "2"]


def test_a_dangling_link_fails_only_its_output() -> None:
    found = dangling_errors(GRAPH, "5")

    assert list(found) == ["5"] and found["5"]["dependent_outputs"] == ["5"]
    assert found["5"]["errors"][0]["type"] == "exception_during_validation"
    assert dangling_errors(GRAPH, "2") == {}


def test_the_plan_runs_the_valid_outputs_and_reports_the_others() -> None:
    chosen = plan(GRAPH, INFO, None, _check, None)

    assert chosen.graph == prune(GRAPH, ["2"])
    assert set(chosen.node_errors) == {"3", "5"}
    assert chosen.node_errors["3"]["dependent_outputs"] == ["4"]


def test_the_plan_refuses_when_no_output_is_left() -> None:
    none_left = plan(GRAPH, INFO, ["4", "5"], _check, None)
    no_outputs = plan(GRAPH, INFO, [], _check, None)
    unknown = plan({**GRAPH, "9": {"class_type": "Nope", "inputs": {}}}, INFO, None, _check,
                   (0, 30, 0))

    assert none_left.graph is None and none_left.refusal is not None
    assert none_left.refusal["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(none_left.refusal["node_errors"]) == {"3", "5"}
    assert no_outputs.refusal is not None
    assert no_outputs.refusal["error"]["type"] == "prompt_no_outputs"
    assert unknown.refusal is not None
    assert unknown.refusal["error"]["type"] == "missing_node_type"
