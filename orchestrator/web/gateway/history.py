"""Our jobs as ComfyUI sees prompts: history entries, queue items, output names (pure).

A ComfyUI client keeps the prompt id it got from ``POST /prompt`` and later reads
``/history/{id}`` and ``/queue``, then fetches each file with ``/view``. Our jobs carry the
ComfyUI-only facts the gateway recorded at submit in their metadata (the queue ``number``,
``client_id`` and ``extra_data``), and each output is named ``<output id><ext>`` with an
empty subfolder and type ``output``, so ``/view`` can find it again by name alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, TypeVar

from orchestrator.jobs import ItemStatus, Job, JobStatus
from orchestrator.outputs import OutputKind, OutputRecord

# Job metadata keys the gateway writes at submit.
NUMBER_KEY = "comfyui.number"
CLIENT_KEY = "comfyui.client_id"
EXTRA_KEY = "comfyui.extra_data"

_OUTPUT_NAME = re.compile(r"(?P<id>[0-9a-f]{32})(?P<ext>\.[A-Za-z0-9]{1,10})?")
T = TypeVar("T")
_FAILURE = re.compile(r"failed: (?:(?P<type>[A-Za-z_][\w.]*): )?(?P<text>.*)", re.S)


def ms(moment: datetime | None) -> int:
    """A ComfyUI timestamp: milliseconds since the epoch."""
    return int(moment.timestamp() * 1000) if moment is not None else 0


# --- what the gateway recorded -------------------------------------------------------------


def number_of(job: Job) -> int | float:
    """The prompt's queue ``number``; jobs made elsewhere use their creation time (ms)."""
    raw = job.spec.metadata.get(NUMBER_KEY)
    if raw is None:
        return ms(job.created_at)
    number = float(raw)
    return int(number) if number.is_integer() else number


def extra_data_of(job: Job) -> dict[str, Any]:
    """The ``extra_data`` the client posted, with ComfyUI's ``create_time`` (ms) in it;
    jobs made by another face get their creation time."""
    raw = job.spec.metadata.get(EXTRA_KEY)
    found = json.loads(raw) if raw else {}
    extra = found if isinstance(found, dict) else {}
    extra.setdefault("create_time", ms(job.created_at))
    return extra


def client_id_of(job: Job) -> str | None:
    return job.spec.metadata.get(CLIENT_KEY)


def graph_of(job: Job) -> dict[str, Any]:
    """The graph as the client sent it (a workflow job: as rendered for its first item)."""
    if job.spec.graph is not None:
        return job.spec.graph
    return next((dict(i.graph) for i in job.items if i.graph is not None), {})


def output_node_ids(graph: Mapping[str, Any], output_classes: Iterable[str]) -> list[str]:
    """The graph's output node ids (``outputs_to_execute`` in ComfyUI's queue items)."""
    wanted = set(output_classes)
    return [node_id for node_id, node in graph.items()
            if isinstance(node, dict) and node.get("class_type") in wanted]


# --- output names --------------------------------------------------------------------------


def output_filename(record: OutputRecord) -> str:
    """The name the gateway gives an output: its id plus the node's file extension."""
    return record.id + PurePosixPath(record.filename).suffix


def parse_output_filename(name: str) -> tuple[str, str] | None:
    """``(output id, extension)`` of a gateway output name, or None for any other name."""
    found = _OUTPUT_NAME.fullmatch(name)
    return (found["id"], found["ext"] or "") if found else None


def file_ref(record: OutputRecord) -> dict[str, str]:
    return {"filename": output_filename(record), "subfolder": "", "type": "output"}


