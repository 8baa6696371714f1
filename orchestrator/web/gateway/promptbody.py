"""What a ``POST /prompt`` body asks for, read as ComfyUI reads it (pure).

The prompt id a client chose (ComfyUI's rule for the release the gateway speaks as), the
queue ``number``, the ``extra_data`` kept for ``/history`` and the strings that may name
uploaded files; and the pre-flight by ComfyUI's own rules. Everything here decides before
anything is recorded.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from orchestrator.service import Orchestrator, is_canonical_uuid, is_link
from orchestrator.web.errors import InvalidRequest
from orchestrator.web.gateway import errors, history, targets, versions

# A prompt id becomes our job id and a URL path segment: keep it to safe characters (and
# braces, for the ``{uuid}`` spelling older releases take).
PROMPT_ID_RE = re.compile(r"[A-Za-z0-9{][A-Za-z0-9_.:{}-]{0,127}")
# Keys ComfyUI keeps out of history (API keys for Comfy's paid API nodes); they still go
# to the node with the prompt.
SENSITIVE_EXTRA_DATA = frozenset({"auth_token_comfy_org", "api_key_comfy_org"})
# Characters of extra_data kept for /history (the front end puts whole UI workflows there).
EXTRA_DATA_MAX_CHARS = 1_000_000
# Pool priority of a prompt that jumps ComfyUI's queue: above the default 0 of every face,
# so it runs before the prompts queued before it.
FRONT_PRIORITY = 1


def well_formed(job_id: Any) -> bool:
    return isinstance(job_id, str) and (is_canonical_uuid(job_id)
                                        or PROMPT_ID_RE.fullmatch(job_id) is not None)


def preflight(orch: Orchestrator, files: dict[str, str],
              waive: frozenset[str] = frozenset()) -> targets.Check:
    """ComfyUI's own validation rules and nothing stricter (``check_as_comfyui``): a
    graph ComfyUI takes, the gateway takes (uploaded names stand in for the files staged
    at dispatch). Problems of a type in ``waive`` are left to the node to judge."""
    def check(run: dict[str, Any]) -> None:
        orch.check_as_comfyui(run, files, waive=waive)
    return check


def prompt_id_problem(prompt_id: Any, version: versions.Version | None
                      ) -> dict[str, Any] | None:
    """ComfyUI's error for a client's ``prompt_id``, or None when the id is usable.

    From 0.26 ComfyUI takes only a canonical lowercase UUID (``invalid_prompt_id``
    otherwise); older releases take any value as text, of which we keep ids that are safe
    as a job id and a path segment.
    """
    if prompt_id is None:
        return None
    if versions.has(version, versions.UUID_PROMPT_IDS):
        return None if is_canonical_uuid(prompt_id) else dict(errors.INVALID_PROMPT_ID)
    if not PROMPT_ID_RE.fullmatch(str(prompt_id)):
        return errors.graph_error("invalid_prompt", "prompt_id may hold letters, digits, "
                                  "'_', '.', ':' and '-' (at most 128)", str(prompt_id))
    return None


def chosen_prompt_id(prompt_id: Any) -> str:
    return str(uuid.uuid4()) if prompt_id is None else str(prompt_id)


def queue_place(body: dict[str, Any], counter: Callable[[], int]) -> tuple[int | float, int]:
    """ComfyUI's queue ``number`` for the prompt and the pool priority that gives it the
    same turn.

    The number is the client's ``number``, else the counter (negative for ``front``, as
    ComfyUI does to jump its queue). ComfyUI runs the lowest number first; the pool runs
    by priority, then age, so a prompt that jumps (``front``, or a ``number`` below the
    counter's) gets ``FRONT_PRIORITY`` and is claimed before every earlier prompt still
    waiting. ``"nan"`` and ``"inf"`` are refused: float() takes them, but no queue can
    order them and no JSON answer can carry them.
    """
    if "number" not in body:
        number = counter()
        return (-number, FRONT_PRIORITY) if body.get("front") else (number, 0)
    try:
        chosen = float(body["number"])
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(f"number {body['number']!r} is not a number") from None
    if not math.isfinite(chosen):
        raise InvalidRequest(f"number {body['number']!r} is not a finite number")
    return chosen, FRONT_PRIORITY if chosen < counter() else 0


def extra_metadata(extra: Any, client_id: Any) -> dict[str, str]:
    data = {k: v for k, v in (extra if isinstance(extra, dict) else {}).items()
            if k not in SENSITIVE_EXTRA_DATA}
    if client_id is not None:
        data["client_id"] = client_id
    data["create_time"] = int(time.time() * 1000)
    text = json.dumps(data)
    if len(text) > EXTRA_DATA_MAX_CHARS:
        text = json.dumps({k: data[k] for k in ("client_id", "create_time") if k in data})
    return {history.EXTRA_KEY: text}


def strings(graph: dict[str, Any]) -> Iterator[str]:
    """Every plain string input of the graph: the names it may give uploaded files."""
    for node in graph.values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, str) and not is_link(value):
                yield value
