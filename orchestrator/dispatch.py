"""Pure dispatch decisions: what a graph needs, which node can run it, what to retry.

Kept apart from the runner loop (habit 3): tests and operators can swap these policies
without touching threads or sockets.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import NodeError
from orchestrator.jobs import JobRequirements
from orchestrator.workflow import is_link

# File endings that mark a COMBO value as a model file the node must have installed.
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")


@dataclass(frozen=True)
class Requirements:
    """Node classes and model files a graph needs on the node that runs it."""

    classes: frozenset[str]
    models: frozenset[tuple[str, str, str]]  # (class_type, input name, file name)

    @classmethod
    def of_record(cls, record: JobRequirements) -> Requirements:
        """The requirements stored with a job."""
        return cls(frozenset(record.classes),
                   frozenset((c, i, f) for c, i, f in record.models))

    def record(self) -> JobRequirements:
        """These requirements as stored with a job."""
        return JobRequirements(classes=sorted(self.classes), models=sorted(self.models))


@dataclass(frozen=True)
class Capabilities:
    """What one node offers, read from its ``/object_info``."""

    classes: frozenset[str] = frozenset()
    # (class_type, input name) -> allowed values, for COMBO inputs that list their values
    combos: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_object_info(cls, info: Mapping[str, Any]) -> Capabilities:
        combos: dict[tuple[str, str], frozenset[str]] = {}
        for class_type, spec in info.items():
            inputs = spec.get("input") or {}
            for section in ("required", "optional"):
                for name, input_spec in (inputs.get(section) or {}).items():
                    values = combo_values(input_spec)
                    if values is not None:
                        combos[(class_type, name)] = frozenset(values)
        return cls(frozenset(info), combos)

    @functools.cached_property
    def model_files(self) -> dict[str, list[str]]:
        """Model-looking combo values per ``class.input`` (for display); worked out once,
        since a node's listing is thousands of values and is shown on every node read."""
        return {f"{c}.{i}": sorted(v for v in values if v.lower().endswith(MODEL_SUFFIXES))
                for (c, i), values in self.combos.items()
                if any(v.lower().endswith(MODEL_SUFFIXES) for v in values)}


def combo_values(input_spec: Any) -> list[str] | None:
    """The allowed values of a COMBO input spec, in any of ComfyUI's three shapes."""
    if not isinstance(input_spec, list | tuple) or not input_spec:
        return None
    head = input_spec[0]
    if isinstance(head, list):
        return [str(v) for v in head]
    if head == "COMBO" and len(input_spec) > 1 and isinstance(input_spec[1], dict):
        options = input_spec[1].get("options")
        return [str(v) for v in options] if options else None  # remote combos: anything
    return None


def requirements(graph: Mapping[str, Mapping[str, Any]],
                 inputs: Collection[str] = ()) -> Requirements:
    """The classes a graph uses and the model files named in its inputs.

    ``inputs`` are the names of files the job brings (staged on the node at dispatch):
    a value naming one of them is never a model the node must have.
    """
    classes = frozenset(str(node["class_type"]) for node in graph.values())
    models = frozenset(
        (str(node["class_type"]), name, value)
        for node in graph.values()
        for name, value in (node.get("inputs") or {}).items()
        if isinstance(value, str) and not is_link(value) and value not in inputs
        and value.lower().endswith(MODEL_SUFFIXES)
    )
    return Requirements(classes, models)


def missing(req: Requirements, caps: Capabilities) -> list[str]:
    """What ``caps`` lacks to run ``req``, worded for a user; empty when it can run it."""
    gaps = [f"class {c}" for c in sorted(req.classes - caps.classes)]
    for class_type, name, value in sorted(req.models):
        allowed = caps.combos.get((class_type, name))
        if allowed is not None and value not in allowed:
            gaps.append(f"model {value}")
    return gaps


# Job metadata naming the node a job goes to while that node has room: the gateway's cache
# affinity (a client's next prompt finds what ComfyUI cached for its last one there).
PREFERRED_NODE_KEY = "prefer_node"


