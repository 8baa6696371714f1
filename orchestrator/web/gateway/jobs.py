"""ComfyUI's ``/api/jobs`` views of our prompts: one job dict per prompt, listed (pure).

Newer ComfyUI (0.16+) lists prompts as jobs: ``{id, status, priority, create_time,
execution_start_time, execution_end_time, outputs_count, preview_output, workflow_id}``
(times in ms, absent fields left out), the detail adding ``outputs``, ``execution_status``
and ``workflow``. ComfyUI derives them from its queue items and history entries; the
gateway derives them the same way from the queue items and history entries it already
builds (``history.py``), so the three views of a prompt never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = (
    "pending", "in_progress", "completed", "failed", "cancelled")
STATUSES = (PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)
SORT_FIELDS = ("created_at", "execution_duration")
_ENDS = ("execution_success", "execution_error", "execution_interrupted")
# Output keys that are flags or values, not output items (ComfyUI counts neither).
_NOT_ITEMS = frozenset({"animated"})
_PREVIEWABLE = frozenset({"images", "video", "audio", "3d", "text"})
_TEXT_PREVIEW_CHARS = 1024


class QueryError(ValueError):
    """A ``/api/jobs`` query ComfyUI refuses; ``str()`` is its ``error`` text."""


@dataclass(frozen=True)
class JobQuery:
    """A parsed ``GET /api/jobs`` query."""

    statuses: tuple[str, ...] = STATUSES
    workflow_id: str | None = None
    sort_by: str = "created_at"
    descending: bool = True
    limit: int | None = None
    offset: int = 0


def parse_query(query: Mapping[str, str]) -> JobQuery:
    """The query as ComfyUI reads it; ``QueryError`` with ComfyUI's words otherwise."""
    sort_by = query.get("sort_by", "created_at").lower()
    order = query.get("sort_order", "desc").lower()
    if sort_by not in SORT_FIELDS:
        raise QueryError("sort_by must be 'created_at' or 'execution_duration'")
    if order not in ("asc", "desc"):
        raise QueryError("sort_order must be 'asc' or 'desc'")
    return JobQuery(statuses=_statuses(query.get("status")),
                    workflow_id=query.get("workflow_id") or None, sort_by=sort_by,
                    descending=order == "desc", limit=_limit(query.get("limit")),
                    offset=_offset(query.get("offset")))


