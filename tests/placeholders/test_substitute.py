"""Substituting a graph: typed whole values, verbatim text, seeds, images and the report."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placeholders.bindings import bind
from placeholders.custom import Context, CustomPlaceholder
from placeholders.errors import MissingValue, PlaceholderProblems, UnknownPlaceholder
from placeholders.graph import Site
from placeholders.images import ImageMode, UploadRequest, fill_uploads
from placeholders.spec import PlaceholderSpec, ValueType
from placeholders.substitute import Replacement, substitute, substitute_batch

PIECES = [*'%ab_1 "\\\n\t{},😀é', "%prompt%", "%seed%", "\\n", "%%", "\\u0000", "{{char}}"]
TRICKY_TEXT = st.lists(st.sampled_from(PIECES)).map("".join) | st.text()
PNG = b"\x89PNG\r\n\x1a\nfake image"


def text_to_image() -> dict[str, Any]:
    """SillyTavern's default text-to-image workflow, in API format."""
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": "%seed%",
                "steps": "%steps%",
                "cfg": "%scale%",
                "sampler_name": "%sampler%",
                "scheduler": "%scheduler%",
                "denoise": "%denoise%",
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "%model%"}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": "%width%", "height": "%height%", "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "%prompt%", "clip": ["4", 1]}},
        "7": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "%negative_prompt%", "clip": ["4", 1]},
        },
        "9": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "ST/%year%-%month%", "images": ["8", 0]},
        },
    }


def render(graph: dict[str, Any], values: dict[str, object], **kwargs: Any) -> dict[str, Any]:
    return substitute(graph, bind(values, **kwargs), rng=random.Random(0)).graph


def test_whole_value_tokens_become_values_of_the_declared_type() -> None:
    graph = render(text_to_image(), {"model": "sd15.safetensors", "steps": "30", "seed": "5"})
    assert graph["3"]["inputs"] | {"model": None, "positive": None} == {
        "seed": 5,
        "steps": 30,
        "cfg": 7.0,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
        "model": None,
        "positive": None,
        "negative": ["7", 0],
        "latent_image": ["5", 0],
    }
    assert graph["5"]["inputs"] == {"width": 512, "height": 512, "batch_size": 1}
    assert graph["4"]["inputs"]["ckpt_name"] == "sd15.safetensors"


def test_a_declared_bool_placeholder_becomes_a_json_boolean() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"on": "%hires%", "note": "hires=%hires%"}}}
    spec = PlaceholderSpec("hires", ValueType.BOOL, False)
    assert render(graph, {"hires": "yes"}, specs=[spec])["1"]["inputs"] == {
        "on": True,
        "note": "hires=true",
    }


def test_embedded_tokens_are_written_as_text() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"t": "photo of %prompt%, %steps% steps"}}}
    assert render(graph, {"prompt": "a cat", "steps": 12})["1"]["inputs"]["t"] == (
        "photo of a cat, 12 steps"
    )


def test_tokens_inside_nested_lists_and_objects_are_filled() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"l": [{"w": "%scale%"}, ["%prompt%", "b"]]}}}
    assert render(graph, {"prompt": "p"})["1"]["inputs"]["l"] == [{"w": 7.0}, ["p", "b"]]


def test_clip_skip_counts_layers_from_the_end_like_sillytavern() -> None:
    graph = {
        "1": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": "%clip_skip%"}}
    }
    assert render(graph, {"clip_skip": "2"})["1"]["inputs"]["stop_at_clip_layer"] == -2
    assert render(graph, {})["1"]["inputs"]["stop_at_clip_layer"] == -1


def test_comfyuis_own_filename_tokens_are_left_for_comfyui() -> None:
    graph = render(text_to_image(), {"model": "m"})
    assert graph["9"]["inputs"]["filename_prefix"] == "ST/%year%-%month%"


def test_custom_placeholders_fill_tokens_with_their_expanded_text() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"t": "%mood% portrait", "w": "%mood%"}}}
    customs = [CustomPlaceholder("mood", "{{char}} smiling")]
    rendered = render(graph, {}, customs=customs, context=Context(char="Alice"))
    assert rendered["1"]["inputs"] == {"t": "Alice smiling portrait", "w": "Alice smiling"}


