"""What one ComfyUI node speaks, detected once when it comes up (pure: no I/O here).

ComfyUI's HTTP API grew over its releases, and a pool may mix them: ``/api/jobs`` arrived
in 0.16, ``POST /api/jobs/{id}/cancel`` and the rule that a client's ``prompt_id`` be a
canonical lowercase UUID in 0.26, ``/api/features`` somewhere in 0.3.x. The client asks
the node what it has (``ComfyClient.detect_features``) instead of assuming one release;
the answers are read here into a ``NodeFeatures``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Version = tuple[int, ...]

# First releases with each route or rule (observed on 0.3.75, 0.16.3 and 0.30.0).
JOBS_API: Version = (0, 16)
JOB_CANCEL: Version = (0, 26)
UUID_PROMPT_IDS: Version = (0, 26)

_NUMBERS = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(text: str | None) -> Version | None:
    """``"0.30.0"`` → ``(0, 30, 0)``; None for text that does not start with a number
    (a development build that reports no version)."""
    found = _NUMBERS.match((text or "").strip().lstrip("v"))
    if found is None:
        return None
    return tuple(int(part) for part in found.groups() if part is not None)


def version_of(system_stats: Mapping[str, Any]) -> str | None:
    """``system.comfyui_version`` of a ``/system_stats`` answer, if it names one."""
    system = system_stats.get("system")
    version = system.get("comfyui_version") if isinstance(system, dict) else None
    return str(version) if version else None


def is_canonical_uuid(text: object) -> bool:
    """The rule ComfyUI 0.26+ applies to a client's ``prompt_id``: a string that is its
    own canonical spelling as a UUID (lowercase, hyphenated, no braces or ``urn:``)."""
    if not isinstance(text, str):
        return False
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


@dataclass(frozen=True)
class NodeFeatures:
    """What one node has, as it answered when it came up.

    ``version`` is ``system.comfyui_version`` as the node reports it; ``jobs_api`` whether
    ``GET /api/jobs/{id}`` exists; ``job_cancel`` whether ``POST /api/jobs/{id}/cancel``
    does; ``flags`` the node's ``/api/features`` answer (empty where the route is missing).
    """

    version: str | None = None
    jobs_api: bool = False
    job_cancel: bool = False
    flags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def uuid_prompt_ids(self) -> bool:
        """Whether the node refuses a ``prompt_id`` that is not a canonical UUID.

        From the version when it reads as one; otherwise from the cancel route, which
        arrived in the same release as the rule.
        """
        parsed = parse_version(self.version)
        return parsed >= UUID_PROMPT_IDS if parsed is not None else self.job_cancel

    def prompt_id_problem(self, prompt_id: object) -> str | None:
        """Why this node would refuse ``prompt_id`` as a client-chosen id, or None."""
        if not isinstance(prompt_id, str) or not prompt_id:
            return "a prompt id must be a non-empty string"
        if self.uuid_prompt_ids and not is_canonical_uuid(prompt_id):
            release = f"ComfyUI {self.version}" if self.version else "this ComfyUI"
            return (f"{release} accepts a client-chosen prompt id only as a canonical "
                    "lowercase UUID (like 3f2b8c1e-9d4a-4e6b-8f1a-2c3d4e5f6a7b); "
                    "send one, or omit the id to let the server choose")
        return None


def features_from(system_stats: Mapping[str, Any], *, flags: Any, jobs_api: bool,
                  job_cancel: bool) -> NodeFeatures:
    """A node's features from its answers: ``/system_stats``, ``/api/features`` (None when
    the node lacks the route) and whether the two job routes answered as ComfyUI's."""
    return NodeFeatures(version=version_of(system_stats), jobs_api=jobs_api,
                        job_cancel=job_cancel,
                        flags=dict(flags) if isinstance(flags, dict) else {})
