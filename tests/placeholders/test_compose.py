"""Composing final prompts from user text, prefixes, characters and style presets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placeholders.compose import (
    ComposedPrompt,
    Prefix,
    StylePreset,
    compose,
    find_style,
    join,
    wrap,
)
from placeholders.errors import UnknownOption

ANIME = StylePreset("anime", "anime style, {prompt}, cel shading", "photo, realistic")
PHOTO = StylePreset("photo", "RAW photo", "cartoon")


def test_a_prefix_without_a_slot_is_followed_by_the_text() -> None:
    assert wrap("masterpiece, best quality", "a cat") == "masterpiece, best quality, a cat"


def test_a_prefix_with_a_slot_receives_the_text_there() -> None:
    assert wrap("masterpiece, {prompt}, 4k", "a cat") == "masterpiece, a cat, 4k"


def test_empty_text_in_a_slot_leaves_no_dangling_commas() -> None:
    assert wrap("masterpiece, {prompt}, 4k", "") == "masterpiece, 4k"
    assert wrap("{prompt}, 4k", " ") == "4k"
    assert wrap("{prompt}", "") == ""


def test_empty_prefix_or_text_is_skipped_cleanly() -> None:
    assert wrap("", "a cat") == "a cat"
    assert wrap("masterpiece,", "") == "masterpiece"
    assert wrap("", "") == ""


def test_join_drops_empty_parts_and_edge_commas() -> None:
    assert join("a, ", "", " ,b", "  ") == "a, b"


def test_compose_nests_common_style_characters_and_prompt() -> None:
    result = compose(
        "at the beach",
        "blurry",
        common=Prefix("masterpiece, {prompt}, 4k", "lowres"),
        characters=[Prefix("1girl, red hair", "extra arms")],
        style=ANIME,
    )
    assert result == ComposedPrompt(
        "masterpiece, anime style, 1girl, red hair, at the beach, cel shading, 4k",
        "lowres, photo, realistic, extra arms, blurry",
    )


def test_compose_without_layers_returns_the_users_texts_trimmed() -> None:
    assert compose(" a cat ", "") == ComposedPrompt("a cat", "")


def test_compose_joins_several_characters_in_order() -> None:
    result = compose("hugging", characters=[Prefix("Alice"), Prefix(""), Prefix("Bob")])
    assert result.positive == "Alice, Bob, hugging"


def test_compose_with_an_empty_prompt_keeps_the_prefixes_only() -> None:
    result = compose("", common=Prefix("masterpiece, {prompt}", "lowres"), style=PHOTO)
    assert result == ComposedPrompt("masterpiece, RAW photo", "lowres, cartoon")


def test_find_style_returns_the_named_preset() -> None:
    assert find_style([ANIME, PHOTO], "photo") is PHOTO


def test_an_unknown_style_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownOption) as caught:
        find_style([ANIME, PHOTO], "oil")
    assert str(caught.value) == "unknown style 'oil'; choose one of: anime, photo"


SAFE_TEXT = st.text(min_size=1).map(lambda t: t.strip(" ,\t\r\n")).filter(bool)


@given(SAFE_TEXT)
def test_user_text_inside_a_slot_lands_verbatim(text: str) -> None:
    assert wrap("masterpiece, {prompt}, 4k", text) == f"masterpiece, {text}, 4k"


@given(st.lists(st.sampled_from(["", " ", ",", "a", "b c", " , "]), max_size=6))
def test_joined_text_never_has_empty_entries(parts: list[str]) -> None:
    joined = join(*parts)
    assert not joined.startswith(",")
    assert not joined.endswith(",")
    assert ", ," not in joined
