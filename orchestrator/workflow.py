"""Parse a workflow's texts into a graph and a :class:`Workflow` (pure: no files opened here).

Operators export graphs from ComfyUI. The usual mistakes get a message that says what to
do: a UI-format export instead of API format, a placeholder written without quotes
(``"steps": %steps%``), a JSON syntax error (with line and column), nodes without
``class_type``/``inputs``, links to nodes that do not exist, no output node.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import WorkflowFormatError
from orchestrator.jsondepth import MAX_DEPTH, depth_exceeded
from orchestrator.metadata import WorkflowMeta, parse_metadata, placeholder_specs
from placeholders import PlaceholderSpec, Plan
from placeholders import is_link as is_link  # the tree's one rule, kept importable from here

Graph = dict[str, dict[str, Any]]

# An unquoted placeholder after a colon or in a list: `"steps": %steps%`.
_BARE_PLACEHOLDER = re.compile(r"[:\[,]\s*(%[A-Za-z0-9_]+%)")


def parse_graph_text(text: str, *, source: str = "workflow") -> Graph:
    """Parse JSON text into an API-format graph, or raise ``WorkflowFormatError``."""
    refuse_deep(text, source)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc, source) from exc
    return check_graph_shape(doc, source=source)


def refuse_deep(text: str, source: str) -> None:
    """Raise ``WorkflowFormatError`` (line and column) when ``text`` nests deeper than
    ``jsondepth.MAX_DEPTH``, which would make the parser itself overflow the stack."""
    where = depth_exceeded(text)
    if where is not None:
        raise WorkflowFormatError(
            f"nests arrays and objects deeper than {MAX_DEPTH} levels; an API-format "
            "workflow is about 4 deep, so this is not one", source=source,
            line=where[0], column=where[1])


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


# --- a loaded workflow: graph + metadata --------------------------------------------------

GRAPH_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ComfyUI API-format workflow",
    "description": (
        "What ComfyUI's 'Export (API)' writes: node id → node. Values that change per "
        'request are placeholders written in quotes, even for numbers ("%steps%").'
    ),
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {"$ref": "#/$defs/node"},
    "$defs": {
        "node": {
            "type": "object",
            "required": ["class_type"],
            "properties": {
                "class_type": {"type": "string", "minLength": 1},
                "inputs": {"type": "object",
                           "additionalProperties": {"$ref": "#/$defs/value"}},
                "_meta": {"type": "object", "properties": {"title": {"type": "string"}}},
            },
        },
        "link": {
            "description": "[source node id, output index]",
            "type": "array", "minItems": 2, "maxItems": 2,
            "prefixItems": [{"type": ["string", "integer"]}, {"type": "integer", "minimum": 0}],
        },
        "value": {"description": "a literal, a placeholder such as \"%prompt%\", or a link"},
    },
}


@dataclass(frozen=True)
class Workflow:
    """A registered workflow: its graph (with placeholders), metadata and where it came from.

    ``version`` changes whenever the graph or metadata text changes; use it as an ETag and
    store it with each job so a result can be traced to the exact workflow that made it.
    Treat ``graph`` as read-only: it is shared by every request. ``plan`` is ``graph``
    compiled for rendering, set by ``rendering.compiled`` (the registry does it once per
    version); without it each render compiles the graph itself.
    """

    name: str
    graph: Graph
    meta: WorkflowMeta
    source: Path | None = None
    version: str = ""
    specs: tuple[PlaceholderSpec, ...] = field(default=(), repr=False)
    plan: Plan | None = field(default=None, repr=False, compare=False)

    @property
    def title(self) -> str:
        """The metadata's title, else the name."""
        return self.meta.title or self.name


def load_workflow(
    name: str, graph_text: str, meta_text: str | None = None, *,
    source: Path | None = None, meta_source: Path | None = None,
) -> Workflow:
    """Parse a workflow's graph and (optional) metadata texts into a :class:`Workflow`.

    Raises ``WorkflowFormatError`` naming the graph file (line/column or JSON path), or
    ``WorkflowInvalid`` listing every problem of the metadata file.
    """
    graph = parse_graph_text(graph_text, source=str(source or f"{name}.json"))
    meta_name = str(meta_source or f"{name}.meta.json")
    meta = WorkflowMeta() if meta_text is None else parse_metadata(meta_text, source=meta_name)
    return Workflow(name, graph, meta, source, content_version(graph_text, meta_text),
                    placeholder_specs(meta))


def content_version(graph_text: str, meta_text: str | None) -> str:
    """A short hash of both texts: equal texts, equal version."""
    digest = hashlib.sha256(graph_text.encode())
    digest.update(b"\0" + (meta_text or "").encode())
    return digest.hexdigest()[:16]
