"""How fast each node runs each workload, and which node should take the next item.

A pool that mixes a fast and a slow GPU finishes a batch when the slow one does if work
goes to whichever node is free first. Here each node keeps a running estimate of the
seconds one item of a workload takes on it (measured, never configured), and an item goes
to the node expected to *finish* it soonest: the work already on that node plus one item
at that node's speed. A node whose last run was the same workload (its model still loaded)
wins a tie. The same numbers give every queued item an ETA.

A "workload" is a graph's structure and models, not its prompt or seed
(``workload_key``). Everything here is pure except ``SpeedBook``, which only holds numbers
behind a lock.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.dispatch import MODEL_SUFFIXES
from orchestrator.workflow import is_link

# Weight of the newest measurement in a running estimate: a node's speed drifts (thermal
# limits, other users of the GPU), so recent runs count more, but one odd run (a model
# load) does not undo ten normal ones.
EWMA_WEIGHT = 0.3
# Finish times this close (relative) count as a tie: measurements jitter by a few percent.
TIE_TOLERANCE = 0.10
# A running item is never expected to need less than this (seconds): it is at least
# being finished and collected.
MIN_REMAINING_S = 0.05
# Queued items an ETA is simulated through one by one; past that the pool's rate is used.
ETA_SIMULATED = 1000

Graph = Mapping[str, Mapping[str, Any]]


def graph_shape(graph: Graph) -> list[Any]:
    """The structure of a graph: each node's class and where its links come from, plus
    the model files it names. Prompts, seeds and other values are left out."""
    shape = []
    for node_id in sorted(graph, key=str):
        node = graph[node_id]
        inputs = node.get("inputs") or {}
        links = sorted((name, str(v[0]), v[1]) for name, v in inputs.items() if is_link(v))
        models = sorted((name, v) for name, v in inputs.items()
                        if isinstance(v, str) and _is_model_file(v))
        shape.append([str(node_id), str(node.get("class_type")), links, models])
    return shape


def _is_model_file(value: str) -> bool:
    return value.lower().endswith(MODEL_SUFFIXES)


def graph_steps(graph: Graph | None) -> int | None:
    """The sampler steps a graph asks for: the sum of every node's whole-number ``steps``
    input (KSampler and its kin). None when no node has one (or it is a link, or not
    filled in yet): the item's length then comes from its workload's mean."""
    total = 0
    for node in (graph or {}).values():
        steps = (node.get("inputs") or {}).get("steps")
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0:
            total += steps
    return total or None


def workload_key(*, workflow: str | None, graph: Graph | None,
                 models: Iterable[tuple[str, str, str]] = ()) -> str:
    """A short stable key for "the same work": a registry workflow's name or a raw graph's
    shape, plus the model files it will load (so another checkpoint is another workload)."""
    base: Any = ["workflow", workflow] if workflow else ["graph", graph_shape(graph or {})]
    text = json.dumps([base, sorted(models)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Estimate:
    """A running estimate for one node and workload."""

    item_s: float
    step_s: float | None
    runs: int

    def seconds(self, steps: int | None = None) -> float:
        """Expected seconds for one item: ``steps`` times the measured seconds per step
        when both are known (the workload's key leaves the step count out, so one
        workload's items can differ tenfold), else the measured seconds per item."""
        if steps and self.step_s is not None:
            return steps * self.step_s
        return self.item_s


class SpeedBook:
    """Measured seconds per item (and per sampler step) by node and workload; thread-safe.

    Fed by the watchdog when an item succeeds; read by dispatch and ETAs.
    """

    def __init__(self, *, weight: float = EWMA_WEIGHT) -> None:
        self.weight = weight
        self._estimates: dict[tuple[str, str], Estimate] = {}
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def record(self, node: str, key: str, seconds: float, steps: int | None = None) -> Estimate:
        """Fold one run of ``key`` on ``node`` (``seconds`` of node time) into the estimate."""
        step = seconds / steps if steps else None
        with self._lock:
            old = self._estimates.get((node, key))
            new = Estimate(seconds, step, 1) if old is None else Estimate(
                (1 - self.weight) * old.item_s + self.weight * seconds,
                _blend(old.step_s, step, self.weight), old.runs + 1)
            self._estimates[(node, key)] = new
            self._last[node] = key
            return new

    def ran(self, node: str, key: str) -> None:
        """``node`` ran ``key`` last (its models are loaded), measured or not."""
        with self._lock:
            self._last[node] = key

    def estimate(self, node: str, key: str) -> Estimate | None:
        with self._lock:
            return self._estimates.get((node, key))

    def item_seconds(self, node: str, key: str, steps: int | None = None) -> float | None:
        """Expected seconds for one item of ``key`` on ``node`` (of ``steps`` sampler
        steps, when known: ``Estimate.seconds``): measured there, else scaled from what
        both this node and others ran, else None (not known yet)."""
        with self._lock:
            own = self._estimates.get((node, key))
            if own is not None:
                return own.seconds(steps)
            return _scaled_guess(self._estimates, node, key, steps)

    def last_workload(self, node: str) -> str | None:
        with self._lock:
            return self._last.get(node)

    def snapshot(self) -> dict[str, dict[str, Estimate]]:
        """Every estimate by node, then workload (for the node view and the bench)."""
        with self._lock:
            out: dict[str, dict[str, Estimate]] = {}
            for (node, key), est in self._estimates.items():
                out.setdefault(node, {})[key] = est
            return out


def _blend(old: float | None, new: float | None, weight: float) -> float | None:
    if old is None or new is None:
        return new if old is None else old
    return (1 - weight) * old + weight * new


def _scaled_guess(estimates: Mapping[tuple[str, str], Estimate], node: str,
                  key: str, steps: int | None = None) -> float | None:
    """``key`` on ``node`` from ``key`` elsewhere times how much slower ``node`` ran the
    workloads both ran (1.0 when they share none)."""
    others = {n: e.seconds(steps) for (n, k), e in estimates.items()
              if k == key and n != node}
    if not others:
        return None
    ratios: list[float] = []
    for other in others:
        shared = [(estimates[(node, k)].item_s, e.item_s) for (n, k), e in estimates.items()
                  if n == other and (node, k) in estimates and e.item_s > 0]
        ratios.extend(mine / theirs for mine, theirs in shared)
    ratio = sum(ratios) / len(ratios) if ratios else 1.0
    return min(others.values()) * ratio


# --- choosing a node ------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeLoad:
    """One node that could take an item, as dispatch sees it at this moment."""

    name: str
    backlog_s: float         # expected seconds until the work already on it is done
    item_s: float | None     # expected seconds for one item of this workload (None: unknown)
    warm: bool = False       # its last run was this workload: models loaded

    def finish_s(self, fallback_item_s: float) -> float:
        return self.backlog_s + (self.item_s if self.item_s is not None else fallback_item_s)


def best_nodes(loads: Sequence[NodeLoad], *, tolerance: float = TIE_TOLERANCE) -> list[str]:
    """The nodes expected to finish one more item soonest, ties broken for warm nodes.

    A node with no measurement yet is assumed as fast as the fastest known one (so every
    node gets measured); with no measurement anywhere every node is best (first free
    wins). Finish times within ``tolerance`` of the best count as a tie.
    """
    if not loads:
        return []
    known = [load.item_s for load in loads if load.item_s is not None]
    if not known:
        return [load.name for load in loads]
    fallback = min(known)
    finishes = {load.name: load.finish_s(fallback) for load in loads}
    best = min(finishes.values())
    tied = [load for load in loads if finishes[load.name] <= best * (1 + tolerance) + 1e-9]
    warm = [load.name for load in tied if load.warm]
    return warm or [load.name for load in tied]


def remaining_s(item_s: float | None, running_for_s: float | None) -> float | None:
    """Expected seconds left of one item on a node: all of it while it waits in the node's
    own queue, the rest once it runs (never below ``MIN_REMAINING_S``)."""
    if item_s is None:
        return None
    if running_for_s is None:
        return item_s
    return max(item_s - running_for_s, MIN_REMAINING_S)


def eta_s(loads: Sequence[NodeLoad], ahead: int) -> float | None:
    """Seconds until an item with ``ahead`` queued items before it is expected done, each
    item going to the node that finishes it soonest; None while no node has a speed."""
    speeds = [(load.backlog_s, load.item_s) for load in loads if load.item_s]
    if not speeds:
        return None
    heap = [(backlog + item, item) for backlog, item in speeds]
    heapq.heapify(heap)
    simulated = min(ahead, ETA_SIMULATED)
    for _ in range(simulated):
        finish, item = heapq.heappop(heap)
        heapq.heappush(heap, (finish + item, item))
    rest = ahead - simulated
    rate = sum(1.0 / item for _, item in speeds)  # items per second, pool-wide
    return heap[0][0] + rest / rate
