"""Which ComfyUI the gateway speaks as: the newest release among the pool's nodes (pure).

ComfyUI's HTTP API grew over its releases: ``/api/jobs`` arrived in 0.16, its cancel
routes and the rule that a client's ``prompt_id`` be a canonical UUID in 0.26. A client
written for one release probes for what it needs and treats a 404 as "not here", so the
gateway answers each route as the release behind it would. A pool may mix releases; the
gateway speaks as its newest healthy node, because every route it serves from our own
store works whatever node a prompt then runs on, and a client that found a newer node
behind the address must find that node's routes. While no node has answered yet, the
gateway speaks as the newest release it knows (``None`` below).
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.service import (
    JOB_CANCEL,
    JOBS_API,
    UUID_PROMPT_IDS,
    Version,
    parse_version,
)

# ``missing_node_type`` errors (0.16.3 has them, 0.3.75 answers ``invalid_prompt``).
MISSING_NODE_TYPE: Version = (0, 16)

__all__ = ["JOBS_API", "JOB_CANCEL", "MISSING_NODE_TYPE", "UUID_PROMPT_IDS", "Version",
           "has", "parse_version", "speaking"]


def speaking(versions: Iterable[str | None]) -> Version | None:
    """The version the gateway answers as: the newest parsable one, None if there is none."""
    parsed = [v for v in (parse_version(text) for text in versions) if v is not None]
    return max(parsed) if parsed else None


def has(version: Version | None, since: Version) -> bool:
    """Whether a ComfyUI of ``version`` (None: the newest) has what arrived in ``since``."""
    return version is None or version >= since
