"""Input files a raw graph names, staged on whichever node runs it (pure).

Clients written for ComfyUI upload an image first and then name it in the graph
(``LoadImage.image = "photo.png"``). A pool cannot know in advance which node will run
the graph, so we keep the uploaded bytes and, at dispatch, turn every input value that
names one of them into an upload marker; the runner uploads the bytes to the chosen node
and writes the name that node returned back into the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.workflow import is_link
from placeholders import UploadRequest


def stage_named_inputs(graph: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
    """A copy of ``graph`` where inputs naming a key of ``files`` become upload markers."""
    if not files:
        return dict(graph)
    markers = {name: UploadRequest(name, data, name) for name, data in files.items()}
    staged: dict[str, Any] = {}
    for node_id, node in graph.items():
        inputs = node.get("inputs") or {}
        staged[node_id] = {**node, "inputs": {
            key: markers.get(value, value) if isinstance(value, str) and not is_link(value)
            else value
            for key, value in inputs.items()
        }}
    return staged
