"""Binding a request's values: coercion, precedence, custom texts and seeds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placeholders.bindings import Bindings, bind, seed_for
from placeholders.catalog import CATALOG
from placeholders.custom import Context, CustomPlaceholder
from placeholders.errors import OutOfRange, PlaceholderProblems, WrongType
from placeholders.spec import PlaceholderSpec, ValueType


def test_bind_coerces_command_line_text_to_the_catalog_types() -> None:
    bindings = bind({"steps": "30", "scale": "6.5", "seed": "12", "prompt": "a cat"})
    assert bindings.values == {"steps": 30, "scale": 6.5, "seed": 12, "prompt": "a cat"}


def test_bind_reports_every_bad_value_at_once() -> None:
    with pytest.raises(PlaceholderProblems) as caught:
        bind({"steps": "many", "scale": "-3", "prompt": "fine"})
    problems = caught.value.problems
    assert [type(p) for p in problems] == [WrongType, OutOfRange]
    assert "%steps%" in str(caught.value)
    assert "%scale%" in str(caught.value)


def test_a_none_value_counts_as_not_given() -> None:
    bindings = bind({"steps": None})
    assert "steps" not in bindings.values
    assert bindings.lookup("steps") == 20


def test_declarations_override_the_catalog_by_name() -> None:
    steps = PlaceholderSpec("steps", ValueType.INT, 8, minimum=1, maximum=10)
    bindings = bind(specs=[steps])
    assert bindings.lookup("steps") == 8
    with pytest.raises(PlaceholderProblems):
        bind({"steps": 50}, specs=[steps])


def test_values_for_undeclared_names_pass_through_as_given() -> None:
    bindings = bind({"lora": "detail.safetensors", "strength": 0.8, "ref": b"png"})
    assert bindings.values == {"lora": "detail.safetensors", "strength": 0.8, "ref": b"png"}


def test_an_undeclared_value_that_cannot_go_into_a_graph_is_refused() -> None:
    with pytest.raises(PlaceholderProblems, match="%loras%"):
        bind({"loras": ["a", "b"]})


def test_lookup_prefers_a_given_value_then_a_custom_text_then_the_default() -> None:
    customs = [CustomPlaceholder("sampler", "dpmpp_2m"), CustomPlaceholder("mood", "calm")]
    bindings = bind({"mood": "angry"}, customs=customs)
    assert bindings.lookup("mood") == "angry"
    assert bindings.lookup("sampler") == "dpmpp_2m"
    assert bindings.lookup("scheduler") == "normal"
    assert bindings.lookup("model") is None
    assert bindings.lookup("nobody") is None


def test_custom_texts_are_expanded_with_the_requests_context() -> None:
    customs = [CustomPlaceholder("who", "{{char}} and {{user}}")]
    bindings = bind(customs=customs, context=Context(char="Alice", user="Bob"))
    assert bindings.lookup("who") == "Alice and Bob"


def test_known_names_cover_declared_given_and_custom_names() -> None:
    bindings = bind({"extra": "x"}, customs=[CustomPlaceholder("mood", "calm")])
    assert bindings.known_names() == set(CATALOG) | {"extra", "mood"}


def test_bindings_cannot_be_changed_after_binding() -> None:
    values = {"prompt": "cat"}
    bindings = Bindings(values)
    values["prompt"] = "dog"
    assert bindings.lookup("prompt") == "cat"
    with pytest.raises(TypeError):
        bindings.values["prompt"] = "dog"  # type: ignore[index]


def test_a_random_seed_is_drawn_from_the_callers_random_source() -> None:
    first = seed_for(-1, 0, random.Random(7))
    assert first == seed_for(-1, 0, random.Random(7))
    assert 0 <= first < 2**53


def test_a_fixed_seed_counts_up_with_the_image_index() -> None:
    rng = random.Random(0)
    assert [seed_for(100, i, rng) for i in range(4)] == [100, 101, 102, 103]


def test_a_fixed_seed_wraps_past_the_largest_ksampler_seed() -> None:
    assert seed_for(2**64 - 1, 1, random.Random()) == 0


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(0, 100))
def test_every_derived_seed_is_a_valid_ksampler_seed(seed: int, index: int) -> None:
    assert 0 <= seed_for(seed, index, random.Random()) <= 2**64 - 1
