"""What the pool offers, in the answers of one ComfyUI server.

Clients ask ``/object_info`` to build graphs, ``/models/{folder}`` to fill model pickers
and ``/system_stats`` to learn the version. A pool answers with the union of its healthy
nodes (every class or model some node has), which is what pre-flight and dispatch accept.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

from orchestrator.nodes import NodeHealth, NodeInfo
from orchestrator.service import NodeFacts, Orchestrator, parse_version

# Reported while no node has answered yet, so clients that parse the version still work.
UNKNOWN_VERSION = "unknown"
ARGV = ["comfy-orchestrator"]


def _up(orch: Orchestrator) -> list[NodeInfo]:
    return [n for n in orch.nodes() if n.health == NodeHealth.UP]


def object_info_of(orch: Orchestrator, node_class: str) -> dict[str, Any]:
    """``/object_info/{class}``: ``{class: info}``, or ``{}`` for a class no node has."""
    info = orch.object_info().get(node_class)
    return {} if info is None else {node_class: info}


def _newest_first(orch: Orchestrator) -> list[NodeInfo]:
    """Healthy nodes, the one whose release the gateway speaks as (``versions``) first."""
    return sorted(_up(orch), key=lambda n: parse_version(n.comfyui_version) or (), reverse=True)


def features(orch: Orchestrator, max_upload_bytes: int) -> dict[str, Any]:
    """``/features``: the flags of the node the gateway speaks as, with our upload limit
    (a node's own limit is not what a client may send us); the two flags every release
    has while no node has answered."""
    flags: dict[str, Any] = {"supports_preview_metadata": True}
    for node in _newest_first(orch)[:1]:
        found = orch.node_facts(node.name)
        if found is not None and found.feature_flags is not None:
            flags = found.feature_flags or flags
    return {**flags, "max_upload_size": max_upload_bytes}


def system_stats(orch: Orchestrator) -> dict[str, Any]:
    """ComfyUI's ``/system_stats`` for the pool: the system facts (ComfyUI version) of the
    node the gateway speaks as and every healthy node's devices."""
    stats = [s for s in (_stats(orch.node_facts(n.name)) for n in _newest_first(orch)) if s]
    system = dict(stats[0].get("system") or {}) if stats else {}
    system.setdefault("comfyui_version", UNKNOWN_VERSION)
    system.setdefault("os", os.name)
    system["argv"] = ARGV  # a node's command line is its operator's business
    return {"system": system,
            "devices": [d for s in stats for d in s.get("devices") or ()]}


def _stats(found: NodeFacts | None) -> dict[str, Any]:
    return dict(found.system_stats) if found is not None else {}


def models(orch: Orchestrator, folder: str | None = None) -> list[str] | None:
    """``/models`` (folder names) or ``/models/{folder}`` (file names), merged over the
    healthy nodes in their order; None when no node has that folder."""
    return orch.models(folder)


def embeddings(orch: Orchestrator) -> list[str]:
    """``/embeddings``: embedding names without their extension, as ComfyUI lists them."""
    return [posixpath.splitext(name)[0] for name in models(orch, "embeddings") or []]