def yields_to_preferred(metadata: Mapping[str, str], node: str,
                        has_room: Callable[[str], bool]) -> bool:
    """Whether ``node`` leaves the job to the node it prefers, which has room for it."""
    preferred = metadata.get(PREFERRED_NODE_KEY)
    return preferred is not None and preferred != node and has_room(preferred)


def can_run(req: Requirements, caps: Capabilities) -> bool:
    return not missing(req, caps)


def nobody_can_run(req: Requirements, all_caps: Iterable[Capabilities | None]) -> str | None:
    """When no node of the pool can run ``req``: the sentence to fail the job with.

    ``all_caps`` has one entry per node in the pool, None for a node that has not
    answered yet. While any node is unknown, or the pool is empty, the answer is None:
    wait for it rather than fail work a node about to report might run.
    """
    caps = list(all_caps)
    if not caps or any(c is None for c in caps):
        return None
    gaps = [missing(req, c) for c in caps if c is not None]
    if all(gaps):
        fewest = min(gaps, key=len)
        return "no node can run " + " / ".join(fewest)
    return None


def is_retryable(exc: BaseException) -> bool:
    """Retry on another node only for node faults — decided by class, never by text.

    A graph error, bad values or a bug of ours would fail the same way everywhere, so
    retrying them would only burn other nodes' time.
    """
    return isinstance(exc, NodeError)


def error_code(exc: BaseException) -> str:
    """A stable code for an item's error record."""
    return {
        "JobFailed": "execution_error",
        "GraphRejected": "invalid_workflow",
        "PromptIdRejected": "invalid_prompt_id",
        "SubstitutionError": "invalid_values",
        "NodeUnreachable": "node_unreachable",
        "NodeTimeout": "node_timeout",
        "NodeProtocolError": "node_protocol_error",
        "JobCancelled": "canceled",
    }.get(type(exc).__name__, "internal_error")


def merge_object_info(infos: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One ``/object_info`` for the pool: every class any node has, with combo values merged.

    A graph that validates against this can run somewhere in the pool; which node can run
    it is decided per item by ``can_run``.
    """
    merged: dict[str, Any] = {}
    for info in infos:
        for class_type, spec in info.items():
            if class_type not in merged:
                merged[class_type] = copy.deepcopy(spec)
            else:
                _merge_combos(merged[class_type], spec)
    return merged


def _merge_combos(into: dict[str, Any], spec: Mapping[str, Any]) -> None:
    for section in ("required", "optional"):
        mine = (into.get("input") or {}).get(section) or {}
        theirs = (spec.get("input") or {}).get(section) or {}
        for name, input_spec in theirs.items():
            target = mine.get(name)
            values = combo_values(input_spec)
            if target is None or values is None or combo_values(target) is None:
                continue
            known = combo_values(target) or []
            extra = [v for v in values if v not in known]
            if extra and isinstance(target[0], list):
                target[0] = [*target[0], *extra]
            elif extra and len(target) > 1 and isinstance(target[1], dict):
                target[1]["options"] = [*known, *extra]


# Fixed namespace for prompt ids: ComfyUI >= 0.26 accepts a client-chosen prompt_id only as a
# canonical lowercase UUID, so ours are uuid5(item, attempt). Being derived, not random, a
# restarted orchestrator can find its own prompts again from nothing but the item's record.
PROMPT_ID_NAMESPACE = uuid.UUID("5f0c1c8e-6a43-4f6b-9d1e-2b7c0a9e4d10")


def prompt_id_for(item_id: str, attempt: int) -> str:
    """The ComfyUI prompt id of ``attempt`` (1-based) of item ``item_id``: a lowercase UUID
    that every ComfyUI version accepts and that is the same every time it is computed."""
    return str(uuid.uuid5(PROMPT_ID_NAMESPACE, f"{item_id}/{attempt}"))
