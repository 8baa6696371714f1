"""Which fields Generate shows for a workflow, and the request it sends (pure), read the
way the service reads object_info and sizes."""

from __future__ import annotations

from typing import Any

import requests

import placeholders
from orchestrator.validation import InputSpec
from ui.form import (
    ASPECTS,
    TIER_NAMES,
    Scope,
    Size,
    combo,
    field_spec,
    info_classes,
    job_request,
    plan_form,
)
from ui.models import PlaceholderUse, WorkflowDetail

GRAPH = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "%model%"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": "%seed%", "steps": "%steps%",
                                               "sampler_name": "%sampler%"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": "%width%",
                                                       "height": "%height%"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "%prompt%, %scheduler%"}},
    "7": {"class_type": "X", "inputs": {"image": "%main_image%", "mood": "%mood%"}},
    "8": {"class_type": "SaveImage", "inputs": {"filename_prefix": "%year%/x"}},
}
INFO: dict[str, Any] = {
    "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["m1", "m2"], {}]}}},
    "KSampler": {"input": {"required": {
        "sampler_name": [["euler", "dpmpp_2m"], {}],
        "scheduler": ["COMBO", {"options": ["normal", "karras"]}],
        "steps": ["INT", {"default": 20, "min": 1}]}}},
}


def use(name: str, site: str, **fields: Any) -> PlaceholderUse:
    return PlaceholderUse(name=name, known=True, sites=[site], **fields)


def _detail() -> WorkflowDetail:
    uses = [use("model", "4.ckpt_name"), use("seed", "3.seed", type="int", default=-1),
            use("steps", "3.steps", type="int", default=30, min=1, max=10000),
            use("sampler", "3.sampler_name", default="euler"),
            use("width", "5.width", type="int"), use("height", "5.height", type="int"),
            use("prompt", "6.text"), use("scheduler", "6.text", default="normal"),
            use("main_image", "7.image", type="image"),
            use("mood", "7.mood", origin="declared", choices=["a", "b"]),
            use("year", "8.filename_prefix", origin="comfyui")]
    return WorkflowDetail(name="w", title="W", ok=True, graph=GRAPH,
                          meta={"styles": {"noir": {}, "anime": {}}}, placeholders=uses)


def test_a_field_is_the_services_declaration() -> None:
    spec = field_spec(use("steps", "3.steps", type="int", default=30, min=1, max=10000,
                          help="sampling steps", label="Steps"))
    assert (spec.type, spec.default, spec.minimum, spec.maximum) == ("int", 30, 1, 10000)
    assert (spec.title, spec.help) == ("Steps", "sampling steps")


def test_the_form_asks_the_pool_about_each_sites_class_and_ksampler() -> None:
    assert info_classes(_detail()) == ["CLIPTextEncode", "CheckpointLoaderSimple",
                                       "EmptyLatentImage", "KSampler", "SaveImage", "X"]


def test_fields_are_grouped_and_list_inputs_offer_the_pools_values() -> None:
    plan = plan_form(_detail(), INFO)
    assert [s.name for s in plan.prompts] == ["prompt"]
    assert plan.has_size and plan.seed is not None and plan.styles == ["anime", "noir"]
    tuning = {s.name: s for s in plan.tuning}
    assert list(tuning) == ["steps", "sampler", "scheduler"]
    assert tuning["sampler"].choices == ("euler", "dpmpp_2m")
    assert tuning["scheduler"].choices == ("normal", "karras")  # KSampler's, not the site's
    assert tuning["steps"].choices == ()
    assert [s.name for s in plan.images] == ["main_image"]
    others = {s.name: s for s in plan.other}
    assert others["model"].choices == ("m1", "m2") and others["mood"].choices == ("a", "b")
    assert "year" not in others  # ComfyUI fills its own date tokens


def test_without_the_pools_answer_fields_are_free() -> None:
    plan = plan_form(_detail())
    assert {s.name: s.choices for s in plan.tuning}["sampler"] == ()


def test_combo_reads_both_shapes_and_nothing_else() -> None:
    assert combo(INFO, "KSampler", "sampler_name") == ("euler", "dpmpp_2m")
    assert combo(INFO, "KSampler", "scheduler") == ("normal", "karras")
    assert combo(INFO, "KSampler", "steps") == ()
    assert combo(INFO, "Nope", "x") == () and combo(INFO, "KSampler", "nope") == ()


def test_combo_reads_every_list_input_of_a_real_node_as_the_service_does(
        comfy_url: str) -> None:
    """The panel reads ``/object_info`` with its own code (it runs without the service's):
    every input of every class of a real ComfyUI gets the values the service's
    validation reads."""
    info = requests.get(f"{comfy_url}/object_info", timeout=30).json()
    sites = [(c, name, raw) for c, spec in info.items()
             for part in ("required", "optional")
             for name, raw in ((spec.get("input") or {}).get(part) or {}).items()]
    lists = 0
    for class_type, name, raw in sites:
        spec = InputSpec.parse(raw)
        expected = (spec.values or ()) if spec.kind == "COMBO" else ()
        assert combo(info, class_type, name) == expected, (class_type, name)
        lists += bool(expected)
    assert lists > 20  # the check covered list inputs, not only scalars


def test_the_sizes_offered_are_the_presets_the_service_renders() -> None:
    assert set(ASPECTS) <= set(placeholders.ASPECTS)  # the common ones; the API takes more
    assert TIER_NAMES == tuple(sorted(placeholders.TIERS, key=placeholders.TIERS.__getitem__))
    for aspect in ASPECTS:
        for tier in TIER_NAMES:
            placeholders.resolve_size(aspect=aspect, tier=tier)


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
