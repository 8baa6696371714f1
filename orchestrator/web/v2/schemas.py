"""Comfy API v2 request and response bodies, field for field as the spec declares them.

The SDK validates strictly: a nullable field must still be present (``None`` is sent as
``null``, never left out), timestamps carry a timezone, and content URLs are absolute.
Optional-but-not-nullable fields (``Asset.created_new``) are left out instead of sent as
null. ``dump`` is the one way a body leaves: by alias (``urls.self``), JSON-typed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

JobStatusName = Literal["queued", "running", "succeeded", "canceling", "canceled", "failed",
                        "expired"]
OutputTypeName = Literal["image", "video", "audio", "text", "file", "latent"]
TERMINAL = frozenset({"succeeded", "canceled", "failed", "expired"})

# Bounds of an asset's retention override (seconds), as the contract states them.
EXPIRES_IN_MIN = 60
EXPIRES_IN_MAX = 604_800
# Labels on a job: the SDK documents the limit of 16 pairs; keys and values stay short.
METADATA_MAX_PAIRS = 16
METADATA_MAX_CHARS = 256


class Progress(BaseModel):
    """A complete progress snapshot: one of these fully re-syncs a client."""

    value: float = Field(ge=0.0, le=1.0)
    nodes_done: int
    nodes_total: int
    current_node: str | None
    current_node_class: str | None
    step: int | None
    steps: int | None
    message: str | None


class Output(BaseModel):
    """A committed output; it is an asset, downloaded from ``url``."""

    node_id: str
    name: str
    type: OutputTypeName
    content_type: str
    size_bytes: int
    id: str
    hash: str | None
    url: str
    url_expires_at: AwareDatetime
    job_id: str | None


class JobErrorInfo(BaseModel):
    """Why a job failed (the spec's ``JobError``; named apart from the exception
    ``orchestrator.errors.JobError``)."""

    code: str
    message: str
    node_id: str | None
    class_type: str | None
    traceback: str | None


class JobUrls(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")
    events: str
    cancel: str


class Job(BaseModel):
    id: str
    status: JobStatusName
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    expires_at: AwareDatetime
    queue_position: int | None
    progress: Progress | None
    outputs: list[Output]
    error: JobErrorInfo | None
    metrics: dict[str, int | None]
    urls: JobUrls
    metadata: dict[str, str]


class JobSummary(BaseModel):
    """One item of ``GET /jobs``: lighter than a ``Job`` (no outputs), with the
    ``create_time``/``update_time`` names the SDK's ``JobSummary`` reads."""

    id: str
    status: JobStatusName
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    create_time: AwareDatetime
    update_time: AwareDatetime
    metadata: dict[str, str]
    urls: JobUrls


class JobPage(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None


class JobWorkflow(BaseModel):
    workflow: dict[str, Any]
    format: Literal["api", "save"]


class Asset(BaseModel):
    id: str
    hash: str | None
    size_bytes: int
    content_type: str
    file_path: str | None
    created_new: bool | None = None  # optional, not nullable: left out when None
    created_at: AwareDatetime
    url: str
    url_expires_at: AwareDatetime
    expires_at: AwareDatetime | None
    job_id: str | None


class StatusEvent(BaseModel):
    status: JobStatusName
    queue_position: int | None


class PreviewEvent(BaseModel):
    node_id: str
    content_type: str
    data_base64: str


class V2Health(BaseModel):
    """``GET /api/v2/health`` (ours; the spec has no health route). Counts only (anyone
    may ask), so node addresses and owners stay out of it."""

    status: Literal["ok", "degraded"]
    nodes_up: int
    nodes_total: int
    queued: int


# --- requests ---------------------------------------------------------------------------


class ExtraData(BaseModel):
    """Closed per the contract: only the partner-node key is accepted."""

    model_config = ConfigDict(extra="forbid")

    api_key_comfy_org: str | None = None


class SubmitRequest(BaseModel):
    """``POST /jobs``; ``inputs`` and ``webhook_url`` are reserved and refused."""

    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any]
    extra_data: ExtraData | None = None
    metadata: dict[str, str] | None = None


class FromHashRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hash: str
    file_path: str | None = None
    tags: list[str] | None = None
    expires_in: int | None = Field(default=None, ge=EXPIRES_IN_MIN, le=EXPIRES_IN_MAX)


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON body of ``model``: aliases applied, unset optional fields left out."""
    data = model.model_dump(mode="json", by_alias=True)
    if isinstance(model, Asset) and model.created_new is None:
        data.pop("created_new")
    return data


def iso(moment: datetime) -> str:
    """An aware timestamp as the JSON text the bodies carry."""
    return moment.isoformat()
