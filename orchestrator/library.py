"""The workflows folder as callers see it: list, read, check, put, delete, preview.

A face reads and changes workflows only through here (by way of the façade), so the
folder's files are written in one place: uploads are parsed and checked exactly as the
registry will load them before any file is written, so a bad upload changes nothing;
good ones are written atomically and the registry reloads them before the call returns,
so the next request already runs the new version.

What a workflow offers a form (each placeholder's effective declaration, the presence
list) is worked out here too, from the graph and its metadata alone. Load errors and
warnings name files by their full server path for admins only (``full_paths``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import (
    ConfigError,
    NotFound,
    WorkflowError,
    WorkflowFormatError,
    WorkflowInvalid,
    WorkflowNotFound,
)
from orchestrator.registry import (
    GRAPH_SUFFIX,
    META_SUFFIX,
    WorkflowRegistry,
    WorkflowStatus,
    redact,
    reserved_name_problem,
)
from orchestrator.validation import Problem, check_against_object_info, check_placeholders
from orchestrator.workflow import Workflow, load_workflow
from placeholders import CATALOG, PlaceholderSpec, ValueType, presence, scan
from placeholders.catalog import COMFY_TOKENS

# Preview images served, by file suffix: the picker shows them in an <img>.
PREVIEW_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp", ".gif": "image/gif"}


@dataclass(frozen=True)
class PlaceholderInfo:
    """One placeholder a workflow uses: known or not, where (``"node_id.input"``), and the
    effective declaration a form needs (metadata fields over the built-in catalog)."""

    name: str
    known: bool
    sites: list[str]
    origin: str  # built-in, declared, custom, comfyui or undeclared
    type: str
    default: Any
    min: int | float | None
    max: int | float | None
    choices: list[Any]
    help: str
    label: str


@dataclass(frozen=True)
class Presence:
    """One row of the presence list: a placeholder and whether the graph uses it."""

    name: str
    origin: str
    used: bool
    sites: list[str]


@dataclass(frozen=True)
class ProblemInfo:
    """One problem of a checked workflow: ``text`` is the whole sentence; the other fields
    say where (a file and JSON path or line, or a graph node and input)."""

    text: str
    message: str
    code: str | None = None
    source: str | None = None
    path: str | None = None
    line: int | None = None
    column: int | None = None
    node_id: str | None = None
    class_type: str | None = None
    input: str | None = None


@dataclass(frozen=True)
class WorkflowFacts:
    """A workflow as listed (and, with ``graph``, ``meta`` and ``presence``, as read)."""

    name: str
    title: str
    kind: str | None
    ok: bool
    serving: str | None
    error: str | None
    warnings: list[str]
    placeholders: list[PlaceholderInfo]
    has_preview: bool
    description: str = ""
    graph: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    presence: list[Presence] = field(default_factory=list)


@dataclass(frozen=True)
class CheckReport:
    """What saving a workflow would meet, found without writing anything."""

    name: str
    ok: bool
    problems: list[ProblemInfo]
    warnings: list[str]
    placeholders: list[PlaceholderInfo]
    presence: list[Presence]
    pool_checked: bool
    pool_problems: list[ProblemInfo]


@dataclass(frozen=True)
class Library:
    """The registry's folder, read and written for callers."""

    registry: WorkflowRegistry | None

    def _registry(self) -> WorkflowRegistry:
        if self.registry is None:
            raise ConfigError("this service has no workflows folder; start it with "
                              "--workflows DIR")
        return self.registry

    @staticmethod
    def name_problem(name: str) -> tuple[str, str] | None:
        """Why ``name`` cannot name a workflow (its files would be another's), with the
        graph file it would have; None when it can."""
        problem = reserved_name_problem(name)
        return None if problem is None else (problem, name + GRAPH_SUFFIX)

    def list(self, *, full_paths: bool) -> list[WorkflowFacts]:
        """Every workflow, loaded or not (none without a workflows folder)."""
        if self.registry is None:
            return []
        registry = self.registry
        return [_summary(registry, s, _serving(registry, s.name), full_paths)
                for s in registry.list()]

    def read(self, name: str, *, full_paths: bool) -> WorkflowFacts:
        """One workflow with its graph, metadata and presence list."""
        registry = self._registry()
        status = next((s for s in registry.list() if s.name == name), None)
        if status is None:
            raise WorkflowNotFound(name)
        workflow = _serving(registry, name)
        summary = _summary(registry, status, workflow, full_paths)
        if workflow is None:
            return summary
        meta = workflow.meta.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        return WorkflowFacts(**{**summary.__dict__, "description": workflow.meta.description,
                                "graph": workflow.graph, "meta": meta,
                                "presence": presence_list(workflow)})

    def preview(self, name: str) -> Path:
        """The preview image file; ``NotFound`` when the metadata names none, or a file
        that is missing, not an image, or outside the workflows folder."""
        registry = self._registry()
        workflow = _serving(registry, name)
        if workflow is None:
            raise WorkflowNotFound(name)
        path = preview_file(registry.folder, workflow.meta.preview_image)
        if path is None:
            raise NotFound("preview image of workflow", name)
        return path

    def check(self, name: str, graph_text: str, meta_text: str | None,
              object_info: Mapping[str, Any]) -> CheckReport:
        """Every problem that would stop ``put``, the registry's warnings, the form's
        report, and what ``object_info`` (the pool's; empty: not checked) says."""
        try:
            workflow = _parse(name, graph_text, meta_text)
        except WorkflowFormatError as exc:
            return CheckReport(name=name, ok=False, problems=_format_problems(exc),
                               warnings=[], placeholders=[], presence=[], pool_checked=False,
                               pool_problems=[])
        packs = workflow.meta.node_packs
        pool = check_against_object_info(workflow.graph, dict(object_info),
                                         node_packs=packs) if object_info else []
        return CheckReport(
            name=name, ok=True, problems=[], warnings=_warnings(workflow, self.registry),
            placeholders=placeholder_report(workflow), presence=presence_list(workflow),
            pool_checked=bool(object_info), pool_problems=[_graph_problem(p) for p in pool])

    def put(self, name: str, graph_text: str, meta_text: str | None) -> bool:
        """Store the workflow (no ``meta_text`` removes its metadata) once it loads as a
        dropped file would; True when it is new. ``WorkflowFormatError`` otherwise."""
        registry = self._registry()
        _parse(name, graph_text, meta_text)
        existed = (registry.folder / (name + GRAPH_SUFFIX)).exists()
        _write_files(registry.folder, name, graph_text, meta_text)
        registry.reload([name])
        return not existed

    def delete(self, name: str) -> None:
        """Delete the workflow's files; ``WorkflowNotFound`` when it has none."""
        registry = self._registry()
        graph = registry.folder / (name + GRAPH_SUFFIX)
        if not graph.exists():
            raise WorkflowNotFound(name)
        (registry.folder / (name + META_SUFFIX)).unlink(missing_ok=True)
        graph.unlink(missing_ok=True)
        registry.reload([name])


