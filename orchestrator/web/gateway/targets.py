"""Which outputs of a posted graph run, as ComfyUI chooses them (pure).

ComfyUI runs a prompt's output nodes, or only those named in ``partial_execution_targets``,
and of those only the ones that validate: an output whose branch is broken (a link to a
node that is not in the graph, an input our pre-flight refuses) is left out with its
errors in ``node_errors`` while the others run, and the answer is 200. Only when no output
is left is the prompt refused. The gateway gets the same effect by sending the node the
graph cut down to what the chosen outputs need (``prune``): ComfyUI never runs a node no
output needs, so the cut graph runs exactly what the whole one would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import GraphRejected
from orchestrator.service import is_link
from orchestrator.web.gateway import errors
from orchestrator.web.gateway.versions import Version

Graph = Mapping[str, Any]


def chosen_outputs(graph: Graph, outputs: Iterable[str], targets: Any) -> list[str]:
    """The output nodes that run: all of ``outputs``, or those ``targets`` names (ComfyUI
    ignores a target that is not an output node; ``targets`` None means all)."""
    if targets is None:
        return list(outputs)
    wanted = {str(t) for t in targets} if isinstance(targets, list) else set()
    return [node_id for node_id in outputs if node_id in wanted]


def prune(graph: Graph, outputs: Iterable[str]) -> dict[str, Any]:
    """``graph`` with only the nodes ``outputs`` need, in the graph's order."""
    keep = {node_id for out in outputs for node_id in errors.upstream(graph, out)}
    return {node_id: node for node_id, node in graph.items() if node_id in keep}


def dangling_errors(graph: Graph, output: str) -> dict[str, Any]:
    """ComfyUI's ``node_errors`` for ``output`` when its branch links to a node that is not
    in the graph (its validation raises ``KeyError`` there), else ``{}``."""
    for node_id in errors.upstream(graph, output):
        for name, value in errors.node_inputs(graph, node_id).items():
            if is_link(value) and str(value[0]) not in graph:
                return {node_id: _key_error(graph, node_id, output, name, value)}
    return {}


def _key_error(graph: Graph, node_id: str, output: str, name: str, link: Any
               ) -> dict[str, Any]:
    missing = repr(str(link[0]))
    if node_id == output:
        error = {"type": "exception_during_validation", "message": "Exception when "
                 "validating node", "details": missing,
                 "extra_info": {"exception_type": "builtins.KeyError", "traceback": []}}
    else:
        error = {"type": "exception_during_inner_validation", "message": "Exception when "
                 "validating inner node", "details": missing,
                 "extra_info": {"input_name": name, "input_config": None,
                                "exception_message": missing,
                                "exception_type": "builtins.KeyError", "traceback": [],
                                "linked_node": list(link)}}
    return {"errors": [error], "dependent_outputs": [output],
            "class_type": graph[node_id].get("class_type")}


# --- the plan ---------------------------------------------------------------------------------

Check = Callable[[dict[str, Any]], None]  # the pre-flight: raises GraphRejected


@dataclass(frozen=True)
class Plan:
    """What a posted graph becomes: the graph to run and the errors of the outputs left
    out (``node_errors`` of a 200), or, when nothing can run, ComfyUI's 400 body."""

    graph: dict[str, Any] | None
    node_errors: dict[str, Any] = field(default_factory=dict)
    refusal: dict[str, Any] | None = None


def plan(graph: dict[str, Any], object_info: Mapping[str, Any], targets: Any, check: Check,
         version: Version | None) -> Plan:
    """Choose the outputs that run, as ComfyUI's ``validate_prompt`` does: an unknown class
    anywhere refuses the prompt; then each chosen output runs unless its branch fails."""
    if not object_info:  # no node has answered yet: the prompt waits for one unchecked
        return Plan(graph)
    unknown = next((node_id for node_id, node in graph.items()
                    if node["class_type"] not in object_info), None)
    if unknown is not None:
        return _refused(errors.error_body(errors.unknown_class(
            unknown, graph[unknown]["class_type"], graph, version)))
    outputs = chosen_outputs(graph, errors.output_nodes(graph, object_info), targets)
    if not outputs:
        return _refused(errors.error_body(errors.graph_error("prompt_no_outputs",
                                                             "Prompt has no outputs")))
    node_errors: dict[str, Any] = {}
    for out in outputs:
        _merge(node_errors, dangling_errors(graph, out))
    return _checked(graph, object_info, outputs, node_errors, check)


def _checked(graph: dict[str, Any], object_info: Mapping[str, Any], outputs: list[str],
             node_errors: dict[str, Any], check: Check) -> Plan:
    """Run the pre-flight on what the outputs still standing need; those it fails leave."""
    good = _good(outputs, node_errors)
    for _ in range(2):  # a second pass only confirms the outputs the first left standing
        if not good:
            return _refused(errors.failed_outputs(node_errors, outputs))
        run = prune(graph, good)
        try:
            check(run)
        except GraphRejected as exc:
            found = errors.rejection_body(exc, run, object_info)
            if found["error"]["type"] != "prompt_outputs_failed_validation":
                return _refused(found)
            _merge(node_errors, found["node_errors"])
            good = _good(good, node_errors)
            continue
        return Plan(run, node_errors)
    return _refused(errors.failed_outputs(node_errors, outputs))


def _good(outputs: list[str], node_errors: Mapping[str, Any]) -> list[str]:
    bad = {out for entry in node_errors.values() for out in entry["dependent_outputs"]}
    return [out for out in outputs if out not in bad]


def _merge(into: dict[str, Any], found: Mapping[str, Any]) -> None:
    for node_id, entry in found.items():
        if node_id not in into:
            into[node_id] = {**entry, "dependent_outputs": list(entry["dependent_outputs"])}
            continue
        known = into[node_id]["dependent_outputs"]
        known += [o for o in entry["dependent_outputs"] if o not in known]


def _refused(body: dict[str, Any]) -> Plan:
    return Plan(None, dict(body.get("node_errors") or {}), body)
