"""ComfyUI's ``POST /prompt`` 400 bodies, built from our pre-flight (pure).

ComfyUI clients read a rejected prompt from ``{"error": {type, message, details, extra_info},
"node_errors": {id: {"errors": [...], "dependent_outputs": [...], "class_type"}}}`` and
show ``node_errors`` next to the nodes (the ComfyUI front end outlines them in red). So a
graph our pre-flight rejects must come back in exactly that shape, with ComfyUI's own error
types, messages and details (see ``execution.validate_prompt`` / ``validate_inputs``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.errors import GraphRejected, InputProblem
from orchestrator.service import is_link
from orchestrator.web.gateway.versions import MISSING_NODE_TYPE, Version, has

# ComfyUI elides combo lists longer than this in value_not_in_list errors.
COMBO_LIST_LIMIT = 20
NO_PROMPT = {"type": "no_prompt", "message": "No prompt provided",
             "details": "No prompt provided", "extra_info": {}}
INVALID_PROMPT_ID = {
    "type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID",
    "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit "
               "it to let the server generate one", "extra_info": {}}


def error_body(error: Mapping[str, Any], node_errors: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
    """The whole 400 body: one graph-level error plus the per-node errors."""
    return {"error": dict(error), "node_errors": dict(node_errors or {})}


def graph_error(kind: str, message: str, details: str = "") -> dict[str, Any]:
    """A graph-level error (``invalid_prompt``, ``prompt_no_outputs``...)."""
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def shape_error(prompt: Any, version: Version | None = None) -> dict[str, Any] | None:
    """The error ComfyUI (of ``version``; None: the newest) answers for a prompt that is
    not a graph of nodes, or None.

    ComfyUI checks ``class_type`` first, node by node, and reports the first node without
    one (a link to a node that is not in the graph fails only its outputs: ``targets``).
    """
    if not isinstance(prompt, dict):
        return graph_error("invalid_prompt", "Cannot execute because the prompt is not an "
                           "object of nodes.")
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            return _no_class_type(node_id, node, version)
        if not isinstance(node.get("inputs", {}), dict):
            return graph_error("invalid_prompt", "Cannot execute because a node's inputs are "
                               "not an object.", f"Node ID '#{node_id}'")
    return None


def _no_class_type(node_id: str, node: Any, version: Version | None) -> dict[str, Any]:
    if not has(version, MISSING_NODE_TYPE):
        return graph_error("invalid_prompt", "Cannot execute because a node is missing the "
                           "class_type property.", f"Node ID '#{node_id}'")
    title = _title(node)
    return missing_node_type(f"Node '{title or f'ID #{node_id}'}' has no class_type. The "
                             "workflow may be corrupted or a custom node is missing.",
                             node_id, None, title)


def unknown_class(node_id: str, class_type: str, graph: Mapping[str, Any],
                   version: Version | None) -> dict[str, Any]:
    if not has(version, MISSING_NODE_TYPE):
        return graph_error("invalid_prompt", f"Cannot execute because node {class_type} does "
                           "not exist.", f"Node ID '#{node_id}'")
    title = _title(graph.get(node_id)) or class_type
    return missing_node_type(f"Node '{title}' not found. The custom node may not be "
                             "installed.", node_id, class_type, title)


def _title(node: Any) -> Any:
    meta = node.get("_meta") if isinstance(node, dict) else None
    return meta.get("title") if isinstance(meta, dict) else None


def missing_node_type(message: str, node_id: str, class_type: str | None,
                      title: Any) -> dict[str, Any]:
    """Newer ComfyUI's error for a node without a class, or of a class nobody has."""
    return {"type": "missing_node_type", "message": message, "details": f"Node ID '#{node_id}'",
            "extra_info": {"node_id": node_id, "class_type": class_type, "node_title": title}}


def rejection_body(exc: GraphRejected, graph: Mapping[str, Any],
                   object_info: Mapping[str, Any], version: Version | None = None
                   ) -> dict[str, Any]:
    """ComfyUI's 400 body for a graph our pre-flight rejected.

    Unknown classes and "no output" are graph-level errors with empty ``node_errors``, as
    ComfyUI answers them; everything else is ``prompt_outputs_failed_validation`` with one
    entry per node at fault.
    """
    unknown = next((p for p in _in_graph_order(exc.problems, graph)
                    if p.type == "unknown_class"), None)
    if unknown is not None:
        return error_body(unknown_class(unknown.node_id, unknown.class_type, graph, version))
    if not exc.problems:
        if exc.code == "prompt_no_outputs":
            return error_body(graph_error("prompt_no_outputs", "Prompt has no outputs"))
        return error_body(graph_error("invalid_prompt", exc.reason))
    outputs = output_nodes(graph, object_info)
    return failed_outputs(_node_errors(exc.problems, graph, object_info, outputs), outputs)


