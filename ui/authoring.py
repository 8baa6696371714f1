"""Checking a workflow before it is saved, and the placeholder presence list (pure).

A dropped or edited workflow is checked here with the same pure parser the service loads
files with (``orchestrator.workflow.load_workflow``), so the report appears before
anything is sent; saving then goes through ``PUT /v1/workflows/{name}``, whose answer is
the final word (it also knows what the nodes can run). The presence list is SillyTavern's:
each built-in, declared and custom placeholder with ✅ when the graph uses it and ❌ when
not, plus ⚠️ for names the graph uses that nothing declares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import OrchestratorError, WorkflowInvalid
from orchestrator.validation import check_placeholders
from orchestrator.workflow import load_workflow
from placeholders import CATALOG, PlaceholderError, presence, scan
from placeholders.catalog import COMFY_TOKENS

GRAPH_SUFFIX = ".json"
META_SUFFIX = ".meta.json"
# The service's rule for workflow names: one safe path segment.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Presence:
    """One placeholder of the list: where it comes from and whether the graph uses it."""

    name: str
    origin: str  # built-in, declared, custom, undeclared
    used: bool
    sites: tuple[str, ...] = ()

    @property
    def mark(self) -> str:
        if self.origin == "undeclared":
            return "⚠️"
        return "✅" if self.used else "❌"


@dataclass(frozen=True)
class Check:
    """The report on one workflow's texts; ``ok`` means the service should accept it."""

    name: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    presence: list[Presence] = field(default_factory=list)
    graph: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Drop:
    """Files dropped together: a graph and, optionally, its metadata."""

    name: str
    graph_text: str
    meta_text: str | None = None


def split_drop(files: Iterable[tuple[str, str]]) -> Drop:
    """The workflow in dropped ``(file name, text)`` pairs: ``NAME.json`` plus an optional
    ``NAME.meta.json``. Raises ``ValueError`` saying what to drop instead."""
    graphs, metas = {}, {}
    for filename, text in files:
        if filename.endswith(META_SUFFIX):
            metas[filename.removesuffix(META_SUFFIX)] = text
        elif filename.endswith(GRAPH_SUFFIX):
            graphs[filename.removesuffix(GRAPH_SUFFIX)] = text
    if len(graphs) != 1:
        raise ValueError("drop one workflow file NAME.json (API format), optionally with its "
                         f"NAME.meta.json; got {len(graphs)} graph files")
    name, graph_text = next(iter(graphs.items()))
    return Drop(name, graph_text, metas.get(name))


def check_texts(name: str, graph_text: str, meta_text: str | None = None) -> Check:
    """Parse and check a workflow as the service will; every problem is listed."""
    if not NAME_RE.fullmatch(name) or ".." in name:
        return Check(name, problems=[f"the name {name!r} is not allowed: use letters, digits, "
                                     "'_', '-' and '.', starting with a letter or digit"])
    try:
        workflow = load_workflow(name, graph_text, meta_text)
        unknown = check_placeholders(workflow)
    except WorkflowInvalid as exc:
        return Check(name, problems=[str(p) for p in exc.problems])
    except (OrchestratorError, PlaceholderError) as exc:
        return Check(name, problems=[str(exc)])
    meta = None if meta_text is None else json.loads(meta_text)
    return Check(name, warnings=[p.message for p in unknown],
                 presence=presence_list(workflow.graph, meta), graph=workflow.graph, meta=meta)


def presence_list(graph: Mapping[str, Any], meta: Mapping[str, Any] | None) -> list[Presence]:
    """Built-in, then declared, then custom placeholders with ✅/❌, then undeclared uses."""
    meta = meta or {}
    declared = list(meta.get("placeholders") or {})
    customs = [str(p.get("find", "")).strip("%") for p in meta.get("custom_placeholders") or []]
    sites: dict[str, list[str]] = {}
    for use in scan(dict(graph)):
        sites.setdefault(use.placeholder, []).append(f"{use.site.node_id}.{use.site.input_name}")
    listed = presence(dict(graph), customs, declared=declared)
    rows = [Presence(n, _origin(n, customs), used, tuple(sites.get(n, ())))
            for n, used in listed.items()]
    rows += [Presence(n, "undeclared", True, tuple(where))
             for n, where in sites.items() if n not in listed and n not in COMFY_TOKENS]
    return rows


def _origin(name: str, customs: list[str]) -> str:
    if name in customs:
        return "custom"
    return "built-in" if name in CATALOG else "declared"
