"""Tokens in plain strings: finding them and interpolating them in one pass."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from placeholders.syntax import interpolate, is_name, names_in, token, whole_name

PIECES = [*'%ab_1 "\\\n\t{},😀é', "%prompt%", "%seed%", "\\n", "%%", "\\u0000", "{{char}}"]
TRICKY_TEXT = st.lists(st.sampled_from(PIECES)).map("".join) | st.text()


def test_names_in_finds_tokens_left_to_right_with_repeats() -> None:
    assert names_in("a %prompt%, %seed% and %prompt%") == ["prompt", "seed", "prompt"]


def test_names_in_ignores_percent_signs_that_do_not_form_a_name() -> None:
    assert names_in("100% sure, 50 % off, %% and %date:yyyy%") == []


def test_overlapping_tokens_resolve_left_to_right() -> None:
    assert names_in("%a%b%") == ["a"]


def test_whole_name_recognises_a_string_that_is_exactly_one_token() -> None:
    assert whole_name("%steps%") == "steps"
    assert whole_name(" %steps%") is None
    assert whole_name("%steps%%seed%") is None
    assert whole_name("steps") is None


def test_is_name_accepts_letters_digits_and_underscore_only() -> None:
    assert is_name("lora_1")
    assert not is_name("")
    assert not is_name("with space")
    assert not is_name("%x%")


def test_token_spells_a_name_with_percent_signs() -> None:
    assert token("seed") == "%seed%"


def test_interpolate_replaces_known_tokens_and_keeps_unknown_ones() -> None:
    values = {"prompt": "a cat"}
    assert interpolate("photo of %prompt%, %style%", values.get) == "photo of a cat, %style%"


def test_interpolate_does_not_rescan_inserted_text() -> None:
    values = {"a": "%b%", "b": "never"}
    assert interpolate("%a% %b%", values.get) == "%b% never"


def test_interpolate_keeps_backslash_sequences_in_values_literal() -> None:
    assert interpolate("%p%", {"p": r"\1 \g<0> \n"}.get) == r"\1 \g<0> \n"


@given(value=TRICKY_TEXT, before=TRICKY_TEXT, after=TRICKY_TEXT)
def test_any_value_lands_verbatim_between_any_surrounding_text(
    value: str, before: str, after: str
) -> None:
    template = f"{before.replace('%', '')}%prompt%{after.replace('%', '')}"
    result = interpolate(template, {"prompt": value}.get)
    assert result == template.replace("%prompt%", value)


@given(text=TRICKY_TEXT)
def test_text_without_known_tokens_is_returned_unchanged(text: str) -> None:
    assert interpolate(text, lambda name: None) == text