def _parse(name: str, graph_text: str, meta_text: str | None) -> Workflow:
    return load_workflow(name, graph_text, meta_text, source=Path(name + GRAPH_SUFFIX),
                         meta_source=Path(name + META_SUFFIX))


def _serving(registry: WorkflowRegistry, name: str) -> Workflow | None:
    try:
        return registry.get(name)
    except WorkflowError:
        return None


def _shown(text: str | None, folder: Path, full_paths: bool) -> str | None:
    return text if text is None or full_paths else redact(text, folder)


def _summary(registry: WorkflowRegistry, status: WorkflowStatus, workflow: Workflow | None,
             full_paths: bool) -> WorkflowFacts:
    preview = workflow is not None and preview_file(
        registry.folder, workflow.meta.preview_image) is not None
    return WorkflowFacts(
        name=status.name, title=status.title, kind=status.kind.value if status.kind else None,
        ok=status.ok, serving=status.serving,
        error=_shown(status.error, registry.folder, full_paths),
        warnings=[str(_shown(w, registry.folder, full_paths)) for w in status.warnings],
        placeholders=placeholder_report(workflow) if workflow else [], has_preview=preview)


# --- what a workflow offers a form (pure) ----------------------------------------------------


def _sites(graph: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each placeholder the graph uses, with its ``"node_id.input"`` sites."""
    sites: dict[str, list[str]] = {}
    for use in scan(dict(graph)):
        sites.setdefault(use.placeholder, []).append(f"{use.site.node_id}.{use.site.input_name}")
    return sites


def _customs(workflow: Workflow) -> list[str]:
    return [pair.find.strip("%") for pair in workflow.meta.custom_placeholders]


def _origin(workflow: Workflow, name: str) -> str:
    if name in workflow.meta.placeholders:
        return "declared"
    if name in _customs(workflow):
        return "custom"
    if name in CATALOG:
        return "built-in"
    return "comfyui" if name in COMFY_TOKENS else "undeclared"


def effective_spec(workflow: Workflow, name: str) -> PlaceholderSpec:
    """What the renderer uses for ``name``: the declaration (built-in fields filling the
    gaps), else the built-in spec, else free text."""
    declared = next((spec for spec in workflow.specs if spec.name == name), None)
    return declared or CATALOG.get(name) or PlaceholderSpec(name)


def placeholder_report(workflow: Workflow) -> list[PlaceholderInfo]:
    """Each placeholder the graph uses: whether anything declares it, where it is, and the
    type, default, limits, choices, help and label a form should offer."""
    unknown = {str(p.received).strip("%") for p in check_placeholders(workflow)}
    return [_use(workflow, name, where, known=name not in unknown)
            for name, where in _sites(workflow.graph).items()]


def _use(workflow: Workflow, name: str, sites: list[str], *, known: bool) -> PlaceholderInfo:
    spec = effective_spec(workflow, name)
    decl = workflow.meta.placeholders.get(name)
    return PlaceholderInfo(
        name=name, known=known, sites=sites, origin=_origin(workflow, name),
        type=spec.type.value, default=spec.default, min=spec.minimum, max=spec.maximum,
        choices=list(spec.choices), help=spec.help, label=decl.label if decl else "")


def presence_list(workflow: Workflow) -> list[Presence]:
    """SillyTavern's presence list: built-in, declared and custom names, each used or not;
    then names the graph uses that nothing declares (ComfyUI's date tokens aside)."""
    sites = _sites(workflow.graph)
    listed = presence(workflow.graph, _customs(workflow),
                      declared=list(workflow.meta.placeholders))
    rows = [Presence(name=name, origin=_origin(workflow, name), used=used,
                     sites=sites.get(name, [])) for name, used in listed.items()]
    return rows + [Presence(name=name, origin="undeclared", used=True, sites=where)
                   for name, where in sites.items()
                   if name not in listed and name not in COMFY_TOKENS]


def preview_file(folder: Path, image: str | None) -> Path | None:
    """The preview image file, when the metadata names one that is an image inside
    ``folder`` (after following links); None otherwise."""
    if not image:
        return None
    root = folder.resolve()
    try:
        path = (root / image).resolve()
        inside = path.is_relative_to(root) and path.suffix.lower() in PREVIEW_TYPES
        return path if inside and path.is_file() else None
    except (OSError, ValueError):  # a NUL byte, a name too long, a link loop
        return None


def _format_problems(exc: WorkflowFormatError) -> list[ProblemInfo]:
    found = exc.problems if isinstance(exc, WorkflowInvalid) else (exc,)
    return [ProblemInfo(text=str(p), message=p.reason, source=p.source or None, path=p.path,
                        line=p.line, column=p.column) for p in found]


def _graph_problem(problem: Problem) -> ProblemInfo:
    return ProblemInfo(text=str(problem), message=problem.message, code=str(problem.code),
                       node_id=problem.node_id, class_type=problem.class_type,
                       input=problem.input_name)


def _warnings(workflow: Workflow, registry: WorkflowRegistry | None) -> list[str]:
    warnings = [str(p) for p in check_placeholders(workflow)]
    image = workflow.meta.preview_image
    if registry is not None and image and preview_file(registry.folder, image) is None:
        warnings.append(f"{workflow.name}{META_SUFFIX}: preview image {image!r} is not an "
                        f"image in the workflows folder; copy it there or remove the entry")
    return warnings


def image_placeholders(registry: WorkflowRegistry | None, workflow: str | None) -> set[str]:
    """Names whose values are images: the built-in ones and those the workflow declares."""
    specs = list(CATALOG.values())
    if workflow is not None and registry is not None:
        with contextlib.suppress(WorkflowNotFound):
            specs += registry.get(workflow).specs
    return {spec.name for spec in specs if spec.type == ValueType.IMAGE}


# --- writing ---------------------------------------------------------------------------------


def _write_files(folder: Path, name: str, graph_text: str, meta_text: str | None) -> None:
    # Metadata first: a watcher that reloads between the two writes sees the new metadata
    # with the old graph at worst, which the registry reports and then fixes on the graph.
    meta_path = folder / (name + META_SUFFIX)
    if meta_text is None:
        meta_path.unlink(missing_ok=True)
    else:
        _write_atomic(meta_path, meta_text)
    _write_atomic(folder / (name + GRAPH_SUFFIX), graph_text)


def _write_atomic(target: Path, text: str) -> None:
    # A hidden temporary name: the registry ignores dot files, so it never loads half a file.
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

