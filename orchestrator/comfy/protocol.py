"""ComfyUI's HTTP bodies: building requests and reading answers (pure: no I/O here).

Every answer from a ComfyUI server passes through one of these parse functions, which
return typed values or raise an orchestrator error naming what was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.errors import GraphRejected, InputProblem, NodeProtocolError, PromptIdRejected

# Keys of a node's ui_output that hold files. `images` also carries animated webp and
# video (then with "animated": [true]); `gifs` is what popular video node packs use.
FILE_OUTPUT_KEYS = ("images", "gifs", "video", "videos", "audio")
# Keys that describe a node's files rather than being outputs of their own: the files'
# records carry them (``OutputRecord.animated``).
FILE_FLAG_KEYS = ("animated",)


@dataclass(frozen=True)
class OutputFile:
    """One file a node produced, addressed the way ``/view`` wants it."""

    node_id: str
    filename: str
    subfolder: str = ""
    type: str = "output"
    kind: str = "images"
    animated: bool = False

    def view_params(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


@dataclass(frozen=True)
class UiValue:
    """One non-file key of a node's UI result (``{"text": ["hello"]}``), as the node sent it."""

    node_id: str
    key: str
    value: Any


@dataclass(frozen=True)
class Submitted:
    """ComfyUI's 200 answer to ``POST /prompt``."""

    prompt_id: str
    number: float
    node_errors: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryEntry:
    """A finished prompt as ``/history/{id}`` reports it."""

    prompt_id: str
    status: str  # "success" | "error" | "" (ComfyUI leaves it empty in a few paths)
    completed: bool
    outputs: tuple[OutputFile, ...]
    error: dict[str, Any] | None = None
    interrupted: bool = False
    values: tuple[UiValue, ...] = ()


@dataclass(frozen=True)
class QueueState:
    running: tuple[str, ...]
    pending: tuple[str, ...]

    def holds(self, prompt_id: str) -> bool:
        return prompt_id in self.running or prompt_id in self.pending