def _statuses(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return STATUSES
    wanted = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise QueryError(f"Invalid status value(s): {', '.join(bad)}. Valid values: "
                         f"{', '.join(STATUSES)}")
    return wanted


def _limit(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise QueryError("limit must be an integer") from None
    if limit <= 0:
        raise QueryError("limit must be a positive integer")
    return limit


def _offset(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        return max(int(raw), 0)
    except ValueError:
        raise QueryError("offset must be an integer") from None


# --- one job ------------------------------------------------------------------------------


def queued_job(item: Sequence[Any], status: str) -> dict[str, Any]:
    """A pending or running prompt from its queue item ``[number, id, graph, extra, outs]``."""
    number, prompt_id, _, extra, _ = item
    return _pruned({"id": prompt_id, "status": status, "priority": number,
                    "create_time": extra.get("create_time"), "outputs_count": 0,
                    "workflow_id": _workflow_id(extra)})


def finished_job(prompt_id: str, entry: Mapping[str, Any], *,
                 detail: bool = False) -> dict[str, Any]:
    """A finished prompt from its ``/history`` entry; ``detail`` adds outputs and workflow."""
    number, _, graph, extra, _ = entry["prompt"]
    status_info = entry.get("status") or {}
    start, end, error, interrupted = _timeline(status_info.get("messages") or [])
    outputs = entry.get("outputs") or {}
    count, preview = outputs_summary(outputs)
    job = _pruned({
        "id": prompt_id, "status": _status(status_info.get("status_str"), interrupted),
        "priority": number, "create_time": extra.get("create_time"),
        "execution_start_time": start, "execution_end_time": end, "execution_error": error,
        "outputs_count": count, "preview_output": preview, "workflow_id": _workflow_id(extra)})
    if detail:
        job |= {"outputs": dict(outputs), "execution_status": status_info,
                "workflow": {"prompt": graph, "extra_data": extra}}
    return job


def _status(status_str: str | None, interrupted: bool) -> str:
    if status_str == "error":
        return CANCELLED if interrupted else FAILED
    return COMPLETED


def _timeline(messages: Sequence[Any]) -> tuple[int | None, int | None, Any, bool]:
    start = end = error = None
    interrupted = False
    for event, data in (m for m in messages if isinstance(m, list | tuple) and len(m) >= 2):
        if not isinstance(data, dict):
            continue
        if event == "execution_start":
            start = data.get("timestamp")
        elif event in _ENDS:
            end = data.get("timestamp")
            error = data if event == "execution_error" else error
            interrupted = interrupted or event == "execution_interrupted"
    return start, end, error, interrupted


def _workflow_id(extra: Mapping[str, Any]) -> Any:
    pnginfo = extra.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    return workflow.get("id") if isinstance(workflow, dict) else None


def _pruned(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if v is not None}


def outputs_summary(outputs: Mapping[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """``(outputs_count, preview_output)``: file items are counted; the preview is the first
    saved visual file, else another visual file, else a text file, else a text value."""
    count = 0
    slots: dict[str, dict[str, Any]] = {}
    for node_id, node in outputs.items():
        for media, items in (node.items() if isinstance(node, dict) else ()):
            if media in _NOT_ITEMS or not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict):
                    count += 1
                    _offer(slots, _file_slot(media, item),
                           {"mediaType": media, **item, "nodeId": node_id})
                elif media == "text" and item is not None:
                    _offer(slots, "text", _text_preview(item, node_id))
    preview = next((slots[s] for s in ("saved", "visual", "text_file", "text") if s in slots),
                   None)
    return count, preview


def _file_slot(media: str, item: Mapping[str, Any]) -> str | None:
    name = str(item.get("filename", "")).lower()
    fmt = str(item.get("format", ""))
    text_file = name.endswith((".txt", ".md", ".json"))
    visual = (media in _PREVIEWABLE or fmt.startswith(("video/", "audio/"))
              or name.endswith((".obj", ".fbx", ".gltf", ".glb", ".usdz")))
    if media == "text" or text_file:
        return "text_file"
    if not visual:
        return None
    return "saved" if item.get("type") == "output" else "visual"


def _offer(slots: dict[str, dict[str, Any]], slot: str | None, preview: dict[str, Any]) -> None:
    if slot is not None:
        slots.setdefault(slot, preview)


def _text_preview(item: Any, node_id: str) -> dict[str, Any]:
    text = str(item[0] if isinstance(item, list | tuple) and item else item)
    found: dict[str, Any] = {"content": text[:_TEXT_PREVIEW_CHARS]}
    if len(text) > _TEXT_PREVIEW_CHARS:
        found["truncated"] = True
    return {**found, "nodeId": node_id, "mediaType": "text"}


# --- the list -----------------------------------------------------------------------------


def select(jobs: Sequence[dict[str, Any]], query: JobQuery) -> dict[str, Any]:
    """``GET /api/jobs``'s answer: ``jobs`` filtered, sorted and paged, with ``pagination``."""
    chosen = [j for j in jobs if j["status"] in query.statuses
              and (query.workflow_id is None or j.get("workflow_id") == query.workflow_id)]
    chosen.sort(key=_duration if query.sort_by == "execution_duration" else _created,
                reverse=query.descending)
    page = chosen[query.offset:]
    if query.limit is not None:
        page = page[:query.limit]
    return {"jobs": page, "pagination": {
        "offset": query.offset, "limit": query.limit, "total": len(chosen),
        "has_more": query.offset + len(page) < len(chosen)}}


def _created(job: Mapping[str, Any]) -> int:
    return int(job.get("create_time") or 0)


def _duration(job: Mapping[str, Any]) -> int:
    start, end = job.get("execution_start_time"), job.get("execution_end_time")
    return int(end - start) if start and end else 0
