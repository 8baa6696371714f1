"""What a finished prompt reported beyond our job state, for a faithful relay.

Our store keeps every key of each output node's UI result: its files and its values
(``text``, numbers...), as output records (kind ``value`` for the values), so ``/history``,
``/api/jobs`` and the closing ``executed`` messages come from them and survive a restart of
the service or the node. The list of nodes the node took from its cache
(``execution_cached``) is read from the node once the prompt has ended (it keeps its last
10,000 prompts in memory); when it has forgotten the prompt, none are told.
``node_result`` maps a node's own history entry to the names our ``/view`` serves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.jobs import Job
from orchestrator.outputs import OutputRecord
from orchestrator.service import Orchestrator
from orchestrator.web.gateway.history import file_ref, ui_outputs

REMEMBERED = 2000  # finished prompts whose node answer is kept (history is polled often)


@dataclass(frozen=True)
class NodeResult:
    """A finished prompt as its node reported it, files renamed to ours."""

    outputs: dict[str, dict[str, Any]]
    cached: tuple[str, ...]


def node_result(entry: Mapping[str, Any], records: Sequence[OutputRecord]) -> NodeResult:
    """``entry`` (a node's ``/history/{id}`` entry) with its files named as we serve them."""
    ours = {(r.node_id, r.filename): r for r in records}
    outputs = {str(node_id): _renamed(str(node_id), ui, ours)
               for node_id, ui in (entry.get("outputs") or {}).items() if isinstance(ui, dict)}
    return NodeResult(outputs, _cached(entry))


def _renamed(node_id: str, ui: Mapping[str, Any],
             ours: Mapping[tuple[str, str], OutputRecord]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in ui.items():
        if not isinstance(value, list) or not any(_is_file(v) for v in value):
            found[key] = value
            continue
        files = [file_ref(ours[(node_id, v["filename"])]) for v in value
                 if _is_file(v) and (node_id, v["filename"]) in ours]
        if files:
            found[key] = files
    return found


def _is_file(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("filename"), str)


def _cached(entry: Mapping[str, Any]) -> tuple[str, ...]:
    status = entry.get("status") or {}
    for message in status.get("messages") or ():
        if isinstance(message, list | tuple) and len(message) == 2 and \
                message[0] == "execution_cached" and isinstance(message[1], dict):
            return tuple(str(n) for n in message[1].get("nodes") or ())
    return ()


class NodeResults:
    """Node answers of finished prompts, fetched once each; thread-safe."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self._lock = threading.Lock()
        self._known: OrderedDict[str, NodeResult] = OrderedDict()

    def of(self, job: Job, records: Sequence[OutputRecord]) -> NodeResult:
        """A terminal ``job``'s outputs from our records (oldest first), every UI key the
        runner recorded, files and values: durable, so the answer survives a restart of
        the service and the node going away. The cached nodes are the node's word while
        it remembers the prompt (none once it has forgotten it)."""
        outputs = ui_outputs(records)
        with self._lock:
            known = self._known.get(job.id)
        if known is not None:
            return NodeResult(outputs, known.cached)
        entry = self._fetch(job)
        if entry is None:
            return NodeResult(outputs, ())  # not written yet (completion race) or forgotten
        result = NodeResult(outputs, _cached(entry))
        with self._lock:
            self._known[job.id] = result
            while len(self._known) > REMEMBERED:
                self._known.popitem(last=False)
        return result

    def _fetch(self, job: Job) -> dict[str, Any] | None:
        # None when the node was removed or is down: our records answer alone.
        return self.orch.node_history(job)
