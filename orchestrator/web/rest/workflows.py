"""``/v1/workflows``: list (validity and placeholder report), read, check, upload or
replace, delete, and each workflow's preview image.

The workflows folder is the core's (``orchestrator/library.py``, through the façade):
uploads are checked exactly as the registry loads them before any file is written, and
the next request already runs the new version. Writes need an admin token; ``POST
.../check`` answers the same checks plus the pool's, writing nothing, for any token. Load
errors and warnings name files by their full server path for admins only.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from orchestrator.service import CheckReport, WorkflowFacts
from orchestrator.web.auth import Admin, Caller, Services, Svc
from orchestrator.web.body import JsonBodyRoute
from orchestrator.web.errors import InvalidRequest
from orchestrator.web.schemas import (
    WorkflowCheck,
    WorkflowCheckRequest,
    WorkflowDetail,
    WorkflowList,
    WorkflowOut,
    WorkflowPut,
    base_url,
    checked_name,
)

router = APIRouter(prefix="/v1/workflows", tags=["workflows"], route_class=JsonBodyRoute)

# Preview images served, by file suffix: the picker shows them in an <img>.
PREVIEW_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp", ".gif": "image/gif"}
_SUMMARY_FIELDS = frozenset(WorkflowOut.model_fields)


def _workflow_name(svc: Services, name: str) -> str:
    """``name`` if it can name a workflow: a safe path segment whose files are its own."""
    checked_name(name, "workflow name")
    problem = svc.orch.workflow_name_problem(name)
    if problem is not None:
        reason, file = problem
        raise InvalidRequest(reason, details={"field": "workflow name", "file": file})
    return name


def _fields(facts: WorkflowFacts, base: str) -> dict[str, Any]:
    fields = asdict(facts)
    preview = fields.pop("has_preview")
    fields["preview_url"] = f"{base}/v1/workflows/{facts.name}/preview" if preview else None
    return fields


def _summary(facts: WorkflowFacts, base: str) -> WorkflowOut:
    return WorkflowOut.model_validate({k: v for k, v in _fields(facts, base).items()
                                       if k in _SUMMARY_FIELDS})


def _detail(facts: WorkflowFacts, base: str) -> WorkflowDetail:
    return WorkflowDetail.model_validate(_fields(facts, base))


@router.get("", response_model=WorkflowList, summary="Every workflow, loaded or not")
def list_workflows(request: Request, svc: Svc, who: Caller) -> WorkflowList:
    base = base_url(request)
    return WorkflowList(workflows=[_summary(f, base) for f in svc.orch.workflows(who)])


@router.get("/{name}", response_model=WorkflowDetail, summary="One workflow with its graph")
def get_workflow(name: str, request: Request, svc: Svc, who: Caller) -> WorkflowDetail:
    return _detail(svc.orch.workflow(who, _workflow_name(svc, name)), base_url(request))


@router.get("/{name}/preview", response_class=FileResponse, summary="A workflow's preview",
            responses={200: {"content": {t: {} for t in sorted(set(PREVIEW_TYPES.values()))}}})
def get_preview(name: str, svc: Svc, who: Caller) -> FileResponse:
    """The image the metadata's ``preview_image`` names; 404 when it names none, or a file
    that is missing, not an image, or outside the workflows folder."""
    path = svc.orch.workflow_preview(_workflow_name(svc, name))
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
    _workflow_name(svc, name)
    graph_text = body.graph if isinstance(body.graph, str) else json.dumps(body.graph)
    meta_text = body.meta if body.meta is None or isinstance(body.meta, str) else json.dumps(
        body.meta)
    report: CheckReport = svc.orch.check_workflow(name, graph_text, meta_text)
    return WorkflowCheck.model_validate(asdict(report))


@router.put("/{name}", response_model=WorkflowDetail, summary="Upload or replace a workflow",
            responses={201: {"model": WorkflowDetail}})
def put_workflow(name: str, body: WorkflowPut, request: Request, response: Response,
                 svc: Svc, who: Admin) -> WorkflowDetail:
    """Checked like a dropped file (422 ``invalid_workflow`` listing every problem), then
    stored as ``NAME.json`` (+ ``NAME.meta.json``; none given removes it). 201 when new."""
    _workflow_name(svc, name)
    graph_text = json.dumps(body.graph, indent=2)
    meta_text = None if body.meta is None else json.dumps(body.meta, indent=2)
    created = svc.orch.put_workflow(name, graph_text, meta_text)
    response.status_code = 201 if created else 200
    return _detail(svc.orch.workflow(who, name), base_url(request))


@router.delete("/{name}", status_code=204, summary="Delete a workflow's files")
def delete_workflow(name: str, svc: Svc, who: Admin) -> Response:
    svc.orch.delete_workflow(_workflow_name(svc, name))
    return Response(status_code=204)
