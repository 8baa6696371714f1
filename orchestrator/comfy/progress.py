"""Whole-graph progress from a prompt's websocket messages (pure).

ComfyUI reports progress per node (``progress`` value/max for samplers) and which node
runs (``executing``). Users want one number for the whole graph, which must never go
backwards: cached nodes count as done, each finished node adds one, and the running node
adds its own fraction. ``nodes_total`` comes from the graph, not from the nodes seen so
far, so the number does not jump to 1.0 mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.comfy.messages import (
    Executed,
    Executing,
    ExecutionCached,
    Message,
    Progress,
)
from orchestrator.comfy.weights import node_weights, weighted_fraction


@dataclass(frozen=True)
class ProgressSnapshot:
    """Where one prompt stands; ``fraction`` is 0..1 over the whole graph."""

    fraction: float
    nodes_done: int
    nodes_total: int
    current_node: str | None = None
    current_class: str | None = None
    step: int | None = None
    steps: int | None = None


@dataclass
class GraphProgress:
    """Folds messages of one prompt into a monotonic ``ProgressSnapshot``."""

    classes: dict[str, str]  # node id -> class_type, from the submitted graph
    done: set[str] = field(default_factory=set)
    # what each node weighs (comfy/weights.py) and the nodes served from ComfyUI's cache
    weights: dict[str, float] = field(default_factory=dict)
    cached: set[str] = field(default_factory=set)
    current: str | None = None
    step: int | None = None
    steps: int | None = None
    _best: float = 0.0

    @classmethod
    def for_graph(cls, graph: dict[str, dict[str, object]]) -> GraphProgress:
        return cls({nid: str(node.get("class_type", "")) for nid, node in graph.items()},
                   weights=node_weights(graph))

    def update(self, msg: Message) -> ProgressSnapshot | None:
        """Apply one message; return a new snapshot when it changed anything."""
        if isinstance(msg, ExecutionCached):
            self.done.update(n for n in msg.nodes if n in self.classes)
            self.cached.update(n for n in msg.nodes if n in self.classes)
        elif isinstance(msg, Executing):
            if msg.node is not None and msg.node == self.current:
                # ComfyUI resends the running node to a socket that reconnects: the
                # node is still running, not done (its steps go on where they were).
                return None
            self._finish_current()
            self.current, self.step, self.steps = msg.node, None, None
        elif isinstance(msg, Progress):
            self.current = msg.node or self.current
            self.step, self.steps = msg.value, msg.max
        elif isinstance(msg, Executed):
            self.done.add(msg.node)
        else:
            return None
        return self.snapshot()

    def _finish_current(self) -> None:
        if self.current is not None:
            self.done.add(self.current)

    def snapshot(self) -> ProgressSnapshot:
        weights = self.weights or dict.fromkeys(self.classes, 1.0)
        fraction = weighted_fraction(weights, self.done, self.cached, self.current,
                                     self.step, self.steps)
        self._best = max(self._best, fraction)
        return ProgressSnapshot(
            fraction=self._best,
            nodes_done=len(self.done & self.classes.keys()),
            nodes_total=len(self.classes),
            current_node=self.current,
            current_class=self.classes.get(self.current or ""),
            step=self.step,
            steps=self.steps,
        )

    def finished(self) -> ProgressSnapshot:
        """The snapshot once the prompt has ended successfully."""
        self.done.update(self.classes)
        self.current = None
        return self.snapshot()