def ui_outputs(records: Iterable[OutputRecord]) -> dict[str, dict[str, Any]]:
    """``{node_id: ui_output}`` as ``executed`` and history carry them, from our records
    (oldest first): files under the key the node gave them, values (``text``...) as the
    node reported them."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        ui = found.setdefault(record.node_id, {})
        if record.kind is OutputKind.VALUE:
            ui[record.key or record.filename] = record.value
            continue
        key = record.key or ("audio" if record.kind is OutputKind.AUDIO else "images")
        ui.setdefault(key, []).append(file_ref(record))
        if record.animated or record.kind is OutputKind.VIDEO:
            ui["animated"] = [True]
    return found


# --- queue ---------------------------------------------------------------------------------


def prompt_tuple(job: Job, output_classes: Iterable[str]) -> list[Any]:
    """``[number, prompt_id, graph, extra_data, outputs_to_execute]``."""
    graph = graph_of(job)
    return [number_of(job), job.id, graph, extra_data_of(job),
            output_node_ids(graph, output_classes)]


def is_running(job: Job) -> bool:
    """Whether ComfyUI would list the prompt as running (executing on a node)."""
    return any(i.status in (ItemStatus.RUNNING, ItemStatus.CANCELING) for i in job.items)


def queue_body(jobs: Sequence[Job], output_classes: Iterable[str],
               positions: Mapping[str, int | None] | None = None) -> dict[str, Any]:
    """``GET /queue``: the jobs that are not terminal, split as ComfyUI splits them, the
    pending ones in the order they will run (``run_order``; ``positions``: each job's
    place in the pool's queue, ``Orchestrator.queue_position`` of its first queued item)."""
    classes = list(output_classes)
    places = positions or {}
    live = [j for j in jobs if not j.status.terminal]
    pending = sorted((j for j in live if not is_running(j)),
                     key=lambda j: run_order(j, places.get(j.id)))
    return {"queue_running": [prompt_tuple(j, classes)
                              for j in sorted(live, key=number_of) if is_running(j)],
            "queue_pending": [prompt_tuple(j, classes) for j in pending]}


def run_order(job: Job, position: int | None) -> tuple[float, ...]:
    """Where a pending job runs: prompts already handed to a node (waiting in its own
    queue) first, a higher priority first (it was placed before lower ones there), else
    in the order they went; then the pool's queue in its claim order,
    which ComfyUI's ``number`` does not decide here: by ``position`` where given (fair
    share between owners included), else by priority, then age, the claim order within
    one owner."""
    if any(i.status.on_node for i in job.items):
        sent = [a.started_at.timestamp() for i in job.items if i.status.on_node
                for a in i.attempts[-1:]]
        return 0, -job.spec.priority, min(sent, default=0.0), number_of(job)
    return (1, float("inf") if position is None else position, -job.spec.priority,
            job.created_at.timestamp(), number_of(job))


# --- history -------------------------------------------------------------------------------


def history_entry(job: Job, records: Sequence[OutputRecord], output_classes: Iterable[str],
                  *, ui: Mapping[str, dict[str, Any]] | None = None,
                  cached: Sequence[str] = ()) -> dict[str, Any]:
    """The ``/history`` entry of a terminal job; ``ui`` and ``cached`` as the node that ran
    it reported them (``nodehistory``), else the outputs are made from our records."""
    succeeded = job.status in (JobStatus.SUCCEEDED, JobStatus.PARTIALLY_FAILED)
    outputs = dict(ui) if ui is not None else ui_outputs(records)
    return {
        "prompt": prompt_tuple(job, output_classes),
        "outputs": outputs,
        "status": {"status_str": "success" if succeeded else "error", "completed": succeeded,
                   "messages": status_messages(job, cached)},
        "meta": {node_id: {"node_id": node_id, "display_node": node_id, "parent_node": None,
                           "real_node_id": node_id} for node_id in outputs},
    }


def status_messages(job: Job, cached: Sequence[str] = ()) -> list[list[Any]]:
    """The ``[event, data]`` pairs ComfyUI keeps in ``status.messages``."""
    started = ms(job.started_at or job.created_at)
    messages: list[list[Any]] = []
    if job.started_at is not None:
        messages += [["execution_start", {"prompt_id": job.id, "timestamp": started}],
                     ["execution_cached", {"nodes": list(cached), "prompt_id": job.id,
                                           "timestamp": started}]]
    return messages + [list(end_message(job))]


def end_message(job: Job) -> tuple[str, dict[str, Any]]:
    """The event that ended the prompt: success, error or interrupted."""
    at = ms(job.completed_at)
    if job.status in (JobStatus.SUCCEEDED, JobStatus.PARTIALLY_FAILED):
        return "execution_success", {"prompt_id": job.id, "timestamp": at}
    if job.status is JobStatus.CANCELED:
        return "execution_interrupted", {"prompt_id": job.id, "node_id": None,
                                         "node_type": None, "executed": [], "timestamp": at}
    return "execution_error", {**execution_error_data(job), "timestamp": at}


def execution_error_data(job: Job) -> dict[str, Any]:
    """``execution_error``'s fields from the first failed item."""
    error = next((i.error for i in job.items if i.error is not None), None)
    kind, text = split_failure(error.message if error else "the job failed")
    return {"prompt_id": job.id, "node_id": error.node_id if error else None,
            "node_type": error.class_type if error else None, "executed": [],
            "exception_message": text + "\n", "exception_type": kind,
            "traceback": list(error.traceback or []) if error else [],
            "current_inputs": {}, "current_outputs": []}


def split_failure(message: str) -> tuple[str, str]:
    """``(exception type, exception text)`` from our item error message.

    The store keeps one composed sentence (``node 2 (X) failed: ValueError: bad``); ComfyUI
    clients show the two parts separately.
    """
    found = _FAILURE.search(message)
    if found is None:
        return "", message
    return found["type"] or "", found["text"]


def select_history(entries: Sequence[tuple[str, T]], max_items: int | None,
                   offset: int | None) -> dict[str, T]:
    """ComfyUI's ``get_history`` paging over ``entries`` (oldest first)."""
    start = -1 if offset is None else offset
    if start < 0 and max_items is not None:
        start = len(entries) - max_items
    chosen = list(entries)[max(start, 0):]
    if max_items is not None:
        chosen = chosen[:max(max_items, 0)]
    return dict(chosen)
