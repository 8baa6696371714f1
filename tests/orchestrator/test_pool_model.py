"""``%model%`` without a value or default takes the pool's only model file; with several
the error lists them (``rendering.with_pool_model``, applied by ``Orchestrator.submit``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SubstitutionError
from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME
from orchestrator.registry import read_workflow
from orchestrator.rendering import with_pool_model
from orchestrator.service import Orchestrator

SHIPPED = Path(__file__).resolve().parents[2] / "workflows"
QUICK = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 1}


def txt2img() -> object:
    return read_workflow(SHIPPED / "txt2img.json")


def test_the_only_model_of_the_pool_fills_an_open_model_placeholder() -> None:
    values = with_pool_model(txt2img(), QUICK, ["only.safetensors"])  # type: ignore[arg-type]
    assert values == {**QUICK, "model": "only.safetensors"}


def test_several_models_are_listed_in_the_error_naming_node_and_input() -> None:
    with pytest.raises(SubstitutionError) as caught:
        with_pool_model(txt2img(), QUICK, ["b.safetensors", "a.ckpt"])  # type: ignore[arg-type]
    text = str(caught.value)
    assert "node 4 (CheckpointLoaderSimple), input 'ckpt_name'" in text
    assert "%model%" in text and "the pool has a.ckpt, b.safetensors" in text


def test_a_given_model_or_an_unanswered_pool_leaves_the_values_alone() -> None:
    given = {**QUICK, "model": "mine.safetensors"}
    assert with_pool_model(txt2img(), given, ["a", "b"]) == given  # type: ignore[arg-type]
    assert with_pool_model(txt2img(), QUICK, []) == QUICK  # type: ignore[arg-type]


def test_submit_without_a_model_runs_on_the_pools_only_checkpoint(
        comfy_url: str, tmp_path: Path) -> None:
    with Orchestrator(data_dir=tmp_path, workflows_dir=SHIPPED, nodes=[comfy_url],
                      watch_workflows=False) as orch:
        job = orch.submit("txt2img", QUICK).wait(timeout=120)
    assert job.status.value == "succeeded", job.items[0].error
    assert job.spec.values["model"] == TINY_CHECKPOINT_NAME