def test_every_missing_or_unknown_token_is_reported_together() -> None:
    graph = text_to_image()
    graph["3"]["inputs"]["seed"] = "%sede%"
    graph["7"]["inputs"]["text"] = "%negativ_prompt%, blurry"
    with pytest.raises(PlaceholderProblems) as caught:
        substitute(graph, bind({}), rng=random.Random())
    problems = caught.value.problems
    assert [type(p) for p in problems] == [UnknownPlaceholder, MissingValue, UnknownPlaceholder]
    assert str(problems[0]) == (
        'node 3 (KSampler), input "seed": unknown placeholder %sede% (did you mean %seed%?)'
    )
    assert (
        'node 4 (CheckpointLoaderSimple), input "ckpt_name": no value for placeholder %model%'
        in (str(problems[1]))
    )
    assert str(problems[2]).endswith("(did you mean %negative_prompt%?)")
    assert str(caught.value).startswith("3 placeholder problems:")


def test_a_missing_value_suggests_a_misspelt_name_given_in_the_request() -> None:
    graph = {"4": {"class_type": "Loader", "inputs": {"ckpt_name": "%model%"}}}
    with pytest.raises(PlaceholderProblems) as caught:
        substitute(graph, bind({"modle": "x"}), rng=random.Random())
    problem = caught.value.problems[0]
    assert isinstance(problem, MissingValue)
    assert problem.suggestion == "modle"


def test_a_token_repeated_in_one_string_is_reported_once() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"t": "%nope% and %nope%"}}}
    with pytest.raises(PlaceholderProblems) as caught:
        substitute(graph, bind({}), rng=random.Random())
    assert len(caught.value.problems) == 1


def test_values_given_but_unused_are_warnings_not_errors() -> None:
    result = substitute(text_to_image(), bind({"model": "m", "lora": "x"}), rng=random.Random())
    assert result.warnings == ("a value for %lora% was given but the workflow does not use it",)


def test_the_report_lists_each_replacement_with_its_site() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"a": "%steps%", "b": ["x %prompt%"]}}}
    result = substitute(graph, bind({"prompt": "cat"}), rng=random.Random())
    assert result.replacements == (
        Replacement(Site("1", "X", ("a",)), "steps", 20, whole=True),
        Replacement(Site("1", "X", ("b", 0)), "prompt", "cat", whole=False),
    )


def test_the_result_cannot_be_changed() -> None:
    result = substitute(text_to_image(), bind({"model": "m"}), rng=random.Random())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.seed = 1  # type: ignore[misc]


def test_a_random_seed_is_drawn_from_the_callers_random_and_reported() -> None:
    bindings = bind({"model": "m"})
    first = substitute(text_to_image(), bindings, rng=random.Random(42))
    again = substitute(text_to_image(), bindings, rng=random.Random(42))
    assert first.seed == again.seed == first.graph["3"]["inputs"]["seed"]
    assert first.seed is not None and 0 <= first.seed < 2**53


def test_a_graph_without_seed_reports_no_seed() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"t": "%prompt%"}}}
    assert substitute(graph, bind({}), rng=random.Random()).seed is None


def test_a_batch_with_a_fixed_seed_counts_up_from_it() -> None:
    batch = substitute_batch(
        text_to_image(), bind({"model": "m", "seed": 7}), rng=random.Random(), count=4
    )
    assert [r.seed for r in batch] == [7, 8, 9, 10]
    assert [r.graph["3"]["inputs"]["seed"] for r in batch] == [7, 8, 9, 10]
    assert [r.index for r in batch] == [0, 1, 2, 3]


def test_a_batch_with_a_random_seed_draws_a_fresh_seed_per_image() -> None:
    batch = substitute_batch(text_to_image(), bind({"model": "m"}), rng=random.Random(1), count=3)
    seeds = [r.seed for r in batch]
    assert len(set(seeds)) == 3


def test_one_image_of_a_batch_can_be_rendered_on_its_own() -> None:
    result = substitute(
        text_to_image(), bind({"model": "m", "seed": 7}), rng=random.Random(), index=2
    )
    assert (result.seed, result.index) == (9, 2)


def test_a_batch_without_a_seed_placeholder_warns_that_images_will_repeat() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"t": "%prompt%"}}}
    batch = substitute_batch(graph, bind({}), rng=random.Random(), count=2)
    assert all("no %seed%" in r.warnings[-1] for r in batch)


def test_a_batch_of_zero_renders_nothing() -> None:
    assert (
        substitute_batch(text_to_image(), bind({"model": "m"}), rng=random.Random(), count=0) == ()
    )


