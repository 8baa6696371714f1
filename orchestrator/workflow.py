"""Parse a workflow file's text into an API-format graph (pure: no files opened here).

Operators export graphs from ComfyUI. The usual mistakes get a message that says what to
do: a UI-format export instead of API format, a placeholder written without quotes
(``"steps": %steps%``), a JSON syntax error (with line and column), nodes without
``class_type``/``inputs``, links to nodes that do not exist, no output node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import WorkflowFormatError

Graph = dict[str, dict[str, Any]]

# An unquoted placeholder after a colon or in a list: `"steps": %steps%`.
_BARE_PLACEHOLDER = re.compile(r"[:\[,]\s*(%[A-Za-z0-9_]+%)")


def parse_graph_text(text: str, *, source: str = "workflow") -> Graph:
    """Parse JSON text into an API-format graph, or raise ``WorkflowFormatError``."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc, source) from exc
    return check_graph_shape(doc, source=source)


def _json_error(text: str, exc: json.JSONDecodeError, source: str) -> WorkflowFormatError:
    bare = _BARE_PLACEHOLDER.search(text)
    if bare is not None:
        line = text.count("\n", 0, bare.start(1)) + 1
        column = bare.start(1) - (text.rfind("\n", 0, bare.start(1)) + 1) + 1
        token = bare.group(1)
        return WorkflowFormatError(
            f"placeholder {token} is not in quotes; wrap it in quotes (\"{token}\") — "
            "numbers are converted to the right type when the value is filled in",
            source=source, line=line, column=column,
        )
    return WorkflowFormatError(f"not valid JSON: {exc.msg}", source=source,
                               line=exc.lineno, column=exc.colno)


def check_graph_shape(doc: Any, *, source: str = "workflow") -> Graph:
    """Check that ``doc`` is an API-format graph: ``{id: {class_type, inputs}}``."""
    if isinstance(doc, dict) and ("nodes" in doc and "links" in doc):
        raise WorkflowFormatError(
            'is a ComfyUI UI export (it has "nodes" and "links"); export it again in API '
            'format (ComfyUI menu: Workflow → Export (API))', source=source)
    if isinstance(doc, dict) and isinstance(doc.get("prompt"), dict) and "client_id" in doc:
        doc = doc["prompt"]  # a saved POST /prompt body: take the graph inside
    if not isinstance(doc, dict) or not doc:
        raise WorkflowFormatError("an API-format workflow is a non-empty JSON object of nodes "
                                  '{"1": {"class_type": ..., "inputs": {...}}, ...}',
                                  source=source)
    for node_id, node in doc.items():
        _check_node(node_id, node, source)
    _check_links(doc, source)
    return doc


def _check_node(node_id: str, node: Any, source: str) -> None:
    if not isinstance(node, dict):
        raise WorkflowFormatError(f"node {node_id} is {type(node).__name__}, not an object",
                                  source=source, path=f"$.{node_id}")
    if not isinstance(node.get("class_type"), str) or not node["class_type"]:
        raise WorkflowFormatError(f'node {node_id} has no "class_type"; is this an API-format '
                                  "export?", source=source, path=f"$.{node_id}")
    if not isinstance(node.get("inputs", {}), dict):
        raise WorkflowFormatError(f'node {node_id} ({node["class_type"]}): "inputs" must be an '
                                  "object", source=source, path=f"$.{node_id}.inputs")


def _check_links(graph: Mapping[str, Any], source: str) -> None:
    for node_id, node in graph.items():
        for name, value in (node.get("inputs") or {}).items():
            if is_link(value) and str(value[0]) not in graph:
                raise WorkflowFormatError(
                    f"node {node_id} ({node['class_type']}) input {name!r} links to node "
                    f"{value[0]}, which is not in the workflow", source=source,
                    path=f"$.{node_id}.inputs.{name}")


def is_link(value: Any) -> bool:
    """A link is ``["node_id", output_index]``."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int)
            and isinstance(value[1], int) and not isinstance(value[1], bool))
