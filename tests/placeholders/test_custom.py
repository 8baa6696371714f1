"""Custom find/replace placeholders and the macros their replacements may use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placeholders.custom import (
    Context,
    CustomPlaceholder,
    custom_values,
    expand_macros,
    parse_customs,
)
from placeholders.errors import InvalidCustomPlaceholder

ALICE = Context(
    char="Alice", user="Bob", vars={"mood": "cheerful"}, globalvars={"style": "watercolor"}
)


def test_char_and_user_macros_take_the_names_from_the_context() -> None:
    assert expand_macros("{{char}} waves at {{user}}", ALICE) == "Alice waves at Bob"


def test_macro_keywords_are_case_insensitive() -> None:
    assert expand_macros("{{Char}} {{USER}} {{GetVar::mood}}", ALICE) == "Alice Bob cheerful"


def test_getvar_and_getglobalvar_read_the_contexts_variables() -> None:
    text = "{{getvar::mood}} in {{getglobalvar::style}}"
    assert expand_macros(text, ALICE) == "cheerful in watercolor"


def test_variable_names_are_trimmed_but_case_sensitive() -> None:
    assert expand_macros("{{getvar:: mood }}|{{getvar::Mood}}", ALICE) == "cheerful|"


def test_an_unknown_variable_reads_as_empty_text_like_sillytavern() -> None:
    assert expand_macros("a{{getvar::nope}}b{{getglobalvar::nope}}c", ALICE) == "abc"


def test_macros_we_do_not_know_are_left_as_written() -> None:
    text = "{{random::a,b}} {{time}} {{char"
    assert expand_macros(text, ALICE) == text


def test_variable_values_are_inserted_verbatim_and_not_expanded_again() -> None:
    context = Context(char="{{user}}", user="Bob", vars={"v": "{{char}} %prompt%"})
    assert expand_macros("{{char}}|{{getvar::v}}", context) == "{{user}}|{{char}} %prompt%"


def test_a_context_cannot_be_changed_through_its_variables() -> None:
    variables = {"mood": "calm"}
    context = Context(vars=variables)
    variables["mood"] = "angry"
    assert context.vars["mood"] == "calm"
    with pytest.raises(TypeError):
        context.vars["mood"] = "x"  # type: ignore[index]


def test_a_find_may_be_written_with_or_without_percent_signs() -> None:
    assert CustomPlaceholder("%mood%", "x").name == "mood"
    assert CustomPlaceholder("mood", "x").name == "mood"


@pytest.mark.parametrize("find", ["", "two words", "%half", "a-b"])
def test_a_find_that_is_not_a_placeholder_name_is_refused(find: str) -> None:
    with pytest.raises(InvalidCustomPlaceholder) as caught:
        CustomPlaceholder(find, "x")
    assert caught.value.find == find


def test_a_replace_that_is_not_text_is_refused() -> None:
    with pytest.raises(InvalidCustomPlaceholder, match="replace must be text"):
        CustomPlaceholder("mood", 5)  # type: ignore[arg-type]


def test_parse_customs_reads_a_plain_mapping() -> None:
    assert parse_customs({"mood": "calm", "%place%": "beach"}) == [
        CustomPlaceholder("mood", "calm"),
        CustomPlaceholder("place", "beach"),
    ]


def test_parse_customs_reads_sillytaverns_find_replace_list() -> None:
    raw = [{"find": "mood", "replace": "cheerful {{char}}"}]
    assert parse_customs(raw) == [CustomPlaceholder("mood", "cheerful {{char}}")]


def test_parse_customs_names_an_entry_without_find_or_replace() -> None:
    with pytest.raises(InvalidCustomPlaceholder, match='"find" and "replace"'):
        parse_customs([{"find": "mood"}])


def test_custom_values_expand_macros_and_let_later_pairs_override() -> None:
    customs = [CustomPlaceholder("mood", "calm"), CustomPlaceholder("mood", "{{char}} smiles")]
    assert custom_values(customs, ALICE) == {"mood": "Alice smiles"}


@given(st.text())
def test_text_without_macros_is_returned_unchanged(text: str) -> None:
    plain = text.replace("{", "(")
    assert expand_macros(plain, ALICE) == plain


@given(st.text())
def test_any_variable_value_lands_verbatim(value: str) -> None:
    context = Context(vars={"v": value})
    assert expand_macros("[{{getvar::v}}]", context) == f"[{value}]"
