"""``POST /api/v2/jobs``: parse and check a submit completely, then record the job.

Order matters for the contract: the ``Idempotency-Key`` is claimed first (so a concurrent
duplicate is refused at once), then the body is checked (UI export, shape, metadata),
asset references are resolved, the graph is checked against the pool's ``/object_info``,
the queue bound is applied, and only then is the job recorded. Every refusal on the way
is a definite failure and releases the key.

Inputs a graph names by file (``LoadImage.image = "photo.png"``) or by ``core/ASSET``
reference become files of the job: the orchestrator uploads them to whichever node runs
it (``orchestrator/staging.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator.jobs import Job
from orchestrator.service import Orchestrator
from orchestrator.staging import stage_named_inputs
from orchestrator.web.limits import check_queue
from orchestrator.web.v2.assets import AssetRecord, Assets
from orchestrator.web.v2.errors import InvalidBody, MissingAsset, NotFound, WorkflowFormatUi
from orchestrator.web.v2.idempotency import KeyStore, job_exists
from orchestrator.web.v2.schemas import METADATA_MAX_CHARS, METADATA_MAX_PAIRS, SubmitRequest
from orchestrator.workflow import check_graph_shape, is_link

ASSET_TYPE = "core/ASSET"
RESERVED_FIELDS = ("inputs", "webhook_url")
# Input values longer than this are prompts, not file names: not looked up as assets.
NAME_MAX_CHARS = 255
@dataclass(frozen=True)
class Submitter:
    """What a submit needs: the orchestrator, the owner's assets, keys and the bound."""

    orch: Orchestrator
    assets: Assets
    keys: KeyStore
    max_queued: int
    max_queued_per_owner: int

    def submit(self, owner: str, body: Any, key: str | None) -> Job:
        """Record the job ``body`` asks for; raise a v2 refusal otherwise."""
        job_id = uuid.uuid4().hex
        with self.keys.held(owner, key, job_id, job_exists(self.orch.get)):
            request = parse_request(body)
            graph = check_graph_shape(request.workflow, source="workflow")
            graph, files = resolve_assets(graph, owner, self.assets)
            self.orch.preflight(stage_named_inputs(graph, files), source="workflow")
            check_queue(self.orch.store, owner, 1, max_queued=self.max_queued,
                        max_per_owner=self.max_queued_per_owner)
            extra = request.extra_data.model_dump(exclude_none=True) if (
                request.extra_data is not None) else {}
            handle = self.orch.submit(graph=graph, owner=owner, images=files or None,
                                      metadata=request.metadata or {}, job_id=job_id,
                                      extra_data=extra)
            return handle.get()


def parse_request(body: Any) -> SubmitRequest:
    """The submit body, or the refusal the contract names for what is wrong with it."""
    if not isinstance(body, dict):
        raise InvalidBody('the body must be a JSON object {"workflow": {...}}')
    reserved = [name for name in RESERVED_FIELDS if name in body]
    if reserved:
        raise InvalidBody(f"{reserved[0]!r} is reserved and not accepted yet; put input "
                          "values into the workflow itself")
    workflow = body.get("workflow")
    if isinstance(workflow, dict) and "nodes" in workflow and "links" in workflow:
        raise WorkflowFormatUi('the workflow is a ComfyUI UI export (it has "nodes" and '
                               '"links"); export it again in API format (Workflow → Export '
                               "(API)) and submit that")
    unknown = sorted(set(body) - set(SubmitRequest.model_fields))
    if unknown:
        raise InvalidBody(f"unknown field {unknown[0]!r}; a submit carries workflow, "
                          "extra_data and metadata")
    request = _validated(body)
    check_metadata(request.metadata or {})
    return request


def _validated(body: dict[str, Any]) -> SubmitRequest:
    try:
        return SubmitRequest.model_validate(body)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                  for e in exc.errors()]
        first = errors[0]
        code = "metadata_invalid" if first["field"].startswith("metadata") else "invalid_request"
        raise InvalidBody(f"{first['field']}: {first['message']}", code=code,
                          details={"errors": errors}) from None


def check_metadata(labels: Mapping[str, str]) -> None:
    """Refuse labels over the limits with ``metadata_invalid``, naming the key at fault."""
    if len(labels) > METADATA_MAX_PAIRS:
        raise InvalidBody(f"metadata has {len(labels)} pairs; at most {METADATA_MAX_PAIRS}",
                          code="metadata_invalid")
    for key, value in labels.items():
        if not 0 < len(key) <= METADATA_MAX_CHARS or len(value) > METADATA_MAX_CHARS:
            raise InvalidBody(f"metadata key {key[:40]!r}: keys are 1-{METADATA_MAX_CHARS} "
                              f"and values at most {METADATA_MAX_CHARS} characters",
                              code="metadata_invalid")


# --- assets in a graph --------------------------------------------------------------------


def resolve_assets(graph: dict[str, Any], owner: str,
                   assets: Assets) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The graph with ``core/ASSET`` references turned into file names, and the bytes of
    every file the graph names (references, and plain names of the owner's uploads).

    ``MissingAsset`` for a malformed reference or one the owner does not have.
    """
    files: dict[str, AssetRecord] = {}
    resolved: dict[str, Any] = {}
    for node_id, node in graph.items():
        inputs = {}
        for name, value in (node.get("inputs") or {}).items():
            inputs[name] = _resolve_reference(value, owner, assets, files)
        resolved[node_id] = {**node, "inputs": inputs}
    files.update(assets.store.by_file_path(owner, _plain_names(resolved)))
    return resolved, {name: _bytes(assets, rec) for name, rec in files.items()}


def _resolve_reference(value: Any, owner: str, assets: Assets,
                       files: dict[str, AssetRecord]) -> Any:
    if not (isinstance(value, dict) and value.get("__type") == ASSET_TYPE):
        return value
    info = value.get("info")
    asset_id = info.get("id") if isinstance(info, dict) else None
    if not isinstance(asset_id, str) or not asset_id:
        raise MissingAsset('a core/ASSET reference needs "info": {"id": "<asset id>"}')
    try:
        record = assets.get(owner, asset_id)
    except NotFound as exc:
        raise MissingAsset(f"asset {asset_id!r} does not exist or is not yours; upload it "
                           "with POST /api/v2/assets first") from exc
    name = f"asset-{record.id}"
    files[name] = record
    return name


def _plain_names(graph: Mapping[str, Any]) -> set[str]:
    return {value for node in graph.values() for value in (node.get("inputs") or {}).values()
            if isinstance(value, str) and not is_link(value) and 0 < len(value) <= NAME_MAX_CHARS}


def _bytes(assets: Assets, record: AssetRecord) -> bytes:
    return assets.store.blobs.path(record.sha256).read_bytes()
