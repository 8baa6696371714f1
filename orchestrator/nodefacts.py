"""What the pool's nodes say of themselves, read through the pool's own link to each node.

A ComfyUI client asks its server for system stats, feature flags, model lists and the
history entry of a prompt it ran; a front end that answers as ComfyUI asks the pool's
nodes. These read each node through the client the pool already keeps for it (no new
connection per request) and pass over a node that left the pool or stopped answering
meanwhile: the others answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from orchestrator import dispatch
from orchestrator.errors import ConfigError, NodeError
from orchestrator.jobs import Job
from orchestrator.nodes import Node, NodeHealth
from orchestrator.pool import NodePool


class NodeFacts(BaseModel):
    """One node as it last answered: its ``/system_stats`` and ``/api/features`` flags
    (None before it first answered; empty where the release has no such route)."""

    name: str
    comfyui_version: str | None
    system_stats: dict[str, Any]
    feature_flags: dict[str, Any] | None


def facts(pool: NodePool, name: str) -> NodeFacts | None:
    """The node's facts; None when no node of that name is in the pool any more."""
    node = _node(pool, name)
    if node is None:
        return None
    features = node.features
    return NodeFacts(name=name, comfyui_version=features.version if features else None,
                     system_stats=dict(node.system_stats),
                     feature_flags=None if features is None else dict(features.flags))


def models(pool: NodePool, folder: str | None) -> list[str] | None:
    """Model folder names (``folder`` None) or the files of ``folder``, merged over the
    healthy nodes in their order; None when no node has that folder."""
    lists = list(_model_lists(pool, folder))
    if not lists:
        return None
    merged: dict[str, None] = {}
    for names in lists:
        merged.update(dict.fromkeys(names))
    return list(merged)


def _model_lists(pool: NodePool, folder: str | None) -> Iterator[list[str]]:
    for info in pool.nodes():
        node = _node(pool, info.name) if info.health == NodeHealth.UP else None
        if node is None:
            continue
        try:
            yield node.client.models(folder)
        except NodeError:
            continue  # the node lacks the folder (404) or went away: the others answer


def history_entry(pool: NodePool, job: Job) -> dict[str, Any] | None:
    """The ``/history/{id}`` entry, as its node wrote it, of a single-item job's prompt;
    None while it runs, once its node forgot it, or when the node is gone or down."""
    item = job.items[-1] if len(job.items) == 1 else None
    if item is None or item.node is None or item.prompt_id is None:
        return None
    node = _node(pool, item.node)
    if node is None:
        return None
    try:
        return node.client.history_entry(item.prompt_id)
    except NodeError:
        return None


def capable_node_free(pool: NodePool, graph: Mapping[str, Any]) -> bool:
    """Whether some node that can run ``graph`` (its classes and models) has room now, so
    a job recorded now is dispatched at once."""
    needs = dispatch.requirements(graph)
    for info in pool.nodes():
        try:
            worker = pool.worker(info.name)
        except ConfigError:
            continue  # removed meanwhile
        caps = worker.node.capabilities
        if caps is not None and worker.has_room() and dispatch.can_run(needs, caps):
            return True
    return False


def _node(pool: NodePool, name: str) -> Node | None:
    try:
        return pool.worker(name).node
    except ConfigError:
        return None  # removed meanwhile
