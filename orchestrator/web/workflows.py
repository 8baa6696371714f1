"""``/v1/workflows``: list (validity and placeholder report), read, upload or replace, delete.

Uploads are parsed and checked exactly as the registry will load them before any file is
written, so a bad upload changes nothing; good ones are written atomically into the
workflows folder and the registry reloads them before the answer, so the next request
already runs the new version. Writes need an admin token.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Response

from orchestrator.errors import ConfigError, WorkflowError, WorkflowNotFound
from orchestrator.registry import GRAPH_SUFFIX, META_SUFFIX, WorkflowRegistry, WorkflowStatus
from orchestrator.validation import check_placeholders
from orchestrator.web.auth import Admin, Caller, Svc
from orchestrator.web.schemas import (
    PlaceholderUse,
    WorkflowDetail,
    WorkflowList,
    WorkflowOut,
    WorkflowPut,
    checked_name,
)
from orchestrator.workflow import Workflow, load_workflow
from placeholders import scan

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])


def _registry(svc_registry: WorkflowRegistry | None) -> WorkflowRegistry:
    if svc_registry is None:
        raise ConfigError("this service has no workflows folder; start it with --workflows DIR")
    return svc_registry


def placeholder_report(workflow: Workflow) -> list[PlaceholderUse]:
    """Each placeholder the graph uses, whether anything declares it, and where it is."""
    unknown = {str(p.received).strip("%") for p in check_placeholders(workflow)}
    sites: dict[str, list[str]] = {}
    for use in scan(workflow.graph):
        sites.setdefault(use.placeholder, []).append(f"{use.site.node_id}.{use.site.input_name}")
    return [PlaceholderUse(name=name, known=name not in unknown, sites=where)
            for name, where in sites.items()]


def _serving(registry: WorkflowRegistry, name: str) -> Workflow | None:
    try:
        return registry.get(name)
    except WorkflowError:
        return None


def _summary(status: WorkflowStatus, workflow: Workflow | None) -> WorkflowOut:
    return WorkflowOut(
        name=status.name, title=status.title, kind=status.kind.value if status.kind else None,
        ok=status.ok, serving=status.serving, error=status.error,
        warnings=list(status.warnings),
        placeholders=placeholder_report(workflow) if workflow else [],
    )


def _detail(registry: WorkflowRegistry, name: str) -> WorkflowDetail:
    status = next((s for s in registry.list() if s.name == name), None)
    if status is None:
        raise WorkflowNotFound(name)
    workflow = _serving(registry, name)
    meta = workflow.meta.model_dump(mode="json", by_alias=True, exclude_defaults=True) if (
        workflow) else None
    return WorkflowDetail(**_summary(status, workflow).model_dump(),
                          description=workflow.meta.description if workflow else "",
                          graph=workflow.graph if workflow else None, meta=meta)


@router.get("", response_model=WorkflowList, summary="Every workflow, loaded or not")
def list_workflows(svc: Svc, who: Caller) -> WorkflowList:
    registry = svc.orch.registry
    if registry is None:
        return WorkflowList(workflows=[])
    return WorkflowList(workflows=[_summary(s, _serving(registry, s.name))
                                   for s in registry.list()])


@router.get("/{name}", response_model=WorkflowDetail, summary="One workflow with its graph")
def get_workflow(name: str, svc: Svc, who: Caller) -> WorkflowDetail:
    checked_name(name, "workflow name")
    return _detail(_registry(svc.orch.registry), name)


@router.put("/{name}", response_model=WorkflowDetail, summary="Upload or replace a workflow",
            responses={201: {"model": WorkflowDetail}})
def put_workflow(name: str, body: WorkflowPut, response: Response, svc: Svc,
                 who: Admin) -> WorkflowDetail:
    """Checked like a dropped file (422 ``invalid_workflow`` listing every problem), then
    stored as ``NAME.json`` (+ ``NAME.meta.json``; none given removes it). 201 when new."""
    checked_name(name, "workflow name")
    registry = _registry(svc.orch.registry)
    graph_text = json.dumps(body.graph, indent=2)
    meta_text = None if body.meta is None else json.dumps(body.meta, indent=2)
    load_workflow(name, graph_text, meta_text, source=Path(name + GRAPH_SUFFIX),
                  meta_source=Path(name + META_SUFFIX))
    existed = (registry.folder / (name + GRAPH_SUFFIX)).exists()
    _write_files(registry.folder, name, graph_text, meta_text)
    registry.reload([name])
    response.status_code = 200 if existed else 201
    return _detail(registry, name)


@router.delete("/{name}", status_code=204, summary="Delete a workflow's files")
def delete_workflow(name: str, svc: Svc, who: Admin) -> Response:
    checked_name(name, "workflow name")
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
