"""Finding a raw graph's seed inputs and setting a new seed in them."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import WorkflowFormatError
from orchestrator.seeds import reseeded, seed_sites
from tests import graphs

SEED_SPEC = ["INT", {"default": 0, "min": 0, "max": 2**64 - 1, "control_after_generate": True}]
OBJECT_INFO: dict[str, Any] = {
    "Noisy": {"input": {"required": {"seed": SEED_SPEC, "width": SEED_SPEC},
                        "optional": {"extra_seed": SEED_SPEC}}},
    "Plain": {"input": {"required": {"seed": ["INT", {"default": 0}]}}},
}


def test_known_sampler_inputs_are_seeds_without_object_info() -> None:
    graph = graphs.txt2img(seed=5)
    graph["10"] = {"class_type": "RandomNoise", "inputs": {"noise_seed": 3}}
    assert seed_sites(graph, {}) == [("3", "seed"), ("10", "noise_seed")]


def test_seed_named_inputs_that_comfyui_rerolls_are_seeds() -> None:
    graph = {"1": {"class_type": "Noisy", "inputs": {"seed": 1, "width": 2, "extra_seed": 3}},
             "2": {"class_type": "Plain", "inputs": {"seed": 4}}}
    assert seed_sites(graph, OBJECT_INFO) == [("1", "seed"), ("1", "extra_seed")]


def test_linked_and_non_integer_values_are_left_alone() -> None:
    graph = graphs.txt2img()
    graph["3"]["inputs"]["seed"] = ["12", 0]
    assert seed_sites(graph, OBJECT_INFO) == []


def test_reseeded_sets_every_seed_and_leaves_the_given_graph_unchanged() -> None:
    graph = graphs.txt2img(seed=5)
    new = reseeded(graph, {}, 2**64 - 1)
    assert new["3"]["inputs"]["seed"] == 2**64 - 1 and graph["3"]["inputs"]["seed"] == 5
    assert {k: v for k, v in new.items() if k != "3"} == {
        k: v for k, v in graph.items() if k != "3"}


def test_a_graph_without_seed_inputs_is_refused_naming_it() -> None:
    with pytest.raises(WorkflowFormatError, match="no seed input found") as caught:
        reseeded(graphs.solid_image(), OBJECT_INFO, 7, source="the graph of job j1")
    assert caught.value.source == "the graph of job j1"
