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

import re
from collections.abc import Iterable

Version = tuple[int, ...]

# First releases with each route or rule (observed on 0.16.3, 0.26.0 and 0.30.0).
JOBS_API: Version = (0, 16)
JOB_CANCEL: Version = (0, 26)
UUID_PROMPT_IDS: Version = (0, 26)
MISSING_NODE_TYPE: Version = (0, 16)

_NUMBERS = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(text: str | None) -> Version | None:
    """``"0.30.0"`` → ``(0, 30, 0)``; None for anything that does not start with a number
    (``"unknown"``, a development build without a version)."""
    found = _NUMBERS.match((text or "").strip().lstrip("v"))
    if found is None:
        return None
    return tuple(int(part) for part in found.groups() if part is not None)


def speaking(versions: Iterable[str | None]) -> Version | None:
    """The version the gateway answers as: the newest parsable one, None if there is none."""
    parsed = [v for v in (parse_version(text) for text in versions) if v is not None]
    return max(parsed) if parsed else None


def has(version: Version | None, since: Version) -> bool:
    """Whether a ComfyUI of ``version`` (None: the newest) has what arrived in ``since``."""
    return version is None or version >= since
