"""What the panel reads from the pool (pure): the test checkpoint, quick defaults, which
workflow Generate opens on, and how an unrunnable one is labelled."""

from __future__ import annotations

from typing import Any

from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME
from ui import pool
from ui.form import FieldSpec, FormPlan
from ui.models import Node, PlaceholderUse, Problem, WorkflowCheck, WorkflowSummary


def node(models: dict[str, list[str]], **extra: Any) -> Node:
    return Node.model_validate({"name": "n", "url": "http://n", "health": "up",
                                "models": models, **extra})


def summary(name: str, *, image: bool = False) -> WorkflowSummary:
    uses = [PlaceholderUse(name="avatar", known=True, type="image")] if image else []
    return WorkflowSummary(name=name, title=name, ok=True, serving="v1", placeholders=uses)


TINY_EVERYWHERE = {f"{c}.ckpt_name": [TINY_CHECKPOINT_NAME] for c in (
    "CheckpointLoaderSimple", "CheckpointLoader", "ImageOnlyCheckpointLoader")}


def test_one_file_under_many_loaders_counts_once() -> None:
    assert pool.model_files(node(TINY_EVERYWHERE)) == {TINY_CHECKPOINT_NAME}


def test_a_pool_of_the_test_checkpoint_alone_is_recognised() -> None:
    assert pool.only_test_checkpoint([node(TINY_EVERYWHERE)])
    real = {"CheckpointLoaderSimple.ckpt_name": [TINY_CHECKPOINT_NAME, "sdxl.safetensors"]}
    assert not pool.only_test_checkpoint([node(TINY_EVERYWHERE), node(real)])
    assert not pool.only_test_checkpoint([])


def test_the_panel_knows_the_test_checkpoint_up_installs_by_its_name() -> None:
    assert pool.TEST_CHECKPOINT == TINY_CHECKPOINT_NAME


def test_a_draining_or_down_node_takes_no_work() -> None:
    nodes = [node({}, draining=True), node({}, health="down"), node({})]
    assert pool.taking_work(nodes) == [nodes[2]]


def test_quick_defaults_apply_to_sampler_workflows_only() -> None:
    sides = [FieldSpec("width", "int", 512, 64, 8192), FieldSpec("height", "int", 512, 64)]
    plan = FormPlan(has_size=True, size=sides, tuning=[FieldSpec("steps", "int", 20, 1, 150),
                                                       FieldSpec("scale", "float", 7.0)])
    fast = pool.quick(plan)
    assert [s.default for s in fast.size] == [pool.QUICK_SIDE] * 2
    assert [s.default for s in fast.tuning] == [pool.QUICK_STEPS, 7.0]
    no_sampler = FormPlan(has_size=True, size=sides)
    assert pool.quick(no_sampler) == no_sampler


def test_generate_opens_on_txt2img_then_on_what_runs_without_an_upload() -> None:
    listed = [summary("txt2img"), summary("Default_Comfy_Workflow"),
              summary("avatar_aspect_crop", image=True), summary("Char_Avatar", image=True)]
    assert pool.default_workflow(listed, {}) == "txt2img"
    assert pool.default_workflow(listed, {"txt2img": "no"}) == "Default_Comfy_Workflow"
    assert pool.default_workflow(listed[2:], {"Char_Avatar": "pack"}) == "avatar_aspect_crop"
    assert pool.default_workflow(listed[3:], {"Char_Avatar": "pack"}) == "Char_Avatar"
    assert pool.default_workflow([], {}) is None


def test_the_picker_sorts_without_regard_to_case() -> None:
    names = [w.name for w in pool.ordered([summary("txt2img"), summary("Default"),
                                           summary("avatar")])]
    assert names == ["avatar", "Default", "txt2img"]


def test_the_reason_is_the_pools_problems_and_the_label_says_so() -> None:
    check = WorkflowCheck(name="a", ok=True, pool_checked=True, pool_problems=[
        Problem(text="node 1 (X): install pack (https://example.org/pack)")])
    reason = pool.blocked_reason(check)
    assert reason == "node 1 (X): install pack (https://example.org/pack)"
    assert pool.label(summary("a"), reason).startswith("⛔ a")
    assert pool.blocked_reason(WorkflowCheck(name="a", ok=True, pool_checked=False)) is None
