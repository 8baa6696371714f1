"""Request and response bodies of the REST API, and the parse functions for what arrives.

Requests are parsed here into typed models (a malformed one raises ``InvalidRequest``
naming the field), so routes trust what they get. Responses are built from core objects
by ``*.of(...)`` constructors, so the JSON shape lives in one place. Every timestamp is
timezone-aware (UTC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Self, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.jobs import MAX_COUNT, Item, Job
from orchestrator.nodes import NodeInfo
from orchestrator.outputs import OutputRecord
from orchestrator.web.echo import echoed
from orchestrator.web.errors import InvalidRequest

# Workflow names and output ids: one path segment, never a dot-dot, never hidden.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# Node names default to "host:port", so they may hold a colon.
NODE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
PLACEHOLDER_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
TEXT_MAX = 200  # characters of a character or conversation id
PRIORITY_LIMIT = 100

M = TypeVar("M", bound=BaseModel)


def checked_name(value: str, what: str = "name", pattern: re.Pattern[str] = NAME_RE) -> str:
    """``value`` if it is a safe single path segment, else ``InvalidRequest``."""
    if not pattern.fullmatch(value) or ".." in value:
        raise InvalidRequest(f"{what} {value!r} is not allowed; use letters, digits, '_', '-' "
                             "and '.', start with a letter or digit, no '..', at most 100 "
                             "characters", details={"field": what})
    return value


def base_url(request: Request) -> str:
    """The service's own address as the client reached it, for absolute links."""
    return str(request.base_url).rstrip("/")


def aware(moment: datetime | None) -> datetime | None:
    """``moment`` with a timezone (UTC assumed for a naive one)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def parse_model(model: type[M], data: Any, *, where: str = "body") -> M:
    """``data`` validated into ``model``, or ``InvalidRequest`` naming the bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or where, "message": e["msg"]}
                  for e in exc.errors()]
        first = errors[0]
        raise InvalidRequest(f"{where}: {first['field']}: {first['message']}",
                             details={"errors": errors}) from exc


# --- requests ------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobRequest(_Request):
    """A job: a registered ``workflow`` with ``values``, or a raw API-format ``graph``."""

    workflow: str | None = Field(default=None, description="a workflow name from /v1/workflows")
    graph: dict[str, Any] | None = Field(
        default=None, description="a raw API-format graph instead of a workflow")
    values: dict[str, Any] = Field(default_factory=dict,
                                   description="placeholder values, e.g. prompt, seed, width")
    # Strict: JSON true and "2" are not counts (a form's text is converted in jobs.py).
    count: int = Field(default=1, ge=1, le=MAX_COUNT, strict=True,
                       description="images, each its own seed")
    character: str | None = Field(default=None, max_length=TEXT_MAX)
    conversation: str | None = Field(default=None, max_length=TEXT_MAX)
    visibility: Literal["public", "private"] = "private"
    priority: int = Field(default=0, ge=-PRIORITY_LIMIT, le=PRIORITY_LIMIT, strict=True)
    metadata: dict[str, str] = Field(default_factory=dict, description="labels for filtering")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.workflow is None) == (self.graph is None):
            raise ValueError('give exactly one of "workflow" and "graph"')
        if self.workflow is not None:
            checked_name(self.workflow, "workflow")
        return self


class WorkflowPut(_Request):
    """A workflow to store: its API-format graph and optional metadata (``NAME.meta.json``)."""

    graph: dict[str, Any]
    meta: dict[str, Any] | None = None


class WorkflowCheckRequest(_Request):
    """A workflow to check without storing it; text is read as the file's own text, so a
    JSON mistake is reported with its line and column."""

    graph: dict[str, Any] | str = Field(description="the API-format graph, or its file text")
    meta: dict[str, Any] | str | None = Field(
        default=None, description="NAME.meta.json as an object or as text; null: none")


class NodeRequest(_Request):
    """A ComfyUI server to add to the pool."""

    url: str = Field(description="http(s) address, e.g. http://127.0.0.1:8188")
    name: str = Field(default="", description="defaults to host:port")
    tags: list[str] = Field(default_factory=list)
    max_in_flight: int | None = Field(default=None, ge=1, le=64)


class DrainRequest(_Request):
    draining: bool = Field(default=True, description="false puts the node back to work")


class RegenerateRequest(_Request):
    seed: int | None = Field(default=None, ge=-1, description="null or -1: a new random seed")


# --- responses -----------------------------------------------------------------------------


class ItemErrorOut(BaseModel):
    code: str
    message: str
    node_id: str | None = None
    class_type: str | None = None


class AttemptErrorOut(BaseModel):
    node: str
    error: str


