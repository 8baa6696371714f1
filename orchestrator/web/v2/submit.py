"""``POST /api/v2/jobs``: parse and check a submit completely, then record the job.

Order matters for the contract: the ``Idempotency-Key`` is claimed first (so a concurrent
duplicate is refused at once), then the body is checked (UI export, reserved and unknown
fields, metadata) and asset references become file names; the rest is the façade's one
admission (``Orchestrator.admit``: the graph's shape, pre-flight against the pool's
``/object_info``, the queue bound, then the record). Every refusal on the way is a
definite failure and releases the key.

Inputs a graph names by file (``LoadImage.image = "photo.png"``) or by ``core/ASSET``
reference become files of the job, passed by their stored hash: the orchestrator uploads
them to whichever node runs it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator.admission import Admission, QueueBound
from orchestrator.jobs import Job
from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal
from orchestrator.web.v2.assets import AssetRecord, Assets
from orchestrator.web.v2.errors import InvalidBody, MissingAsset, NotFound, WorkflowFormatUi
from orchestrator.web.v2.idempotency import KeyStore, job_exists
from orchestrator.web.v2.schemas import METADATA_MAX_CHARS, METADATA_MAX_PAIRS, SubmitRequest

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
    bound: QueueBound

    def submit(self, who: Principal, body: Any, key: str | None) -> Job:
        """Record the job ``body`` asks for, as ``who``'s; raise a v2 refusal otherwise."""
        owner = who.owner
        job_id = uuid.uuid4().hex
        with self.keys.held(owner, key, job_id, job_exists(self.orch.get)):
            request = parse_request(body)
            graph, files = resolve_assets(request.workflow, who, self.assets)
            extra = request.extra_data.model_dump(exclude_none=True) if (
                request.extra_data is not None) else {}
            _, job = self.orch.admit_read(Admission(
                graph=graph, inputs=files, owner=owner, metadata=request.metadata or {},
                job_id=job_id, extra_data=extra, bound=self.bound, source="workflow"))
            return job


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


def resolve_assets(graph: dict[str, Any], who: Principal,
                   assets: Assets) -> tuple[dict[str, Any], dict[str, str]]:
    """The graph with ``core/ASSET`` references turned into file names, and the stored
    hash (sha256) of every file the graph names (references, and plain names of the
    caller's uploads).

    ``MissingAsset`` for a malformed reference or one the caller may not read. A node or
    inputs of the wrong shape are left as they are, for admission to refuse by name.
    """
    files: dict[str, AssetRecord] = {}
    resolved: dict[str, Any] = {}
    for node_id, node in graph.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            resolved[node_id] = node
            continue
        resolved[node_id] = {**node, "inputs": {
            name: _resolve_reference(value, who, assets, files)
            for name, value in inputs.items()}}
    files.update(assets.store.by_file_path(who.owner, _plain_names(resolved)))
    return resolved, {name: rec.sha256 for name, rec in files.items()}


def _resolve_reference(value: Any, who: Principal, assets: Assets,
                       files: dict[str, AssetRecord]) -> Any:
    if not (isinstance(value, dict) and value.get("__type") == ASSET_TYPE):
        return value
    info = value.get("info")
    asset_id = info.get("id") if isinstance(info, dict) else None
    if not isinstance(asset_id, str) or not asset_id:
        raise MissingAsset('a core/ASSET reference needs "info": {"id": "<asset id>"}')
    record = _usable(who, assets, asset_id)
    name = f"asset-{record.id}"
    files[name] = record
    return name


def _usable(who: Principal, assets: Assets, asset_id: str) -> AssetRecord:
    """The asset ``who`` may name in a graph: one they may read that is theirs (any for an
    admin). Another's public output reads as a copy without its embedded graph; its
    stored bytes, graph included, never go into the caller's job."""
    try:
        record = assets.get(who, asset_id)
    except NotFound:
        record = None
    if record is None or not (who.admin or record.owner == who.owner):
        raise MissingAsset(f"asset {asset_id!r} does not exist or is not yours; upload it "
                           "with POST /api/v2/assets first")
    return record


def _plain_names(graph: Mapping[str, Any]) -> set[str]:
    return {value for node in graph.values() if isinstance(node, dict)
            and isinstance(node.get("inputs"), dict) for value in node["inputs"].values()
            if isinstance(value, str) and 0 < len(value) <= NAME_MAX_CHARS}
