"""The one settings object of the service, and where its values come from.

``Settings`` holds every setting with a named default; ``load_settings`` builds it once
from flags (highest), then ``COMFY_ORCH_*`` environment variables, then the defaults.
Only the CLI calls ``load_settings`` (passing ``os.environ``); everything below it takes
a ``Settings`` or explicit keyword arguments and never reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigError
from orchestrator.jobs import MAX_COUNT
from orchestrator.retention import DEFAULT_SWEEP_S
from orchestrator.stall import (
    SOCKET_SILENCE_MAX_S,
    SOCKET_SILENCE_S,
    STALL_CEILING_S,
    STALL_FLOOR_S,
    StallLimits,
)

# --- Network -------------------------------------------------------------------------------
DEFAULT_HOST = "127.0.0.1"  # loopback: exposing the service is an explicit choice
DEFAULT_PORT = 8288  # ComfyUI's 8188 plus 100, so both fit side by side

# --- Paths ---------------------------------------------------------------------------------
DATA_DIR_NAME = "comfy-orchestrator"  # under $XDG_DATA_HOME (default ~/.local/share)
WORKFLOWS_DIR_NAME = "workflows"  # under the data directory unless --workflows names one

# --- Limits --------------------------------------------------------------------------------
# bytes of a JSON request body; SillyTavern sends avatars as base64 inside values (~1-3 MB)
MAX_BODY_BYTES = 8 * 1024 * 1024
# characters of one prompt; the products we serve allow 1,000-2,000, with room for prefixes
MAX_PROMPT_CHARS = 4000
# bytes of one uploaded input image; ComfyUI's own default is 100 MB, photos are far smaller
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# input images in one multipart request; the workflows we know take at most two (avatars)
MAX_UPLOAD_FILES = 4
# requests per minute per token (200 a second), refilled continuously; bursts up to
# RATE_BURST. Reads are cheap and GPU time is bounded by the queue limits below, so this
# only stops a runaway loop: twenty clients of one token (a platform backend has one token
# for all its users) polling every 100 ms send 12,000 a minute. Event streams and
# sockets are never counted.
RATE_PER_MINUTE = 12_000
RATE_BURST = 2_000  # requests a token may send at once: ten seconds of the rate
# queued items (images) the service accepts before answering 429 queue_full
MAX_QUEUED = 10_000
# images one owner may have waiting for a node before its submits get 429 queue_full: a
# tenth of MAX_QUEUED, so one owner's flood cannot fill the queue the others need; still
# over an hour of one GPU's work at ~5 s an image, more than any client waits for
MAX_QUEUED_PER_OWNER = 1_000
# bytes of request bodies (uploads, base64 avatars) per minute per owner: they cost disk
# and the Pillow check; hundreds of 1-3 MB avatars a minute fit, a flood of 88 MB bodies
# does not
UPLOAD_BYTES_PER_MINUTE = 1024 * 1024 * 1024
# bytes an owner may send at once; never less than one largest body (max_multipart_bytes)
UPLOAD_BURST_BYTES = 256 * 1024 * 1024
# items per page of a list; bigger pages make slow responses and big JSON
MAX_PAGE_SIZE = 200

# --- Retention -----------------------------------------------------------------------------
# seconds a finished job (with its outputs) is kept after it was created; None keeps every
# job until it is deleted: outputs are what the products built on us sell, so losing them
# must be an operator's choice (e.g. 2592000 for 30 days)
JOB_RETENTION_S: float | None = None
# seconds between the sweeps that delete expired jobs (when a retention is set)
RETENTION_SWEEP_S = DEFAULT_SWEEP_S

# --- Timeouts ------------------------------------------------------------------------------
# seconds between SSE keep-alive comments; proxies and SDKs drop streams idle for 30-60 s
SSE_KEEPALIVE_S = 15.0

ENV_PREFIX = "COMFY_ORCH_"


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/comfy-orchestrator``, else ``~/.local/share/comfy-orchestrator``."""
    base = environ.get("XDG_DATA_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".local" / "share"
    return root / DATA_DIR_NAME


class Settings(BaseModel):
    """Every setting of the service; build with ``load_settings`` or directly in tests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Network
    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    # Paths
    data_dir: Path = Field(default_factory=lambda: default_data_dir({}))
    workflows_dir: Path | None = None  # None: <data_dir>/workflows, created when missing
    # Job store: None keeps jobs in SQLite in the data dir; a postgresql:// URL shares one
    # queue between several replicas (they share the data dir's blobs too)
    db: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    # Nodes
    nodes: tuple[str, ...] = ()
    # Limits
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024)
    max_prompt_chars: int = Field(default=MAX_PROMPT_CHARS, ge=1)
    max_upload_bytes: int = Field(default=MAX_UPLOAD_BYTES, ge=1024)
    max_upload_files: int = Field(default=MAX_UPLOAD_FILES, ge=1)
    max_count: int = Field(default=MAX_COUNT, ge=1, le=MAX_COUNT)
    rate_per_minute: float = Field(default=RATE_PER_MINUTE, gt=0)
    rate_burst: int = Field(default=RATE_BURST, ge=1)
    max_queued: int = Field(default=MAX_QUEUED, ge=1)
    max_queued_per_owner: int = Field(default=MAX_QUEUED_PER_OWNER, ge=1)
    upload_bytes_per_minute: int = Field(default=UPLOAD_BYTES_PER_MINUTE, ge=1024)
    upload_burst_bytes: int = Field(default=UPLOAD_BURST_BYTES, ge=1024)
    max_page_size: int = Field(default=MAX_PAGE_SIZE, ge=1)
    # Retention
    job_retention_s: float | None = Field(default=JOB_RETENTION_S, gt=0)
    retention_sweep_s: float = Field(default=RETENTION_SWEEP_S, gt=0)
    # Timeouts
    sse_keepalive_s: float = Field(default=SSE_KEEPALIVE_S, gt=0)
    # seconds a running prompt may go without progress before it is moved to another
    # node: four times its measured duration there, within these bounds (stall.py says why)
    stall_floor_s: float = Field(default=STALL_FLOOR_S, gt=0)
    stall_ceiling_s: float = Field(default=STALL_CEILING_S, gt=0)
    # seconds a node's socket may stay silent, with a prompt running there, before it is
    # reconnected: at least the first; three times the longest gap the running work is
    # known to leave between frames when that is longer (slow steps); at most the second
    stall_socket_silence_s: float = Field(default=SOCKET_SILENCE_S, gt=0)
    stall_socket_silence_max_s: float = Field(default=SOCKET_SILENCE_MAX_S, gt=0)

    @property
    def workflows_folder(self) -> Path:
        """The workflows folder in use: the one given, else ``<data_dir>/workflows``."""
        return self.workflows_dir or self.data_dir / WORKFLOWS_DIR_NAME

    @property
    def job_retention(self) -> timedelta | None:
        """How long finished jobs are kept; None: until deleted."""
        return None if self.job_retention_s is None else timedelta(
            seconds=self.job_retention_s)

    @property
    def stall_limits(self) -> StallLimits:
        """The watchdog's limits (a ceiling below its floor is lifted to it)."""
        return StallLimits(
            floor_s=self.stall_floor_s,
            ceiling_s=max(self.stall_ceiling_s, self.stall_floor_s),
            socket_silence_s=self.stall_socket_silence_s,
            socket_silence_max_s=max(self.stall_socket_silence_max_s,
                                     self.stall_socket_silence_s))

    @property
    def max_multipart_bytes(self) -> int:
        """A multipart body may carry every allowed upload plus the ordinary fields."""
        return self.max_upload_bytes * self.max_upload_files + self.max_body_bytes


_LIST_FIELDS = frozenset({"nodes"})


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        values[name] = tuple(u for u in raw.split(",") if u) if name in _LIST_FIELDS else raw
    return values


def load_settings(environ: Mapping[str, str], **flags: Any) -> Settings:
    """Settings from ``flags`` (None means "not given"), then ``environ``, then defaults.

    Raises ``ConfigError`` naming the setting and the value that cannot work.
    """
    values: dict[str, Any] = {"data_dir": default_data_dir(environ)}
    values.update(_from_environ(environ))
    values.update({k: v for k, v in flags.items() if v is not None and v != ()})
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"setting {where} = {first.get('input')!r}: {first['msg']}; "
                          f"fix the flag or {ENV_PREFIX}{where.upper()}") from exc
