"""Compiling a graph once and rendering it per request gives what substitute gives."""

from __future__ import annotations

import base64
import copy
import random
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placeholders.bindings import bind
from placeholders.errors import (
    MalformedGraph,
    MissingValue,
    PlaceholderProblems,
    UnknownPlaceholder,
)
from placeholders.graph import Site
from placeholders.images import UploadRequest
from placeholders.plan import compile_graph
from placeholders.substitute import Replacement, render, substitute

PNG = b"\x89PNG\r\n\x1a\nfake image"


def chains(count: int) -> dict[str, Any]:
    """``count`` copies of a loader, prompt and sampler chain: the same texts many times."""
    graph: dict[str, Any] = {}
    for chain in range(count):
        ckpt, text, sampler = (str(chain * 3 + i) for i in (1, 2, 3))
        graph[ckpt] = {"class_type": "Loader", "inputs": {"ckpt_name": "%model%"}}
        graph[text] = {"class_type": "CLIPTextEncode",
                       "inputs": {"text": "art, %prompt%", "clip": [ckpt, 1]}}
        graph[sampler] = {"class_type": "KSampler", "inputs": {
            "seed": "%seed%", "steps": "%steps%", "model": [ckpt, 0],
            "extra": [{"cfg": "%scale%"}, ["x %prompt%"]]}}
    return graph


def test_a_rendered_plan_equals_substituting_the_graph() -> None:
    graph, bindings = chains(3), bind({"model": "m", "prompt": "a fox", "seed": 4})
    planned = render(compile_graph(graph), bindings, rng=random.Random(1), index=2)
    direct = substitute(graph, bindings, rng=random.Random(1), index=2)
    assert planned.graph == direct.graph
    assert planned.graph["3"]["inputs"]["extra"] == [{"cfg": 7.0}, ["x a fox"]]
    assert (planned.seed, planned.index, planned.warnings) == (6, 2, ())
    assert planned.replacements == direct.replacements
    assert planned == direct


def test_one_plan_serves_many_requests_each_with_its_own_values() -> None:
    graph = chains(2)
    plan = compile_graph(graph)
    for values in ({"model": "a", "prompt": "one"}, {"model": "b", "steps": 9, "seed": 3}):
        bindings = bind(values)
        assert render(plan, bindings, rng=random.Random(5)) == substitute(
            graph, bindings, rng=random.Random(5))


def test_renders_share_no_container_with_the_graph_or_each_other() -> None:
    graph = chains(1)
    before = copy.deepcopy(graph)
    plan = compile_graph(graph)
    first = render(plan, bind({"model": "m"}), rng=random.Random())
    first.graph["3"]["inputs"]["model"].append("changed")
    first.graph["3"]["inputs"]["extra"][1].append("changed")
    second = render(plan, bind({"model": "m"}), rng=random.Random())
    assert second.graph["3"]["inputs"]["model"] == ["1", 0]
    assert second.graph["3"]["inputs"]["extra"][1] == ["x "]
    assert graph == before


def test_later_changes_to_the_graph_do_not_reach_its_plan() -> None:
    graph = chains(1)
    plan = compile_graph(graph)
    graph["1"]["inputs"]["ckpt_name"] = "edited.safetensors"
    graph["2"]["inputs"]["clip"][1] = 7
    rendered = render(plan, bind({"model": "m"}), rng=random.Random()).graph
    assert rendered["1"]["inputs"]["ckpt_name"] == "m"
    assert rendered["2"]["inputs"]["clip"] == ["1", 1]


def test_problems_are_listed_in_graph_order_when_texts_repeat() -> None:
    graph = {
        "1": {"class_type": "X", "inputs": {"a": "%nope%"}},
        "2": {"class_type": "X", "inputs": {"a": "%model%"}},
        "3": {"class_type": "X", "inputs": {"a": "%nope%", "b": "%year%"}},
    }
    with pytest.raises(PlaceholderProblems) as caught:
        render(compile_graph(graph), bind({}), rng=random.Random())
    problems = caught.value.problems
    assert [type(p) for p in problems] == [UnknownPlaceholder, MissingValue, UnknownPlaceholder]
    assert [str(p).split(":")[0] for p in problems] == [f'node {n} (X), input "a"' for n in "123"]


def test_the_report_follows_graph_order_when_texts_repeat() -> None:
    graph = {
        "1": {"class_type": "X", "inputs": {"a": "%steps%"}},
        "2": {"class_type": "X", "inputs": {"a": "%prompt% and %scale%"}},
        "3": {"class_type": "X", "inputs": {"a": "%steps%"}},
    }
    result = render(compile_graph(graph), bind({"prompt": "p"}), rng=random.Random())
    assert result.replacements == (
        Replacement(Site("1", "X", ("a",)), "steps", 20, whole=True),
        Replacement(Site("2", "X", ("a",)), "prompt", "p", whole=False),
        Replacement(Site("2", "X", ("a",)), "scale", "7.0", whole=False),
        Replacement(Site("3", "X", ("a",)), "steps", 20, whole=True),
    )


def test_one_image_text_takes_each_nodes_mode() -> None:
    graph = {
        "1": {"class_type": "ETN_LoadImageBase64", "inputs": {"image": "%char_avatar%"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "%char_avatar%"}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "%char_avatar%"}},
    }
    result = render(compile_graph(graph), bind({"char_avatar": PNG}), rng=random.Random())
    inputs = [result.graph[node]["inputs"]["image"] for node in ("1", "2", "3")]
    assert base64.b64decode(inputs[0]) == PNG
    assert isinstance(inputs[1], UploadRequest) and inputs[1] is inputs[2]
    assert result.uploads == (inputs[1],)


def test_a_graph_marshal_cannot_carry_renders_through_a_walked_copy() -> None:
    marker = UploadRequest("x", b"", "x.png")
    graph = {"1": MappingProxyType({"class_type": "X", "inputs": {"t": "%prompt%", "m": marker}})}
    plan = compile_graph(graph)
    for _ in range(2):
        rendered = render(plan, bind({"prompt": "p"}), rng=random.Random()).graph
        assert rendered == {"1": {"class_type": "X", "inputs": {"t": "p", "m": marker}}}


def test_a_node_that_is_not_api_format_fails_to_compile() -> None:
    with pytest.raises(MalformedGraph) as caught:
        compile_graph({"1": {"class_type": "X", "inputs": {}}, "2": "oops"})
    assert caught.value.node_id == "2"


@given(prompt=st.text(), seeds=st.lists(st.integers(-1, 2**64 - 1), min_size=1, max_size=4))
def test_every_render_of_a_plan_matches_a_fresh_substitution(prompt: str, seeds: list[int]) -> None:
    graph = chains(2)
    plan = compile_graph(graph)
    for index, seed in enumerate(seeds):
        bindings = bind({"prompt": prompt, "seed": seed, "model": "m"})
        planned = render(plan, bindings, rng=random.Random(index), index=index)
        direct = substitute(graph, bindings, rng=random.Random(index), index=index)
        assert planned == direct
