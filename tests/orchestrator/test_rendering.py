"""Rendering a registered workflow for one request: typed values, seeds, sizes, prompts,
images; every placeholder problem surfaces once, as a SubstitutionError naming the workflow."""

from __future__ import annotations

import base64
import copy
import json
import random
from typing import Any

import pytest

from orchestrator.errors import SubstitutionError
from orchestrator.metadata import WorkflowMeta
from orchestrator.rendering import Rendered, compiled, fill_uploaded, render_workflow
from orchestrator.workflow import Workflow, load_workflow
from placeholders import (
    Context,
    CustomPlaceholder,
    PlaceholderError,
    Plan,
    Prefix,
    UploadRequest,
    compile_graph,
)

TXT2IMG: dict[str, Any] = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": "%seed%", "steps": "%steps%", "cfg": "%scale%", "sampler_name": "%sampler%",
        "scheduler": "%scheduler%", "denoise": "%denoise%", "model": ["4", 0],
        "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "%model%"}},
    "5": {"class_type": "EmptyLatentImage",
          "inputs": {"width": "%width%", "height": "%height%", "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "%prompt%", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode",
          "inputs": {"text": "%negative_prompt%", "clip": ["4", 1]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
}
PNG = b"\x89PNG\r\n\x1a\n-not-really-but-bytes"


def workflow(graph: dict[str, Any] = TXT2IMG, meta: dict[str, Any] | None = None,
             name: str = "wf") -> Workflow:
    return load_workflow(name, json.dumps(graph), None if meta is None else json.dumps(meta))


def render(wf: Workflow, values: dict[str, object] | None = None, **kw: Any) -> Rendered:
    kw.setdefault("rng", random.Random(1))
    return render_workflow(wf, {"model": "m.safetensors", **(values or {})}, **kw)


def test_text_values_become_typed_graph_values() -> None:
    out = render(workflow(), {"steps": "12", "scale": "6.5", "prompt": "a fox", "seed": "5"})
    ks = out.graph["3"]["inputs"]
    assert (ks["steps"], ks["cfg"], ks["seed"], ks["denoise"]) == (12, 6.5, 5, 1.0)
    assert out.graph["6"]["inputs"]["text"] == "a fox"
    assert out.graph["4"]["inputs"]["ckpt_name"] == "m.safetensors"
    assert (out.workflow, out.version, out.index, out.seed) == ("wf", workflow().version, 0, 5)


def test_a_fixed_seed_counts_up_per_image() -> None:
    seeds = [render(workflow(), {"seed": 41}, index=i, count=3).seed for i in range(3)]
    assert seeds == [41, 42, 43]


def test_a_random_seed_comes_from_the_callers_rng_and_is_reported() -> None:
    first = render(workflow(), {"seed": -1}, rng=random.Random(7))
    again = render(workflow(), {"seed": -1}, rng=random.Random(7))
    assert first.seed == again.seed == first.graph["3"]["inputs"]["seed"]
    assert first.seed is not None and first.seed >= 0


def test_the_registered_graph_is_never_changed() -> None:
    wf = workflow()
    before = copy.deepcopy(wf.graph)
    render(wf, {"prompt": "x", "seed": 3})
    assert wf.graph == before


def test_a_missing_value_is_one_substitution_error_naming_workflow_node_and_input() -> None:
    with pytest.raises(SubstitutionError) as info:
        render_workflow(workflow(name="portrait"), {}, rng=random.Random(0))
    assert str(info.value).startswith('portrait: node 4 (CheckpointLoaderSimple), input '
                                      '"ckpt_name": no value for placeholder %model%')
    assert isinstance(info.value.__cause__, PlaceholderError)
    assert info.value.workflow == "portrait" and str(info.value).count("portrait:") == 1


def test_a_value_out_of_range_names_the_placeholder_and_the_limit() -> None:
    with pytest.raises(SubstitutionError, match=r"wf: placeholder %steps%: 0 is out of range"):
        render(workflow(), {"steps": 0})


def test_an_unknown_placeholder_in_the_graph_gets_a_did_you_mean() -> None:
    graph = {**TXT2IMG, "7": {"class_type": "CLIPTextEncode",
                              "inputs": {"text": "%negativ_prompt%", "clip": ["4", 1]}}}
    with pytest.raises(SubstitutionError, match=r"did you mean %negative_prompt%\?"):
        render(workflow(graph))


def test_values_given_but_unused_are_warnings() -> None:
    out = render(workflow(), {"vae": "v.pt"})
    assert out.warnings == ("a value for %vae% was given but the workflow does not use it",)


def test_a_batch_without_a_seed_warns_that_every_image_is_the_same() -> None:
    graph = copy.deepcopy(TXT2IMG)
    graph["3"]["inputs"]["seed"] = 1
    out = render(workflow(graph), count=4)
    assert out.seed is None and "all 4 images render the same graph" in out.warnings[-1]


# --- compiled graphs --------------------------------------------------------------------------


def counting_compiles(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The graphs compiled from now on, in order."""
    compiled_graphs: list[object] = []

    def counting(graph: Any) -> Plan:
        compiled_graphs.append(graph)
        return compile_graph(graph)

    monkeypatch.setattr("orchestrator.rendering.compile_graph", counting)
    return compiled_graphs


def test_a_compiled_workflow_renders_its_plan_without_compiling_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    expected = render(workflow(), {"prompt": "a fox"}).graph
    ready = compiled(workflow())
    compiles = counting_compiles(monkeypatch)
    outs = [render(ready, {"prompt": "a fox"}) for _ in range(3)]
    assert compiles == []
    assert [out.graph for out in outs] == [expected] * 3


def test_a_workflow_without_a_plan_is_compiled_for_each_render(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plain = workflow(name="plain")
    compiles = counting_compiles(monkeypatch)
    render(plain)
    render(plain)
    assert compiles == [plain.graph, plain.graph]


def test_compiling_a_graph_that_is_not_api_format_names_the_workflow() -> None:
    broken = Workflow("broken", {"1": "not a node"}, WorkflowMeta())  # type: ignore[dict-item]
    with pytest.raises(SubstitutionError, match="broken"):
        compiled(broken)


def test_a_new_version_renders_its_own_graph() -> None:
    render(workflow(name="edited"), {"prompt": "a fox"})
    graph = copy.deepcopy(TXT2IMG)
    graph["6"]["inputs"]["text"] = "new: %prompt%"
    out = render(workflow(graph, name="edited"), {"prompt": "a fox"})
    assert out.graph["6"]["inputs"]["text"] == "new: a fox"


def test_workflows_built_by_hand_with_one_name_render_their_own_graphs() -> None:
    for text in ("one %prompt%", "two %prompt%"):
        graph = {"1": {"class_type": "X", "inputs": {"t": text}}}
        out = render(Workflow("hand", graph, WorkflowMeta()), {"prompt": "p"})
        assert out.graph["1"]["inputs"]["t"] == text.replace("%prompt%", "p")


def test_renders_of_one_version_share_no_container() -> None:
    wf = compiled(workflow())
    before = copy.deepcopy(wf.graph)
    first = render(wf)
    first.graph["3"]["inputs"]["model"].append("changed")
    first.graph["5"]["inputs"]["batch_size"] = 9
    assert render(wf).graph["3"]["inputs"]["model"] == ["4", 0]
    assert render(wf).graph["5"]["inputs"]["batch_size"] == 1
    assert wf.graph == before


# --- sizes ------------------------------------------------------------------------------------


def size(out: Rendered) -> tuple[int, int]:
    latent = out.graph["5"]["inputs"]
    return latent["width"], latent["height"]


def test_aspect_and_tier_choose_a_size_within_the_budget() -> None:
    out = render(workflow(), {"aspect": "16:9", "tier": "512"})
    width, height = size(out)
    assert width * height <= 512 * 512 and width % 64 == height % 64 == 0 and width > height
    assert out.warnings == ()  # controls are not "unused placeholder values"


def test_explicit_sizes_snap_to_the_workflows_step() -> None:
    assert size(render(workflow(), {"width": "100", "height": 70})) == (128, 64)
    assert size(render(workflow(meta={"snap": 8}), {"width": 100, "height": 70})) == (104, 72)


def test_one_side_given_keeps_the_other_sides_default() -> None:
    assert size(render(workflow(), {"width": 640})) == (640, 512)


def test_an_unknown_aspect_lists_the_valid_ones() -> None:
    with pytest.raises(SubstitutionError, match=r"wf: unknown aspect '5:1'; choose one of: 1:1"):
        render(workflow(), {"aspect": "5:1"})


def test_a_declared_placeholder_named_like_a_control_is_a_placeholder() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"s": "%style%"}}}
    out = render(workflow(graph, {"placeholders": {"style": {"default": "plain"}}}),
                 {"style": "bold"})
    assert out.graph["1"]["inputs"]["s"] == "bold"


# --- prompts ----------------------------------------------------------------------------------


def prompts(out: Rendered) -> tuple[str, str]:
    return out.graph["6"]["inputs"]["text"], out.graph["7"]["inputs"]["text"]


def test_the_metadata_prefix_wraps_the_users_prompt() -> None:
    wf = workflow(meta={"prompt": {"positive": "masterpiece, {prompt}, 4k", "negative": "lowres"}})
    out = render(wf, {"prompt": "a fox", "negative_prompt": "blurry"})
    assert prompts(out) == ("masterpiece, a fox, 4k", "lowres, blurry")


def test_a_style_preset_and_character_prefixes_nest_inside_the_prefix() -> None:
    wf = workflow(meta={"prompt": {"positive": "best, {prompt}"},
                        "styles": {"anime": {"positive": "anime", "negative": "photo"}}})
    out = render(wf, {"prompt": "at the beach", "style": "anime"},
                 characters=[Prefix("1girl, red hair", "short hair")])
    assert prompts(out) == ("best, anime, 1girl, red hair, at the beach", "photo, short hair")


def test_an_unknown_style_lists_the_workflows_styles() -> None:
    wf = workflow(meta={"styles": {"anime": {}, "photo": {}}})
    with pytest.raises(SubstitutionError, match="unknown style 'oil'; choose one of: anime, photo"):
        render(wf, {"style": "oil"})


# --- custom placeholders ----------------------------------------------------------------------


def test_metadata_custom_placeholders_expand_macros_from_the_context() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"t": "%mood% portrait"}}}
    wf = workflow(graph, {"custom_placeholders": [
        {"find": "mood", "replace": "{{char}} smiling at {{user}}"}]})
    out = render(wf, context=Context(char="Ada", user="Bo"))
    assert out.graph["1"]["inputs"]["t"] == "Ada smiling at Bo portrait"


def test_request_custom_placeholders_override_the_metadatas() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"t": "%mood%"}}}
    wf = workflow(graph, {"custom_placeholders": [{"find": "mood", "replace": "calm"}]})
    out = render(wf, customs=[CustomPlaceholder("mood", "{{getvar::m}}")],
                 context=Context(vars={"m": "wild"}))
    assert out.graph["1"]["inputs"]["t"] == "wild"


# --- images -----------------------------------------------------------------------------------


def test_a_base64_image_input_gets_the_png_as_base64_text() -> None:
    graph = {"1": {"class_type": "ETN_LoadImageBase64", "inputs": {"image": "%char_avatar%"}}}
    out = render(workflow(graph), images={"char_avatar": PNG})
    assert base64.b64decode(out.graph["1"]["inputs"]["image"]) == PNG and out.uploads == ()


def test_an_upload_image_leaves_a_marker_until_the_node_returns_a_name() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "%main_image%"}}}
    wf = workflow(graph, {"placeholders": {"main_image": {"type": "image",
                                                          "image_mode": "upload"}}})
    out = render(wf, images={"main_image": PNG})
    [marker] = out.uploads
    assert isinstance(marker, UploadRequest) and marker.data == PNG
    assert out.graph["1"]["inputs"]["image"] is marker
    filled = fill_uploaded(out, {"main_image": "main_image-abc (1).png"})
    assert filled["1"]["inputs"]["image"] == "main_image-abc (1).png"


def test_an_upload_left_unfilled_is_a_substitution_error() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "%char_avatar%"}}}
    out = render(workflow(graph, name="crop"), images={"char_avatar": PNG})
    with pytest.raises(SubstitutionError, match=r"^crop: image for placeholder %char_avatar% "
                                                r"was not uploaded"):
        fill_uploaded(out, {})