class PromptPhase(StrEnum):
    """Where a prompt is on a node, as one look-up found it."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"        # in history: succeeded, failed or interrupted (see the entry)
    ABSENT = "absent"    # in neither queue nor history (never posted, deleted, or lost)


@dataclass(frozen=True)
class PromptState:
    """One look-up of a prompt: its phase, and its history entry once it is DONE."""

    prompt_id: str
    phase: PromptPhase
    entry: HistoryEntry | None = None

    @property
    def known(self) -> bool:
        return self.phase != PromptPhase.ABSENT


def state_from_reads(prompt_id: str, queue: QueueState,
                     entry: HistoryEntry | None) -> PromptState:
    """A prompt's state from ``/queue`` read first and ``/history/{id}`` read after it.

    The order matters: ComfyUI moves a prompt from "running" to history under one lock,
    so a prompt that ends between the two reads is seen running or in history, never in
    neither. Read the other way round it can be missed by both and look lost.
    """
    if prompt_id in queue.running:
        return PromptState(prompt_id, PromptPhase.RUNNING)
    if prompt_id in queue.pending:
        return PromptState(prompt_id, PromptPhase.PENDING)
    if entry is not None:
        return PromptState(prompt_id, PromptPhase.DONE, entry)
    return PromptState(prompt_id, PromptPhase.ABSENT)


# ``/api/jobs`` statuses (ComfyUI 0.16+) → our phases; the last three come from history.
_JOB_PHASES = {"pending": PromptPhase.PENDING, "in_progress": PromptPhase.RUNNING,
               "completed": PromptPhase.DONE, "failed": PromptPhase.DONE,
               "cancelled": PromptPhase.DONE}


def parse_job(prompt_id: str, status: int, body: Any, *, url: str) -> PromptState:
    """Read ``GET /api/jobs/{id}``: 404 is ABSENT; a finished job carries the same
    ``outputs`` and ``execution_status`` as its history entry.

    ComfyUI answers it from its queue first and its history after, under the same locks
    as above, so a single read never misses a prompt that is ending.
    """
    if status == 404:
        return PromptState(prompt_id, PromptPhase.ABSENT)
    phase = _JOB_PHASES.get(str(body.get("status"))) if isinstance(body, dict) else None
    if status != 200 or phase is None:
        raise NodeProtocolError(url, f"/api/jobs/{prompt_id} answered {status} with "
                                f"{body!r:.200}")
    if phase != PromptPhase.DONE:
        return PromptState(prompt_id, phase)
    record = {"status": body.get("execution_status") or {}, "outputs": body.get("outputs")}
    entry = parse_history(prompt_id, {prompt_id: record}, url=url)
    return PromptState(prompt_id, phase, entry)


def prompt_body(
    graph: Mapping[str, Any],
    *,
    client_id: str,
    prompt_id: str,
    extra_data: Mapping[str, Any] | None = None,
    front: bool = False,
) -> dict[str, Any]:
    """The JSON body of ``POST /prompt``; always carries ``client_id`` (see protocol doc)."""
    body: dict[str, Any] = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
    if extra_data:
        body["extra_data"] = dict(extra_data)
    if front:
        body["front"] = True
    return body


def parse_submit_response(status: int, body: Any, *, url: str,
                          prompt_id: str | None = None) -> Submitted:
    """Read ComfyUI's answer to ``POST /prompt`` (of ``prompt_id``, when we chose one).

    Raises ``GraphRejected`` for a 400 (and for a 200 that still reports node errors:
    ComfyUI runs the valid branch only, which is never what a caller asked for), and
    ``PromptIdRejected`` for 0.26+'s ``invalid_prompt_id``.
    """
    if not isinstance(body, dict):
        raise NodeProtocolError(url, f"POST /prompt answered {status} with {body!r:.200}")
    error = body.get("error")
    if status == 400 and isinstance(error, dict) and error.get("type") == "invalid_prompt_id":
        raise PromptIdRejected(str(error.get("details") or error.get("message") or ""),
                               prompt_id=prompt_id, node_url=url)
    if status == 400 or (status == 200 and body.get("node_errors")):
        raise graph_rejection(body, url=url)
    if status != 200 or "prompt_id" not in body:
        raise NodeProtocolError(url, f"POST /prompt answered {status} with {body!r:.200}")
    return Submitted(str(body["prompt_id"]), float(body.get("number", 0)),
                     dict(body.get("node_errors") or {}))


def graph_rejection(body: Mapping[str, Any], *, url: str = "") -> GraphRejected:
    """Turn a ComfyUI 400 body (``error`` + ``node_errors``) into ``GraphRejected``."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = str(error.get("type") or "invalid_prompt")
    problems = node_error_problems(body.get("node_errors") or {})
    reason = str(error.get("message") or "ComfyUI rejected the graph")
    details = str(error.get("details") or "")
    if not problems and details:
        reason = f"{reason} ({details})"
    return GraphRejected(reason, problems, code=code, node_url=url, raw=dict(body))


def node_error_problems(node_errors: Mapping[str, Any]) -> list[InputProblem]:
    """Flatten ``node_errors`` into one ``InputProblem`` per input error."""
    problems = []
    for node_id, entry in node_errors.items():
        class_type = str(entry.get("class_type", "?"))
        for err in entry.get("errors") or ():
            extra = err.get("extra_info") or {}
            problems.append(
                InputProblem(
                    node_id=str(node_id), class_type=class_type,
                    message=describe_input_error(err),
                    input_name=extra.get("input_name"),
                    type=str(err.get("type", "")), received=extra.get("received_value"),
                )
            )
    return problems


