"""Which fields Generate shows for a workflow, and the request it sends (pure)."""

from __future__ import annotations

from typing import Any

from ui.form import Scope, Size, field_spec, job_request, plan_form
from ui.models import PlaceholderUse, WorkflowDetail

GRAPH = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "%model%"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": "%seed%", "steps": "%steps%"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": "%width%",
                                                       "height": "%height%"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "%prompt%"}},
    "7": {"class_type": "X", "inputs": {"image": "%main_image%", "mood": "%mood%"}},
}


def _detail(meta: dict[str, Any]) -> WorkflowDetail:
    uses = [PlaceholderUse(name=n, known=True, sites=[s]) for n, s in (
        ("model", "4.ckpt_name"), ("seed", "3.seed"), ("steps", "3.steps"),
        ("width", "5.width"), ("height", "5.height"), ("prompt", "6.text"),
        ("main_image", "7.image"), ("mood", "7.mood"))]
    return WorkflowDetail(name="w", title="W", ok=True, graph=GRAPH, meta=meta,
                          placeholders=uses)


def test_a_declaration_overrides_the_catalog_only_where_it_speaks() -> None:
    spec = field_spec("steps", {"default": 30})
    assert (spec.type, spec.default, spec.minimum, spec.maximum) == ("int", 30, 1, 10000)


def test_fields_are_grouped_and_model_inputs_offer_installed_files() -> None:
    meta = {"placeholders": {"main_image": {"type": "image"}, "mood": {"choices": ["a", "b"]}},
            "styles": {"noir": {}, "anime": {}}}
    plan = plan_form(_detail(meta), {"CheckpointLoaderSimple.ckpt_name": ["m1", "m2"]})
    assert [s.name for s in plan.prompts] == ["prompt"]
    assert plan.has_size and plan.seed is not None and plan.styles == ["anime", "noir"]
    assert [s.name for s in plan.tuning] == ["steps"]
    assert [s.name for s in plan.images] == ["main_image"]
    others = {s.name: s for s in plan.other}
    assert others["model"].choices == ("m1", "m2") and others["mood"].choices == ("a", "b")


def test_the_request_leaves_blank_fields_out_and_carries_size_and_scope() -> None:
    request = job_request("w", {"prompt": "a fox", "negative_prompt": "", "seed": -1},
                          size=Size(aspect="16:9", tier="1MP"), count=4,
                          scope=Scope("nova", " ", "public"), style="noir")
    assert request == {"workflow": "w", "values": {"prompt": "a fox", "seed": -1,
                                                   "aspect": "16:9", "tier": "1MP",
                                                   "style": "noir"},
                       "count": 4, "character": "nova", "conversation": None,
                       "visibility": "public"}


def test_an_exact_size_is_sent_as_width_and_height() -> None:
    assert job_request("w", {}, size=Size(width=640, height=384))["values"] == {
        "width": 640, "height": 384}