def avatar_graph() -> dict[str, Any]:
    return {
        "10": {"class_type": "ETN_LoadImageBase64", "inputs": {"image": "%char_avatar%"}},
        "11": {"class_type": "LoadImage", "inputs": {"image": "%char_avatar%"}},
        "12": {"class_type": "LoadImage", "inputs": {"image": "%user_avatar%"}},
        "13": {"class_type": "Note", "inputs": {"text": "avatar: %user_avatar%"}},
    }


def test_avatars_become_base64_or_upload_markers_by_node() -> None:
    result = substitute(
        avatar_graph(), bind({"char_avatar": PNG, "user_avatar": b"u"}), rng=random.Random()
    )
    inputs = {node: result.graph[node]["inputs"] for node in result.graph}
    assert base64.b64decode(inputs["10"]["image"]) == PNG
    assert isinstance(inputs["11"]["image"], UploadRequest)
    assert inputs["11"]["image"].data == PNG
    assert inputs["13"]["text"] == "avatar: " + base64.b64encode(b"u").decode()
    assert [u.placeholder for u in result.uploads] == ["char_avatar", "user_avatar"]


def test_upload_markers_filled_with_filenames_give_a_json_ready_graph() -> None:
    result = substitute(
        avatar_graph(), bind({"char_avatar": PNG, "user_avatar": b"u"}), rng=random.Random()
    )
    filled = fill_uploads(result.graph, {"char_avatar": "c.png", "user_avatar": "u.png"})
    assert filled["11"]["inputs"]["image"] == "c.png"
    assert json.loads(json.dumps(filled)) == filled


def test_a_declared_image_mode_overrides_the_node_based_choice() -> None:
    spec = PlaceholderSpec("ref", ValueType.IMAGE, image_mode=ImageMode.UPLOAD)
    graph = {"1": {"class_type": "ETN_LoadImageBase64", "inputs": {"image": "%ref%"}}}
    result = substitute(graph, bind({"ref": PNG}, specs=[spec]), rng=random.Random())
    assert isinstance(result.graph["1"]["inputs"]["image"], UploadRequest)


def test_an_image_given_as_text_is_written_verbatim() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "%char_avatar%"}}}
    result = substitute(graph, bind({"char_avatar": "already/there.png"}), rng=random.Random())
    assert result.graph["1"]["inputs"]["image"] == "already/there.png"
    assert result.uploads == ()


@given(prompt=TRICKY_TEXT, negative=TRICKY_TEXT)
def test_any_text_value_survives_rendering_and_a_json_round_trip_verbatim(
    prompt: str, negative: str
) -> None:
    graph = text_to_image()
    graph["7"]["inputs"]["text"] = "bad, %negative_prompt%, worse"
    values = {"prompt": prompt, "negative_prompt": negative, "model": "m"}
    rendered = substitute(graph, bind(values), rng=random.Random()).graph
    again = json.loads(json.dumps(rendered))
    assert again["6"]["inputs"]["text"] == prompt
    assert again["7"]["inputs"]["text"] == f"bad, {negative}, worse"


@given(node_id=st.text(), index=st.integers(min_value=0), value=TRICKY_TEXT)
def test_link_arrays_are_never_touched(node_id: str, index: int, value: str) -> None:
    graph = {"1": {"class_type": "X", "inputs": {"a": [node_id, index], "b": "%prompt%"}}}
    rendered = substitute(graph, bind({"prompt": value}), rng=random.Random()).graph
    assert rendered["1"]["inputs"]["a"] == [node_id, index]


@given(prompt=TRICKY_TEXT, seed=st.integers(min_value=-1, max_value=2**64 - 1))
def test_the_input_graph_is_never_mutated(prompt: str, seed: int) -> None:
    graph = text_to_image()
    graph["6"]["inputs"]["extra"] = [{"deep": "%prompt% %seed%"}, ["6", 0]]
    before = copy.deepcopy(graph)
    rendered = substitute(
        graph, bind({"prompt": prompt, "seed": seed, "model": "m"}), rng=random.Random()
    )
    assert graph == before
    rendered.graph["6"]["inputs"]["extra"][0]["deep"] = "changed"
    assert graph == before


@given(seed=st.integers(min_value=0, max_value=2**64 - 1), count=st.integers(1, 8))
def test_a_fixed_seed_gives_consecutive_seeds_per_image(seed: int, count: int) -> None:
    batch = substitute_batch(
        text_to_image(), bind({"seed": seed, "model": "m"}), rng=random.Random(), count=count
    )
    assert [r.seed for r in batch] == [(seed + i) % 2**64 for i in range(count)]