class ItemOut(BaseModel):
    index: int
    status: str
    seed: int | None
    node: str | None
    attempts: int
    error: ItemErrorOut | None
    output_ids: list[str]
    started_at: datetime | None
    completed_at: datetime | None
    queue_position: int | None = Field(
        default=None, description="queued items ahead of this one (priority, then age); "
        "null once it left the queue")
    eta_s: float | None = Field(
        default=None, description="seconds until this queued image is expected to be done, "
        "from the nodes' measured speeds and what is ahead of it; null once it left the "
        "queue or while no node has been measured")
    earlier_attempts: list[AttemptErrorOut] = Field(
        default_factory=list, description="earlier tries on a node that ended without a "
        "result and were retried, with the reason (a node lost, a prompt that stalled)")

    @classmethod
    def of(cls, item: Item, queue_position: int | None = None,
           eta_s: float | None = None) -> ItemOut:
        error = None if item.error is None else ItemErrorOut(
            code=item.error.code, message=item.error.message, node_id=item.error.node_id,
            class_type=item.error.class_type)
        earlier = [AttemptErrorOut(node=a.node, error=a.error) for a in item.attempts
                   if a.error is not None and a.ended_at is not None
                   and (item.error is None or a is not item.attempts[-1])]
        return cls(index=item.index, status=item.status.value, seed=item.seed, node=item.node,
                   attempts=len(item.attempts), error=error, output_ids=list(item.output_ids),
                   started_at=aware(item.started_at), completed_at=aware(item.completed_at),
                   queue_position=queue_position,
                   eta_s=None if eta_s is None else round(eta_s, 1), earlier_attempts=earlier)


class JobOut(BaseModel):
    id: str
    status: str
    workflow: str | None
    raw_graph: bool
    values: dict[str, Any]
    count: int
    owner: str
    character: str | None
    conversation: str | None
    visibility: str
    priority: int
    metadata: dict[str, str]
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    items: list[ItemOut]
    output_ids: list[str]
    progress: float = Field(default=0.0, description="0..1 over all images and their graphs")
    expires_at: datetime | None = Field(
        default=None, description="when the finished job and its outputs may be deleted "
        "(the service's retention); null: kept until deleted")
    url: str
    events_url: str

    @classmethod
    def of(cls, job: Job, base: str, *, progress: float = 0.0,
           positions: Mapping[int, int | None] | None = None,
           expires: datetime | None = None,
           etas: Mapping[int, float | None] | None = None) -> JobOut:
        """``positions`` maps item index to its queue position (absent: not queued), and
        ``etas`` to its expected seconds to done; ``expires`` is when the service's job
        retention may delete it (None: kept until deleted)."""
        spec = job.spec
        positions, etas = positions or {}, etas or {}
        url = f"{base}/v1/jobs/{job.id}"
        return cls(
            id=job.id, status=job.status.value, workflow=spec.workflow,
            raw_graph=spec.graph is not None, values=echoed(spec.values), count=spec.count,
            owner=spec.owner, character=spec.character, conversation=spec.conversation,
            visibility=spec.visibility.value, priority=spec.priority,
            metadata=dict(spec.metadata), created_at=aware(job.created_at) or job.created_at,
            started_at=aware(job.started_at), completed_at=aware(job.completed_at),
            items=[ItemOut.of(i, positions.get(i.index), etas.get(i.index))
                   for i in job.items],
            output_ids=[o for i in job.items for o in i.output_ids], progress=progress,
            expires_at=aware(expires), url=url,
            events_url=f"{url}/events",
        )


