"""The REST API's answers as the panel reads them: typed, and parsed in one place.

These are the panel's own view of the ``/v1`` contract, not the service's response models:
the panel may talk to a service of another version on another machine, so each model keeps
only the fields the panel shows and ignores the rest (a newer service adds fields freely).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TERMINAL_STATUSES = frozenset({"succeeded", "partially_failed", "failed", "canceled", "expired"})
RETRYABLE_STATUSES = frozenset({"partially_failed", "failed", "canceled"})


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ServiceHealth(_Answer):
    """``GET /v1/health``: whether the service runs, in counts."""

    status: str
    nodes_up: int
    nodes_total: int
    queued: int
    nodes_draining: int = 0  # of those up; a service before it was counted says nothing


class Me(_Answer):
    """Who the token stands for; ``admin`` tokens may change the service."""

    owner: str
    admin: bool = False
    token_id: str = ""
    max_upload_bytes: int | None = None  # None: a service too old to say

    @property
    def upload_mb(self) -> int | None:
        """The upload widgets' limit in whole MB (at least 1), or None: Streamlit's own."""
        return None if self.max_upload_bytes is None else max(1, self.max_upload_bytes // 2**20)


class PlaceholderUse(_Answer):
    """One placeholder a workflow's graph uses; ``known`` when something declares it. The
    rest is its effective declaration, which the Generate form is drawn from."""

    name: str
    known: bool
    sites: list[str] = Field(default_factory=list)
    origin: str = "undeclared"  # built-in, declared, custom, comfyui, undeclared
    type: str = "str"  # str, int, float, bool, image
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: list[Any] = Field(default_factory=list)
    help: str = ""
    label: str = ""


class Presence(_Answer):
    """One row of the presence list: a known placeholder and whether the graph uses it."""

    name: str
    origin: str  # built-in, declared, custom, undeclared
    used: bool
    sites: list[str] = Field(default_factory=list)

    @property
    def mark(self) -> str:
        """✅ used; ▫️ a built-in the graph does not use (most graphs use few); ❌ declared
        in the metadata but not used (likely a mistake); ⚠️ used but undeclared."""
        if self.origin == "undeclared":
            return "⚠️"
        if self.used:
            return "✅"
        return "▫️" if self.origin == "built-in" else "❌"


class WorkflowSummary(_Answer):
    name: str
    title: str
    kind: str | None = None
    ok: bool
    serving: str | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    placeholders: list[PlaceholderUse] = Field(default_factory=list)
    preview_url: str | None = None

    @property
    def label(self) -> str:
        """What a picker shows: the title, then the kind."""
        kind = f" · {self.kind}" if self.kind else ""
        return f"{self.title or self.name}{kind}"


class WorkflowDetail(WorkflowSummary):
    description: str = ""
    graph: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    presence: list[Presence] = Field(default_factory=list)


class Problem(_Answer):
    """One problem of a checked workflow; ``text`` says what and where."""

    text: str
    node_id: str | None = None
    input: str | None = None


class WorkflowCheck(_Answer):
    """The service's report on a workflow it was asked to check (nothing is stored)."""

    name: str
    ok: bool
    problems: list[Problem] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    placeholders: list[PlaceholderUse] = Field(default_factory=list)
    presence: list[Presence] = Field(default_factory=list)
    pool_checked: bool = False
    pool_problems: list[Problem] = Field(default_factory=list)


class ItemError(_Answer):
    code: str
    message: str
    node_id: str | None = None
    class_type: str | None = None


class EarlierAttempt(_Answer):
    node: str
    error: str


class Item(_Answer):
    index: int
    status: str
    seed: int | None = None
    node: str | None = None
    attempts: int = 0
    error: ItemError | None = None
    output_ids: list[str] = Field(default_factory=list)
    queue_position: int | None = None  # queued images ahead of this one; None: not queued
    eta_s: float | None = None  # seconds until expected done while queued; None: unknown
    earlier_attempts: list[EarlierAttempt] = Field(default_factory=list)  # retried tries


class Job(_Answer):
    id: str
    status: str
    workflow: str | None = None
    raw_graph: bool = False
    values: dict[str, Any] = Field(default_factory=dict)
    count: int = 1
    owner: str = ""
    character: str | None = None
    conversation: str | None = None
    visibility: str = "private"
    created_at: datetime
    completed_at: datetime | None = None
    items: list[Item] = Field(default_factory=list)
    output_ids: list[str] = Field(default_factory=list)
    progress: float = 0.0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    @property
    def seeds(self) -> list[int]:
        return [i.seed for i in self.items if i.seed is not None]


class JobPage(_Answer):
    jobs: list[Job]
    next_cursor: str | None = None


class Output(_Answer):
    """One output of a job: a file (``kind`` image, video, audio or file), or a value a
    node reported in its UI result (``kind`` value: ``value`` is its JSON, under ``key``)."""

    id: str
    job_id: str
    index: int
    kind: str
    mime: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds, for audio and video the service could read
    filename: str
    node_id: str = ""
    key: str | None = None  # the node's UI result key (images, audio, text...); None: older
    value: Any = None  # kind value: what the node reported under ``key``; None for files
    seed: int | None = None
    workflow: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    owner: str = ""
    character: str | None = None
    conversation: str | None = None
    visibility: str = "private"
    created_at: datetime


class OutputPage(_Answer):
    outputs: list[Output]
    next_cursor: str | None = None


class Node(_Answer):
    name: str
    url: str | None = None  # shown to admin tokens only
    tags: list[str] = Field(default_factory=list)
    health: str
    draining: bool = False
    in_flight: int = 0
    max_in_flight: int = 1
    classes: int = 0
    models: dict[str, list[str]] = Field(default_factory=dict)
    comfyui_version: str | None = None
    last_error: str | None = None
    last_seen: datetime | None = None


class NodeList(_Answer):
    nodes: list[Node]
    queued: int = 0
