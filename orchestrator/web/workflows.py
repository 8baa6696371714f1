"""``/v1/workflows``: list (validity and placeholder report), read, check, upload or
replace, delete, and each workflow's preview image.

Uploads are parsed and checked exactly as the registry will load them before any file is
written, so a bad upload changes nothing; good ones are written atomically into the
workflows folder and the registry reloads them before the answer, so the next request
already runs the new version. Writes need an admin token; ``POST .../check`` answers the
same checks plus the pool's, writing nothing, for any token.

Load errors and warnings name files by their full server path for admins only; other
tokens see them relative to the workflows folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

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
from orchestrator.tokens import Principal
from orchestrator.validation import Problem, check_against_object_info, check_placeholders
from orchestrator.web.auth import Admin, Caller, Svc
from orchestrator.web.body import JsonBodyRoute
from orchestrator.web.errors import InvalidRequest
from orchestrator.web.schemas import (
    PlaceholderOrigin,
    PlaceholderUse,
    PresenceOut,
    ProblemOut,
    WorkflowCheck,
    WorkflowCheckRequest,
    WorkflowDetail,
    WorkflowList,
    WorkflowOut,
    WorkflowPut,
    base_url,
    checked_name,
)
from orchestrator.workflow import Workflow, load_workflow
from placeholders import CATALOG, PlaceholderSpec, presence, scan
from placeholders.catalog import COMFY_TOKENS

router = APIRouter(prefix="/v1/workflows", tags=["workflows"], route_class=JsonBodyRoute)

# Preview images served, by file suffix: the picker shows them in an <img>.
PREVIEW_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp", ".gif": "image/gif"}


def _registry(svc_registry: WorkflowRegistry | None) -> WorkflowRegistry:
    if svc_registry is None:
        raise ConfigError("this service has no workflows folder; start it with --workflows DIR")
    return svc_registry


def _workflow_name(name: str) -> str:
    """``name`` if it can name a workflow: a safe path segment whose files are its own."""
    checked_name(name, "workflow name")
    problem = reserved_name_problem(name)
    if problem is not None:
        raise InvalidRequest(problem, details={"field": "workflow name",
                                               "file": name + GRAPH_SUFFIX})
    return name


def _shown(text: str | None, registry: WorkflowRegistry, who: Principal) -> str | None:
    """``text`` as ``who`` may see it: server paths are for admins."""
    return text if text is None or who.admin else redact(text, registry.folder)


def _sites(graph: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each placeholder the graph uses, with its ``"node_id.input"`` sites."""
    sites: dict[str, list[str]] = {}
    for use in scan(dict(graph)):
        sites.setdefault(use.placeholder, []).append(f"{use.site.node_id}.{use.site.input_name}")
    return sites


def _customs(workflow: Workflow) -> list[str]:
    return [pair.find.strip("%") for pair in workflow.meta.custom_placeholders]


def _origin(workflow: Workflow, name: str) -> PlaceholderOrigin:
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


def placeholder_report(workflow: Workflow) -> list[PlaceholderUse]:
    """Each placeholder the graph uses: whether anything declares it, where it is, and the
    type, default, limits, choices, help and label a form should offer."""
    unknown = {str(p.received).strip("%") for p in check_placeholders(workflow)}
    return [_use(workflow, name, where, known=name not in unknown)
            for name, where in _sites(workflow.graph).items()]


def _use(workflow: Workflow, name: str, sites: list[str], *, known: bool) -> PlaceholderUse:
    spec = effective_spec(workflow, name)
    decl = workflow.meta.placeholders.get(name)
    return PlaceholderUse(
        name=name, known=known, sites=sites, origin=_origin(workflow, name),
        type=spec.type.value, default=spec.default, min=spec.minimum, max=spec.maximum,
        choices=list(spec.choices), help=spec.help, label=decl.label if decl else "")


