"""What the node that ran a prompt wrote in its own history, for a faithful relay.

Our store keeps a prompt's files; ComfyUI's history also has every other key of each
output node's UI result (``text``, numbers, ``animated``...), cached output nodes, and the
list of nodes it took from its cache (``execution_cached``). The gateway reads them from
the node once the prompt has ended (the node keeps its last 10,000 prompts in memory) and
maps each file the node names to the name our ``/view`` serves it under; a file we did not
keep (a temporary preview next to saved images) is left out. When the node has forgotten
the prompt (restarted, removed), the gateway answers from our records alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError, NodeError
from orchestrator.jobs import Job
from orchestrator.outputs import OutputRecord
from orchestrator.service import Orchestrator
from orchestrator.web.gateway.history import file_ref

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

    def of(self, job: Job, records: Sequence[OutputRecord]) -> NodeResult | None:
        """The node's answer for a terminal single-item ``job``; None when it has none."""
        with self._lock:
            if job.id in self._known:
                return self._known[job.id]
        entry = self._fetch(job)
        if entry is None:
            return None  # not written yet (ComfyUI's completion race) or forgotten
        result = node_result(entry, records)
        with self._lock:
            self._known[job.id] = result
            while len(self._known) > REMEMBERED:
                self._known.popitem(last=False)
        return result

    def _fetch(self, job: Job) -> dict[str, Any] | None:
        item = job.items[-1] if len(job.items) == 1 else None
        if item is None or item.node is None or item.prompt_id is None:
            return None
        try:
            return self.orch.pool.worker(item.node).node.client.history_entry(item.prompt_id)
        except (ConfigError, NodeError):
            return None  # the node was removed or is down: our records answer alone
