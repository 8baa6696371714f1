"""The seed inputs of a raw API-format graph, and the graph with a new seed in them.

A job submitted as a bare graph has no ``%seed%`` placeholder, so "the same graph with a
new seed" means finding the inputs that seed it: the samplers' own (KSampler ``seed``,
``noise_seed`` of KSamplerAdvanced, SamplerCustom and RandomNoise), and any input named
``seed`` or ``*_seed`` that ``/object_info`` declares as an INT the ComfyUI editor
re-rolls after each run (``control_after_generate``). Only literal values change; a
linked input takes its value from a node whose own seed input is found the same way.

Pure: graphs and ``/object_info`` in, a new graph out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import WorkflowFormatError

KNOWN_SEED_INPUTS = frozenset({
    ("KSampler", "seed"),
    ("KSamplerAdvanced", "noise_seed"),
    ("SamplerCustom", "noise_seed"),
    ("RandomNoise", "noise_seed"),
})

Site = tuple[str, str]  # (node id, input name)


def seed_sites(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[Site]:
    """Every (node id, input) of ``graph`` that holds a literal seed, in node order."""
    sites: list[Site] = []
    for node_id, node in graph.items():
        if not isinstance(node, Mapping):
            continue
        class_type = str(node.get("class_type", ""))
        inputs = node.get("inputs")
        for name, value in (inputs.items() if isinstance(inputs, Mapping) else ()):
            literal = isinstance(value, int) and not isinstance(value, bool)
            if literal and _is_seed(class_type, name, object_info):
                sites.append((str(node_id), name))
    return sites


def _is_seed(class_type: str, name: str, object_info: Mapping[str, Any]) -> bool:
    if (class_type, name) in KNOWN_SEED_INPUTS:
        return True
    if name != "seed" and not name.endswith("_seed"):
        return False
    spec = _input_spec(object_info.get(class_type), name)
    return (len(spec) > 1 and spec[0] == "INT" and isinstance(spec[1], Mapping)
            and spec[1].get("control_after_generate") is True)


def _input_spec(info: Any, name: str) -> list[Any]:
    if not isinstance(info, Mapping):
        return []
    inputs = info.get("input")
    for group in ("required", "optional"):
        found = inputs.get(group, {}).get(name) if isinstance(inputs, Mapping) else None
        if isinstance(found, list | tuple):
            return list(found)
    return []


def reseeded(graph: Mapping[str, Any], object_info: Mapping[str, Any], seed: int, *,
             source: str = "graph") -> dict[str, Any]:
    """A copy of ``graph`` with every seed input set to ``seed``.

    Raises ``WorkflowFormatError`` naming ``source`` when the graph has no seed input: run
    again, it would make the same image (ComfyUI even answers it from its cache).
    """
    sites = seed_sites(graph, object_info)
    if not sites:
        raise WorkflowFormatError(
            "no seed input found (KSampler seed, a sampler's noise_seed, or an INT seed "
            "input ComfyUI re-rolls), so a new seed would make the same image; change "
            "another input and submit the graph again", source=source)
    new = copy.deepcopy(dict(graph))
    for node_id, name in sites:
        new[node_id]["inputs"][name] = seed
    return new
