"""The error tree: every error keeps its context and says what, where and what to do."""

from __future__ import annotations

import pytest

from placeholders import errors
from placeholders.errors import (
    InvalidCustomPlaceholder,
    InvalidSize,
    InvalidSpec,
    InvalidValue,
    MalformedGraph,
    MissingUpload,
    MissingValue,
    NotAChoice,
    OutOfRange,
    PlaceholderError,
    PlaceholderProblems,
    UnknownOption,
    UnknownPlaceholder,
    WrongType,
)
from placeholders.graph import Site

SEED_SITE = Site("3", "KSampler", ("seed",))


def test_every_error_class_derives_from_placeholder_error_and_has_a_docstring() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(classes) >= 14
    for cls in classes:
        assert issubclass(cls, PlaceholderError)
        assert cls.__doc__ and cls.__name__ in (errors.__doc__ or "")


def test_unknown_placeholder_names_node_input_and_a_likely_fix() -> None:
    error = UnknownPlaceholder(SEED_SITE, "sede", suggestion="seed")
    assert str(error) == (
        'node 3 (KSampler), input "seed": unknown placeholder %sede% (did you mean %seed%?)'
    )
    assert (error.site, error.placeholder, error.suggestion) == (SEED_SITE, "sede", "seed")


def test_unknown_placeholder_without_a_close_name_says_how_to_fix_it() -> None:
    error = UnknownPlaceholder(SEED_SITE, "zzz")
    assert str(error).endswith(
        "give it a value, declare it in the workflow's metadata, or remove it"
    )


def test_missing_value_explains_the_placeholder_and_the_remedy() -> None:
    site = Site("4", "CheckpointLoaderSimple", ("ckpt_name",))
    error = MissingValue(site, "model", help="checkpoint file name")
    assert str(error) == (
        'node 4 (CheckpointLoaderSimple), input "ckpt_name": no value for placeholder %model% '
        "(checkpoint file name); give a value or declare a default"
    )


def test_missing_value_suggests_a_given_name_that_was_probably_meant() -> None:
    site = Site("7", "CLIPTextEncode", ("text",))
    error = MissingValue(site, "negative_prompt", suggestion="negativ_prompt")
    assert str(error).endswith("(did you mean %negativ_prompt%?)")


def test_problems_with_one_entry_read_as_that_entry() -> None:
    only = UnknownPlaceholder(SEED_SITE, "sede", "seed")
    assert str(PlaceholderProblems([only])) == str(only)


def test_problems_with_several_entries_list_each_on_its_own_line() -> None:
    first = UnknownPlaceholder(SEED_SITE, "sede", "seed")
    second = MissingValue(Site("4", "Loader", ("ckpt_name",)), "model")
    error = PlaceholderProblems([first, second])
    assert error.problems == (first, second)
    assert str(error).splitlines() == [
        "2 placeholder problems:",
        f"  - {first}",
        f"  - {second}",
    ]


@pytest.mark.parametrize("cls", [WrongType, OutOfRange, NotAChoice])
def test_invalid_values_name_the_placeholder_the_value_and_the_remedy(
    cls: type[InvalidValue],
) -> None:
    error = cls("steps", "twenty", "is not a whole number", "give digits such as 20")
    assert isinstance(error, InvalidValue)
    assert str(error) == (
        "placeholder %steps%: 'twenty' is not a whole number; give digits such as 20"
    )
    assert (error.placeholder, error.value) == ("steps", "twenty")


def test_a_long_received_value_is_shortened_in_the_message() -> None:
    error = WrongType("prompt", b"x" * 500, "is not text")
    assert len(str(error)) < 120
    assert error.value == b"x" * 500


def test_other_errors_word_their_context() -> None:
    assert "%mood%" in str(InvalidSpec("mood", "bad default"))
    assert "'bad find'" in str(InvalidCustomPlaceholder("bad find", "letters only"))
    assert str(MalformedGraph("9", '"inputs" is not an object')).startswith("node 9: ")
    assert "char_avatar" in str(MissingUpload("char_avatar", ["user_avatar"]))
    assert str(UnknownOption("aspect", "5:4", ["1:1", "16:9"])) == (
        "unknown aspect '5:4'; choose one of: 1:1, 16:9"
    )
    assert str(InvalidSize("width must be positive")) == "width must be positive"
