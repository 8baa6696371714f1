"""What the panel reads from the pool (pure): whether its only checkpoint is the
random-weight test checkpoint, which workflows its nodes cannot run and why, and which
workflow Generate opens on.

On a pool that holds only the test checkpoint (the managed local CPU ComfyUI of
``comfy-orch up``) every image is noise by design, so Generate starts sampler workflows
with a size and step count that finish in seconds on a CPU instead of minutes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ui.form import FieldSpec, FormPlan
from ui.models import Node, WorkflowCheck, WorkflowDetail, WorkflowSummary

CHECKPOINT_INPUT = "ckpt_name"  # the input every checkpoint loader names its file in
QUICK_SIDE = 128  # pixels: the test checkpoint samples 128 x 128 in about a second a step
QUICK_STEPS = 4
PREFERRED = "txt2img"  # the shipped text-to-image workflow: Generate opens on it if it runs
BLOCKED = "⛔"
# The random-weight checkpoint ``comfy-orch up`` installs: the panel knows it by its file name.
TEST_CHECKPOINT = "tiny-sd15.safetensors"


def model_files(node: Node) -> set[str]:
    """The distinct model files a node lists (one file appears under several loaders)."""
    return {name for names in node.models.values() for name in names}


def checkpoints(nodes: Sequence[Node]) -> set[str]:
    """The checkpoint files the pool's nodes list."""
    return {name for node in nodes for site, names in node.models.items()
            if site.endswith("." + CHECKPOINT_INPUT) for name in names}


def only_test_checkpoint(nodes: Sequence[Node]) -> bool:
    """Whether the pool's one checkpoint is the random-weight test checkpoint."""
    return checkpoints(nodes) == {TEST_CHECKPOINT}


def taking_work(nodes: Sequence[Node]) -> list[Node]:
    """The nodes a queued image can go to: up and not draining."""
    return [n for n in nodes if n.health == "up" and not n.draining]


def quick(plan: FormPlan) -> FormPlan:
    """``plan`` with the size and steps that finish in seconds on a CPU, when it samples
    (has ``steps``); other workflows keep their defaults."""
    if not any(spec.name == "steps" for spec in plan.tuning):
        return plan
    return replace(plan, size=[_default(s, QUICK_SIDE) for s in plan.size],
                   tuning=[_default(s, QUICK_STEPS) if s.name == "steps" else s
                           for s in plan.tuning])


def _default(spec: FieldSpec, value: int) -> FieldSpec:
    low = int(spec.minimum) if spec.minimum is not None else value
    return replace(spec, default=max(value, low))


def check_texts(detail: WorkflowDetail) -> tuple[str, str | None]:
    """The graph and metadata texts to send to ``POST /v1/workflows/{name}/check``."""
    meta = None if detail.meta is None else json.dumps(detail.meta)
    return json.dumps(detail.graph or {}), meta


def blocked_reason(check: WorkflowCheck) -> str | None:
    """Why the pool cannot run a workflow (each problem, with the node pack to install and
    its URL where the service knows it), or None when it can or no node answered yet."""
    if not check.pool_checked or not check.pool_problems:
        return None
    return "; ".join(problem.text for problem in check.pool_problems)


def ordered(workflows: Sequence[WorkflowSummary]) -> list[WorkflowSummary]:
    """The picker's order: by name, case left aside."""
    return sorted(workflows, key=lambda w: (w.name.casefold(), w.name))


def default_workflow(workflows: Sequence[WorkflowSummary],
                     blocked: Mapping[str, str | None]) -> str | None:
    """The workflow Generate opens on: the shipped text-to-image one when the pool can run
    it, else the first the pool can run that needs no uploaded image, else the first the
    pool can run, else the first."""
    runnable = [w for w in ordered(workflows) if not blocked.get(w.name)]
    for candidates in ([w for w in runnable if w.name == PREFERRED],
                       [w for w in runnable if not _needs_image(w)], runnable,
                       ordered(workflows)):
        if candidates:
            return candidates[0].name
    return None


def _needs_image(workflow: WorkflowSummary) -> bool:
    return any(use.type == "image" for use in workflow.placeholders)


def label(workflow: WorkflowSummary, reason: str | None) -> str:
    """The picker's text for a workflow, marked when the pool cannot run it."""
    return f"{BLOCKED} {workflow.label} (the pool cannot run it)" if reason else workflow.label
