"""Jobs, their items, and the one table of allowed state changes (pure).

A job is a workflow + values + count. Each image is its own *item*: its own ComfyUI
prompt, its own seed, its own node and attempts. A job's status is derived from its
items' statuses, never stored independently of them, so the two cannot disagree.

State names follow Comfy API v2 (``canceled``, one l), plus ``partially_failed`` for a
multi-image job where some images succeeded and some failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_COUNT = 8  # images per job: the most any product we serve offers in one request
DEFAULT_MAX_ATTEMPTS = 3


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELING = "canceling"
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB


TERMINAL_JOB = frozenset({JobStatus.SUCCEEDED, JobStatus.PARTIALLY_FAILED, JobStatus.FAILED,
                          JobStatus.CANCELED, JobStatus.EXPIRED})


class ItemStatus(StrEnum):
    QUEUED = "queued"            # waiting for a node
    DISPATCHED = "dispatched"    # claimed by a node's worker; prompt may be on the node
    RUNNING = "running"          # the node started executing it
    CANCELING = "canceling"      # cancel asked while on a node
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_ITEM

    @property
    def on_node(self) -> bool:
        return self in (ItemStatus.DISPATCHED, ItemStatus.RUNNING, ItemStatus.CANCELING)


TERMINAL_ITEM = frozenset({ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.CANCELED})

# The one table of item transitions; the store refuses anything else.
ITEM_TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.QUEUED: frozenset({ItemStatus.DISPATCHED, ItemStatus.CANCELED, ItemStatus.FAILED}),
    ItemStatus.DISPATCHED: frozenset({ItemStatus.RUNNING, ItemStatus.QUEUED, ItemStatus.SUCCEEDED,
                                      ItemStatus.FAILED, ItemStatus.CANCELING,
                                      ItemStatus.CANCELED}),
    ItemStatus.RUNNING: frozenset({ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.QUEUED,
                                   ItemStatus.CANCELING, ItemStatus.CANCELED}),
    ItemStatus.CANCELING: frozenset({ItemStatus.CANCELED, ItemStatus.SUCCEEDED,
                                     ItemStatus.FAILED}),
    ItemStatus.SUCCEEDED: frozenset(),
    ItemStatus.FAILED: frozenset(),
    ItemStatus.CANCELED: frozenset(),
}


def can_transition(old: ItemStatus, new: ItemStatus) -> bool:
    return new in ITEM_TRANSITIONS[old]


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobSpec(BaseModel):
    """What a caller asks for. Either ``workflow`` (a registry name) or ``graph`` (raw)."""

    model_config = ConfigDict(frozen=True)

    workflow: str | None = None
    graph: dict[str, Any] | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    count: int = Field(default=1, ge=1, le=MAX_COUNT)
    owner: str = "local"
    character: str | None = None
    conversation: str | None = None
    visibility: Visibility = Visibility.PRIVATE
    priority: int = 0
    # name -> sha256 of an input image already in the blob store
    images: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    # passed to ComfyUI with the prompt (e.g. api_key_comfy_org for its partner nodes)
    extra_data: dict[str, Any] = Field(default_factory=dict)
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=10)


class Attempt(BaseModel):
    """One try of an item on one node, kept for the attempt history."""

    node: str
    prompt_id: str
    started_at: datetime
    ended_at: datetime | None = None
    error: str | None = None


class ItemError(BaseModel):
    code: str
    message: str
    node_id: str | None = None
    class_type: str | None = None
    traceback: list[str] | None = None
    # ComfyUI's own words for an execution_error, kept apart for clients that relay them
    exception_type: str | None = None
    exception_message: str | None = None


class Item(BaseModel):
    """One image of a job: its own prompt on some node."""

    id: str
    job_id: str
    index: int
    status: ItemStatus = ItemStatus.QUEUED
    seed: int | None = None
    node: str | None = None
    prompt_id: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    graph: dict[str, Any] | None = None  # as rendered at dispatch, sent to the node
    error: ItemError | None = None
    output_ids: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None


class JobRequirements(BaseModel):
    """What a node must offer to run a job's items: node classes, and model files as
    (class type, input name, file name).

    Worked out at submit and stored with the job, so choosing a node for an item (inside
    the store's claim) never renders the job's workflow.
    """

    model_config = ConfigDict(frozen=True)

    classes: list[str] = Field(default_factory=list)
    models: list[tuple[str, str, str]] = Field(default_factory=list)


class Job(BaseModel):
    id: str
    spec: JobSpec
    items: list[Item]
    created_at: datetime = Field(default_factory=utcnow)
    cancel_requested: bool = False
    # None for a job stored before requirements were kept; the pool works them out once.
    requirements: JobRequirements | None = Field(default=None, exclude=True)

    @property
    def status(self) -> JobStatus:
        return job_status([i.status for i in self.items], self.cancel_requested)

    @property
    def started_at(self) -> datetime | None:
        times = [i.started_at for i in self.items if i.started_at]
        return min(times) if times else None

    @property
    def completed_at(self) -> datetime | None:
        if not self.status.terminal:
            return None
        times = [i.completed_at for i in self.items if i.completed_at]
        return max(times) if times else self.created_at


def job_status(items: Iterable[ItemStatus], cancel_requested: bool = False) -> JobStatus:
    """A job's status, derived from its items' statuses."""
    states = list(items)
    if not states:
        return JobStatus.FAILED
    if all(s.terminal for s in states):
        return _terminal_status(states)
    if cancel_requested:
        return JobStatus.CANCELING
    if all(s == ItemStatus.QUEUED for s in states):
        return JobStatus.QUEUED
    return JobStatus.RUNNING


def _terminal_status(states: list[ItemStatus]) -> JobStatus:
    ok = sum(s == ItemStatus.SUCCEEDED for s in states)
    failed = sum(s == ItemStatus.FAILED for s in states)
    if ok == len(states):
        return JobStatus.SUCCEEDED
    if ok and (failed or ok < len(states)):
        return JobStatus.PARTIALLY_FAILED if failed else JobStatus.CANCELED
    if failed:
        return JobStatus.FAILED
    return JobStatus.CANCELED