def describe_input_error(err: Mapping[str, Any]) -> str:
    """One readable sentence for one of ComfyUI's per-input validation errors."""
    kind = err.get("type")
    extra = err.get("extra_info") or {}
    val = extra.get("received_value")
    limits = _input_limits(extra.get("input_config"))
    if kind == "value_smaller_than_min" and "min" in limits:
        return f"value {val!r} smaller than min {limits['min']}"
    if kind == "value_bigger_than_max" and "max" in limits:
        return f"value {val!r} bigger than max {limits['max']}"
    if kind == "required_input_missing":
        return "required input is missing"
    if kind == "value_not_in_list":
        return f"value {val!r} is not one of the allowed values ({err.get('details', '')})"
    details = err.get("details")
    message = str(err.get("message") or kind)
    return f"{message[:1].lower()}{message[1:]}" + (f" ({details})" if details else "")


def _input_limits(config: Any) -> dict[str, Any]:
    if isinstance(config, list | tuple) and len(config) > 1 and isinstance(config[1], dict):
        return config[1]
    return {}


def outputs_from_ui(node_outputs: Mapping[str, Any]) -> list[OutputFile]:
    """Every file in a ``{node_id: ui_output}`` map (``executed`` events, history)."""
    files = []
    for node_id, ui in node_outputs.items():
        if not isinstance(ui, dict):
            continue
        animated = any(bool(a) for a in ui.get("animated") or ())
        for key in FILE_OUTPUT_KEYS:
            for item in ui.get(key) or ():
                if isinstance(item, dict) and item.get("filename"):
                    files.append(OutputFile(
                        str(node_id), str(item["filename"]), str(item.get("subfolder") or ""),
                        str(item.get("type") or "output"), key, animated,
                    ))
    return files


def values_from_ui(node_outputs: Mapping[str, Any]) -> list[UiValue]:
    """Every non-file key of a ``{node_id: ui_output}`` map, nodes and keys in the order the
    node reported them; a key holding files (or a file flag) is left to ``outputs_from_ui``."""
    return [UiValue(str(node_id), str(key), value)
            for node_id, ui in node_outputs.items() if isinstance(ui, dict)
            for key, value in ui.items() if not _holds_files(key, value)]


def _holds_files(key: str, value: Any) -> bool:
    if key in FILE_OUTPUT_KEYS or key in FILE_FLAG_KEYS:
        return True
    return isinstance(value, list | tuple) and any(
        isinstance(v, dict) and isinstance(v.get("filename"), str) for v in value)


def parse_history(prompt_id: str, body: Any, *, url: str) -> HistoryEntry | None:
    """Read ``/history/{id}``: None while the prompt is unknown or unfinished."""
    if not isinstance(body, dict):
        raise NodeProtocolError(url, f"/history/{prompt_id} answered {body!r:.200}")
    entry = body.get(prompt_id)
    if not entry:
        return None
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    error = _first_message(messages, "execution_error")
    return HistoryEntry(
        prompt_id=prompt_id,
        status=str(status.get("status_str") or ""),
        completed=bool(status.get("completed")),
        outputs=tuple(outputs_from_ui(entry.get("outputs") or {})),
        error=error,
        interrupted=_first_message(messages, "execution_interrupted") is not None,
        values=tuple(values_from_ui(entry.get("outputs") or {})),
    )


def _first_message(messages: Iterable[Any], kind: str) -> dict[str, Any] | None:
    for item in messages:
        if isinstance(item, list | tuple) and len(item) == 2 and item[0] == kind:
            return dict(item[1])
    return None


def parse_queue(body: Any, *, url: str) -> QueueState:
    """Read ``GET /queue``: prompt ids running and pending."""
    try:
        running = tuple(str(item[1]) for item in body["queue_running"])
        pending = tuple(str(item[1]) for item in body["queue_pending"])
    except (KeyError, TypeError, IndexError) as exc:
        raise NodeProtocolError(url, f"/queue answered {body!r:.200}") from exc
    return QueueState(running, pending)
