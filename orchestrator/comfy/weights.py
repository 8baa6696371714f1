"""What share of a prompt's run time each graph node takes, and the fraction done (pure).

Counting graph nodes misleads: in a text-to-image graph the sampler is one node of eight
but takes most of the time, so a node count jumps to 62 % when the sampler starts and
crawls through its steps. Here a sampler weighs its steps and every other node one step;
nodes ComfyUI serves from its cache weigh nothing, since they cost no time.

The weights are a guess made before any time is measured (a panel refines it with the
measured pace, ``ui/eta.py``); they were fitted to the test checkpoint on a loaded 2-core
CPU, where a 128 px step takes as long as two small nodes and a cold loader three.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

STEP_WEIGHT = 2.0  # one sampler step: a full pass of the model, the costliest work there is
# A sampler's start: ComfyUI loads the model onto its device when sampling begins, so the
# first step takes two to three times as long as the others.
SAMPLER_START_WEIGHT = 2.0
# Any other node: loading, encoding, decoding, saving each take about one to two sampler
# steps of a small image on a CPU, and much less than the whole loop on a GPU.
NODE_WEIGHT = 1.0
# A model loader reads a file of hundreds of MB to GB the first time; later runs take it
# from ComfyUI's cache, where it weighs nothing.
LOADER_WEIGHT = 3.0


def node_weight(node: Mapping[str, Any]) -> float:
    """The weight of one graph node: its steps (and start) for a sampler, ``LOADER_WEIGHT``
    for a model loader, ``NODE_WEIGHT`` otherwise."""
    inputs = node.get("inputs") or {}
    class_type = str(node.get("class_type", ""))
    steps = inputs.get("steps")
    if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 and (
            "Sampler" in class_type or "seed" in inputs or "noise_seed" in inputs):
        return steps * STEP_WEIGHT + SAMPLER_START_WEIGHT
    return LOADER_WEIGHT if "Loader" in class_type else NODE_WEIGHT


def node_weights(graph: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Each node id's weight (see ``node_weight``)."""
    return {node_id: node_weight(node) for node_id, node in graph.items()}


def weighted_fraction(weights: Mapping[str, float], done: Collection[str],
                      cached: Collection[str], current: str | None = None,
                      step: int | None = None, steps: int | None = None) -> float:
    """0..1: the weight of the nodes done, plus the running node's share of its steps, over
    the weight of the nodes that run (cached ones left out of both)."""
    running = {n: w for n, w in weights.items() if n not in cached}
    total = sum(running.values())
    if total <= 0:
        return 1.0 if weights else 0.0
    finished = sum(w for n, w in running.items() if n in done)
    partial = 0.0
    if current in running and current not in done and steps:
        partial = running[current] * min(max((step or 0) / steps, 0.0), 1.0)
    return min((finished + partial) / total, 1.0)