class JobPageOut(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None


class OutputOut(BaseModel):
    id: str
    job_id: str
    index: int
    kind: str = Field(description="image, video, audio, file, or value: a non-file key of "
                      "the node's UI result (text, numbers...), its JSON in `value` and "
                      "as the content")
    mime: str
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None
    animated: bool
    duration: float | None
    filename: str
    node_id: str
    key: str | None = Field(
        default=None, description="the key of the node's UI result it came under (images, "
        "gifs, audio, text...); null for outputs recorded before keys were kept")
    value: Any = Field(default=None, description="kind value: the JSON the node reported "
                       "under `key` (ComfyUI's `{\"text\": [\"hello\"]}` gives "
                       "`[\"hello\"]`); null for files")
    seed: int | None
    workflow: str | None
    values: dict[str, Any]
    owner: str
    character: str | None
    conversation: str | None
    visibility: str
    created_at: datetime
    content_url: str
    thumbnail_url: str

    @classmethod
    def of(cls, rec: OutputRecord, base: str) -> OutputOut:
        url = f"{base}/v1/outputs/{rec.id}"
        return cls(
            id=rec.id, job_id=rec.job_id, index=rec.index, kind=rec.kind.value, mime=rec.mime,
            size_bytes=rec.size_bytes, sha256=rec.sha256, width=rec.width, height=rec.height,
            animated=rec.animated, duration=rec.duration, filename=rec.filename,
            node_id=rec.node_id, key=rec.key, value=rec.value, seed=rec.seed,
            workflow=rec.workflow, values=dict(rec.values),
            owner=rec.owner, character=rec.character, conversation=rec.conversation,
            visibility=rec.visibility.value, created_at=aware(rec.created_at) or rec.created_at,
            content_url=f"{url}/content", thumbnail_url=f"{url}/thumbnail",
        )


class OutputPageOut(BaseModel):
    outputs: list[OutputOut]
    next_cursor: str | None


PlaceholderOrigin = Literal["built-in", "declared", "custom", "comfyui", "undeclared"]


class PlaceholderUse(BaseModel):
    """One placeholder a workflow uses: known (declared or built in) or not, where, and the
    effective declaration a form needs (the metadata's fields over the built-in catalog)."""

    name: str
    known: bool
    sites: list[str] = Field(description='"node_id.input" for each use')
    origin: PlaceholderOrigin = Field(
        default="undeclared", description="built-in (catalog), declared (metadata), custom "
        "(a find/replace pair), comfyui (a date token ComfyUI expands) or undeclared")
    type: str = Field(default="str", description="str, int, float, bool or image")
    default: Any = Field(default=None, description="null: a request must give a value")
    min: int | float | None = None
    max: int | float | None = None
    choices: list[Any] = Field(default_factory=list, description="the only values allowed")
    help: str = ""
    label: str = Field(default="", description="short name for forms; empty: use the name")


class PresenceOut(BaseModel):
    """One row of the presence list: a known placeholder and whether the graph uses it."""

    name: str
    origin: PlaceholderOrigin
    used: bool
    sites: list[str]


class WorkflowOut(BaseModel):
    name: str
    title: str
    kind: str | None
    ok: bool = Field(description="the files on disk are the version being served")
    serving: str | None = Field(description="version requests get; null: none ever loaded")
    error: str | None
    warnings: list[str]
    placeholders: list[PlaceholderUse]
    preview_url: str | None = Field(default=None, description="the picker image, if any")


class WorkflowDetail(WorkflowOut):
    description: str
    graph: dict[str, Any] | None
    meta: dict[str, Any] | None
    presence: list[PresenceOut] = Field(
        default_factory=list, description="built-in, declared and custom placeholders, each "
        "used or not, then names the graph uses that nothing declares")


class ProblemOut(BaseModel):
    """One problem of a checked workflow: ``text`` is the whole sentence to show; the other
    fields say where (a file and JSON path or line, or a graph node and input)."""

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


class WorkflowCheck(BaseModel):
    """What saving the workflow would meet, found without writing anything."""

    name: str
    ok: bool = Field(description="PUT would store it: no problem in the files")
    problems: list[ProblemOut] = Field(description="what stops it from being stored")
    warnings: list[str] = Field(description="what does not stop it (unknown placeholders)")
    placeholders: list[PlaceholderUse]
    presence: list[PresenceOut]
    pool_checked: bool = Field(
        description="false while no node has answered: the pool check did not run")
    pool_problems: list[ProblemOut] = Field(
        description="what the pool's nodes would reject (classes, inputs, models, limits); "
        "it may be stored anyway and run once a node can")


class WorkflowList(BaseModel):
    workflows: list[WorkflowOut]


class NodeOut(BaseModel):
    name: str
    url: str | None = Field(description="the node's address; admins only (null otherwise)")
    tags: list[str]
    health: str
    draining: bool
    in_flight: int
    max_in_flight: int
    classes: int = Field(description="node classes the server offers")
    models: dict[str, list[str]] = Field(description='"Class.input" → installed model files')
    comfyui_version: str | None
    last_error: str | None = Field(description="the last failure talking to the node; "
                                   "admins only (null otherwise)")
    last_seen: datetime | None

    @classmethod
    def of(cls, info: NodeInfo, *, admin: bool = True) -> NodeOut:
        """The node as ``admin`` may see it: addresses and errors (which name hosts, ports
        and paths of the operator's network) only for admins."""
        seen = None if info.last_seen is None else datetime.fromtimestamp(info.last_seen, UTC)
        return cls(name=info.name, url=info.url if admin else None, tags=list(info.tags),
                   health=info.health.value, draining=info.draining, in_flight=info.in_flight,
                   max_in_flight=info.max_in_flight, classes=info.classes,
                   models=dict(info.models), comfyui_version=info.comfyui_version,
                   last_error=info.last_error if admin else None, last_seen=seen)


class NodeList(BaseModel):
    nodes: list[NodeOut]
    queued: int = Field(description="items waiting for a node, over the whole pool")


class Me(BaseModel):
    """The caller a token stands for."""

    owner: str
    admin: bool
    token_id: str = Field(description="the token's public id (comfy-orch token list)")
    max_upload_bytes: int = Field(description="the largest input image a request may send")
    max_upload_files: int = Field(description="the most input images one request may send")


class ServiceHealth(BaseModel):
    """Whether the service runs, in counts only (``GET /v1/health``)."""

    status: Literal["ok"] = "ok"
    nodes_up: int
    nodes_total: int
    queued: int
    nodes_draining: int = Field(
        default=0, description="of the nodes up, those draining: they finish what they hold "
                               "and take no new work")