def presence_list(workflow: Workflow) -> list[PresenceOut]:
    """SillyTavern's presence list: built-in, declared and custom names, each used or not;
    then names the graph uses that nothing declares (ComfyUI's date tokens aside)."""
    sites = _sites(workflow.graph)
    listed = presence(workflow.graph, _customs(workflow), declared=list(workflow.meta.placeholders))
    rows = [PresenceOut(name=name, origin=_origin(workflow, name), used=used,
                        sites=sites.get(name, [])) for name, used in listed.items()]
    return rows + [PresenceOut(name=name, origin="undeclared", used=True, sites=where)
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


def _serving(registry: WorkflowRegistry, name: str) -> Workflow | None:
    try:
        return registry.get(name)
    except WorkflowError:
        return None


def _summary(registry: WorkflowRegistry, status: WorkflowStatus, workflow: Workflow | None,
             base: str, who: Principal) -> WorkflowOut:
    preview = workflow is not None and preview_file(
        registry.folder, workflow.meta.preview_image) is not None
    return WorkflowOut(
        name=status.name, title=status.title, kind=status.kind.value if status.kind else None,
        ok=status.ok, serving=status.serving, error=_shown(status.error, registry, who),
        warnings=[str(_shown(w, registry, who)) for w in status.warnings],
        placeholders=placeholder_report(workflow) if workflow else [],
        preview_url=f"{base}/v1/workflows/{status.name}/preview" if preview else None,
    )


def _detail(registry: WorkflowRegistry, name: str, base: str, who: Principal
            ) -> WorkflowDetail:
    status = next((s for s in registry.list() if s.name == name), None)
    if status is None:
        raise WorkflowNotFound(name)
    workflow = _serving(registry, name)
    meta = workflow.meta.model_dump(mode="json", by_alias=True, exclude_defaults=True) if (
        workflow) else None
    return WorkflowDetail(**_summary(registry, status, workflow, base, who).model_dump(),
                          description=workflow.meta.description if workflow else "",
                          graph=workflow.graph if workflow else None, meta=meta,
                          presence=presence_list(workflow) if workflow else [])


@router.get("", response_model=WorkflowList, summary="Every workflow, loaded or not")
def list_workflows(request: Request, svc: Svc, who: Caller) -> WorkflowList:
    registry = svc.orch.registry
    if registry is None:
        return WorkflowList(workflows=[])
    base = base_url(request)
    return WorkflowList(workflows=[_summary(registry, s, _serving(registry, s.name), base, who)
                                   for s in registry.list()])


@router.get("/{name}", response_model=WorkflowDetail, summary="One workflow with its graph")
def get_workflow(name: str, request: Request, svc: Svc, who: Caller) -> WorkflowDetail:
    _workflow_name(name)
    return _detail(_registry(svc.orch.registry), name, base_url(request), who)


@router.get("/{name}/preview", response_class=FileResponse, summary="A workflow's preview",
            responses={200: {"content": {t: {} for t in sorted(set(PREVIEW_TYPES.values()))}}})
def get_preview(name: str, svc: Svc, who: Caller) -> FileResponse:
    """The image the metadata's ``preview_image`` names; 404 when it names none, or a file
    that is missing, not an image, or outside the workflows folder."""
    _workflow_name(name)
    registry = _registry(svc.orch.registry)
    workflow = _serving(registry, name)
    if workflow is None:
        raise WorkflowNotFound(name)
    path = preview_file(registry.folder, workflow.meta.preview_image)
    if path is None:
        raise NotFound("preview image of workflow", name)
    return FileResponse(path, media_type=PREVIEW_TYPES[path.suffix.lower()])


@router.post("/{name}/check", response_model=WorkflowCheck,
             summary="Check a workflow as an upload would be, plus against the pool; "
                     "writes nothing")
def check_workflow(name: str, body: WorkflowCheckRequest, svc: Svc,
                   who: Caller) -> WorkflowCheck:
    """Every problem that would stop ``PUT`` (each with its file and place), the warnings
    the registry would give, the placeholder report and presence list, and what the
    pool's merged ``/object_info`` says about the graph (while no node has answered,
    ``pool_checked`` is false)."""
    _workflow_name(name)
    graph_text = body.graph if isinstance(body.graph, str) else json.dumps(body.graph)
    meta_text = body.meta if body.meta is None or isinstance(body.meta, str) else json.dumps(
        body.meta)
    try:
        workflow = load_workflow(name, graph_text, meta_text, source=Path(name + GRAPH_SUFFIX),
                                 meta_source=Path(name + META_SUFFIX))
    except WorkflowFormatError as exc:
        return WorkflowCheck(name=name, ok=False, problems=_format_problems(exc), warnings=[],
                             placeholders=[], presence=[], pool_checked=False,
                             pool_problems=[])
    info = svc.orch.object_info()
    packs = workflow.meta.node_packs
    pool = check_against_object_info(workflow.graph, info, node_packs=packs) if info else []
    return WorkflowCheck(
        name=name, ok=True, problems=[], warnings=_warnings(workflow, svc.orch.registry),
        placeholders=placeholder_report(workflow), presence=presence_list(workflow),
        pool_checked=bool(info), pool_problems=[_graph_problem(p) for p in pool])


def _format_problems(exc: WorkflowFormatError) -> list[ProblemOut]:
    found = exc.problems if isinstance(exc, WorkflowInvalid) else (exc,)
    return [ProblemOut(text=str(p), message=p.reason, source=p.source or None, path=p.path,
                       line=p.line, column=p.column) for p in found]


def _graph_problem(problem: Problem) -> ProblemOut:
    return ProblemOut(text=str(problem), message=problem.message, code=str(problem.code),
                      node_id=problem.node_id, class_type=problem.class_type,
                      input=problem.input_name)


def _warnings(workflow: Workflow, registry: WorkflowRegistry | None) -> list[str]:
    warnings = [str(p) for p in check_placeholders(workflow)]
    image = workflow.meta.preview_image
    if registry is not None and image and preview_file(registry.folder, image) is None:
        warnings.append(f"{workflow.name}{META_SUFFIX}: preview image {image!r} is not an "
                        f"image in the workflows folder; copy it there or remove the entry")
    return warnings


@router.put("/{name}", response_model=WorkflowDetail, summary="Upload or replace a workflow",
            responses={201: {"model": WorkflowDetail}})
def put_workflow(name: str, body: WorkflowPut, request: Request, response: Response,
                 svc: Svc, who: Admin) -> WorkflowDetail:
    """Checked like a dropped file (422 ``invalid_workflow`` listing every problem), then
    stored as ``NAME.json`` (+ ``NAME.meta.json``; none given removes it). 201 when new."""
    _workflow_name(name)
    registry = _registry(svc.orch.registry)
    graph_text = json.dumps(body.graph, indent=2)
    meta_text = None if body.meta is None else json.dumps(body.meta, indent=2)
    load_workflow(name, graph_text, meta_text, source=Path(name + GRAPH_SUFFIX),
                  meta_source=Path(name + META_SUFFIX))
    existed = (registry.folder / (name + GRAPH_SUFFIX)).exists()
    _write_files(registry.folder, name, graph_text, meta_text)
    registry.reload([name])
    response.status_code = 200 if existed else 201
    return _detail(registry, name, base_url(request), who)


@router.delete("/{name}", status_code=204, summary="Delete a workflow's files")
def delete_workflow(name: str, svc: Svc, who: Admin) -> Response:
    _workflow_name(name)
    registry = _registry(svc.orch.registry)
    graph = registry.folder / (name + GRAPH_SUFFIX)
    if not graph.exists():
        raise WorkflowNotFound(name)
    (registry.folder / (name + META_SUFFIX)).unlink(missing_ok=True)
    graph.unlink(missing_ok=True)
    registry.reload([name])
    return Response(status_code=204)


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