def failed_outputs(node_errors: Mapping[str, Any], outputs: list[str]) -> dict[str, Any]:
    """``prompt_outputs_failed_validation``: every output failed; ``details`` has the
    output nodes' own errors, the upstream ones stay per node."""
    return error_body(graph_error("prompt_outputs_failed_validation",
                                  "Prompt outputs failed validation",
                                  _output_details(node_errors, outputs)), node_errors)


def _in_graph_order(problems: list[InputProblem], graph: Mapping[str, Any]
                    ) -> list[InputProblem]:
    order = {node_id: i for i, node_id in enumerate(graph)}
    return sorted(problems, key=lambda p: order.get(p.node_id, len(order)))


def output_nodes(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """Ids of the graph's output nodes (``output_node`` in ``/object_info``), in order."""
    return [node_id for node_id, node in graph.items()
            if isinstance(node, dict)
            and bool((object_info.get(str(node.get("class_type"))) or {}).get("output_node"))]


def _node_errors(problems: list[InputProblem], graph: Mapping[str, Any],
                 object_info: Mapping[str, Any], outputs: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for problem in _in_graph_order(problems, graph):
        entry = found.setdefault(problem.node_id, {
            "errors": [], "dependent_outputs": dependent_outputs(graph, problem.node_id, outputs),
            "class_type": problem.class_type})
        entry["errors"].append(input_error(problem, _input_spec(object_info, problem)))
    return found


def _output_details(node_errors: Mapping[str, Any], outputs: list[str]) -> str:
    # ComfyUI lists only the output nodes' own errors here; upstream ones stay per node.
    lines = [f"{err['message']}: {err['details']}" for node_id in outputs
             for err in (node_errors.get(node_id) or {}).get("errors", ())]
    return "\n".join(lines)


def dependent_outputs(graph: Mapping[str, Any], node_id: str, outputs: list[str]) -> list[str]:
    """The output nodes whose result needs ``node_id`` (itself included)."""
    return [out for out in outputs if node_id in set(upstream(graph, out))]


def upstream(graph: Mapping[str, Any], start: str) -> Iterator[str]:
    """``start`` and every node it needs through links, each once (missing ones skipped)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        yield node_id
        todo += [str(v[0]) for v in node_inputs(graph, node_id).values() if is_link(v)]


def node_inputs(graph: Mapping[str, Any], node_id: str) -> Mapping[str, Any]:
    """A node's ``inputs``, or ``{}`` where the graph gives none a client could mean."""
    node = graph.get(node_id)
    inputs = node.get("inputs") if isinstance(node, dict) else None
    return inputs if isinstance(inputs, dict) else {}


def _input_spec(object_info: Mapping[str, Any], problem: InputProblem) -> Any:
    sections = (object_info.get(problem.class_type) or {}).get("input") or {}
    for section in ("required", "optional"):
        spec = (sections.get(section) or {}).get(problem.input_name or "")
        if spec is not None:
            return spec
    return None


def input_error(problem: InputProblem, spec: Any) -> dict[str, Any]:
    """One entry of ``node_errors[id].errors`` in ComfyUI's words for ``problem.type``."""
    name, value = problem.input_name or "", problem.received
    message, details = _wording(problem.type, name, value, spec)
    extra: dict[str, Any] = {"input_name": name}
    if problem.type != "required_input_missing":
        extra["input_config"] = _config(problem.type, spec)
        extra["received_value"] = value
    return {"type": problem.type or "custom_validation_failed", "message": message,
            "details": details, "extra_info": extra}


def _wording(kind: str, name: str, value: Any, spec: Any) -> tuple[str, str]:
    limits = spec[1] if isinstance(spec, list) and len(spec) > 1 and isinstance(
        spec[1], dict) else {}
    if kind == "required_input_missing":
        return "Required input is missing", name
    if kind == "value_smaller_than_min":
        return f"Value {value} smaller than min of {limits.get('min')}", name
    if kind == "value_bigger_than_max":
        return f"Value {value} bigger than max of {limits.get('max')}", name
    if kind == "value_not_in_list":
        return "Value not in list", f"{name}: '{value}' not in {_list_info(spec)}"
    if kind == "invalid_input_type":
        kind_name = spec[0] if isinstance(spec, list) and spec else "?"
        return f"Failed to convert an input value to a {kind_name} value", f"{name}, {value}"
    if kind == "return_type_mismatch":
        return "Return type mismatch between linked nodes", name
    if kind == "bad_linked_input":
        return "Bad linked input, must be a length-2 list of [node_id, slot_index]", name
    return "Custom validation failed for node", name


def _combo_values(spec: Any) -> list[Any]:
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], list):
        return list(spec[0])
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return list(options.get("options") or [])


def _list_info(spec: Any) -> str:
    values = _combo_values(spec)
    return f"(list of length {len(values)})" if len(values) > COMBO_LIST_LIMIT else str(values)


def _config(kind: str, spec: Any) -> Any:
    if kind == "value_not_in_list" and len(_combo_values(spec)) > COMBO_LIST_LIMIT:
        return None  # ComfyUI does not send back gigantic model lists
    return spec
