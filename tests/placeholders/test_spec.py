"""Declared placeholders and the coercion of request values to their types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placeholders.errors import InvalidSpec, NotAChoice, OutOfRange, WrongType
from placeholders.images import ImageMode
from placeholders.spec import PlaceholderSpec, ValueType, as_text, coerce

STEPS = PlaceholderSpec("steps", ValueType.INT, 20, minimum=1, maximum=100, help="steps")
SCALE = PlaceholderSpec("scale", ValueType.FLOAT, 7.0, minimum=0, maximum=30)
FLAG = PlaceholderSpec("hires", ValueType.BOOL, False)
TEXT = PlaceholderSpec("style", ValueType.STR, choices=("anime", "photo"))
IMAGE = PlaceholderSpec("ref", ValueType.IMAGE, image_mode=ImageMode.BASE64)
BIG = PlaceholderSpec("seed", ValueType.INT, minimum=0, maximum=2**64 - 1)


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (STEPS, "20", 20),
        (STEPS, " 30 ", 30),
        (STEPS, "+5", 5),
        (STEPS, "25.0", 25),
        (STEPS, 40, 40),
        (STEPS, 41.0, 41),
        (SCALE, "0.5", 0.5),
        (SCALE, "7", 7.0),
        (SCALE, 3, 3.0),
        (FLAG, "true", True),
        (FLAG, "No", False),
        (FLAG, "1", True),
        (FLAG, 0, False),
        (FLAG, True, True),
        (TEXT, "anime", "anime"),
        (IMAGE, b"\x89PNG", b"\x89PNG"),
        (IMAGE, bytearray(b"ab"), b"ab"),
        (IMAGE, "aGVsbG8=", "aGVsbG8="),
    ],
)
def test_coerce_reads_text_and_json_values_as_the_declared_type(
    spec: PlaceholderSpec, raw: object, expected: object
) -> None:
    value = coerce(spec, raw)
    assert value == expected
    assert type(value) is type(expected)


def test_coerce_turns_numbers_given_for_text_into_their_text() -> None:
    assert coerce(PlaceholderSpec("model"), 12) == "12"


def test_seeds_are_never_capped_to_32_bits() -> None:
    assert coerce(BIG, str(2**64 - 1)) == 2**64 - 1
    assert coerce(BIG, 2**40) == 2**40


@pytest.mark.parametrize(
    ("spec", "raw"),
    [
        (STEPS, "twenty"),
        (STEPS, "2.5"),
        (STEPS, True),
        (STEPS, "nan"),
        (STEPS, None),
        (SCALE, "fast"),
        (SCALE, "inf"),
        (SCALE, False),
        (FLAG, "maybe"),
        (FLAG, 2),
        (TEXT, True),
        (TEXT, ["anime"]),
        (IMAGE, 5),
    ],
)
def test_values_of_the_wrong_type_are_refused_naming_placeholder_and_value(
    spec: PlaceholderSpec, raw: object
) -> None:
    with pytest.raises(WrongType) as caught:
        coerce(spec, raw)
    assert caught.value.placeholder == spec.name
    assert caught.value.value == raw
    assert f"%{spec.name}%" in str(caught.value)


def test_a_number_outside_the_declared_range_is_refused_with_the_range() -> None:
    with pytest.raises(OutOfRange) as caught:
        coerce(STEPS, "500")
    assert str(caught.value) == "placeholder %steps%: 500 is out of range; allowed: 1..100 (steps)"


def test_a_value_outside_the_declared_choices_is_refused_with_the_choices() -> None:
    with pytest.raises(NotAChoice) as caught:
        coerce(TEXT, "sketch")
    assert caught.value.hint == "choose one of: anime, photo"


def test_a_default_is_stored_as_the_declared_type() -> None:
    spec = PlaceholderSpec("steps", ValueType.INT, "25")
    assert spec.default == 25


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "bad name"},
        {"name": "%steps%"},
        {"name": "steps", "type": ValueType.INT, "default": "many"},
        {"name": "steps", "type": ValueType.INT, "default": 500, "maximum": 100},
        {"name": "steps", "type": ValueType.INT, "minimum": 10, "maximum": 1},
        {"name": "steps", "type": ValueType.INT, "choices": ("a",)},
        {"name": "ref", "type": ValueType.IMAGE, "default": b"png"},
    ],
)
def test_a_declaration_that_contradicts_itself_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec):
        PlaceholderSpec(**kwargs)  # type: ignore[arg-type]


def test_as_text_spells_values_the_way_json_does() -> None:
    assert [as_text(v) for v in (True, False, 3, 0.5, 1e20, "x")] == [
        "true",
        "false",
        "3",
        "0.5",
        "1e+20",
        "x",
    ]


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_any_seed_written_as_text_reads_back_exactly(seed: int) -> None:
    assert coerce(BIG, str(seed)) == seed


@given(st.floats(min_value=0, max_value=30, allow_nan=False))
def test_any_float_written_as_text_reads_back_exactly(value: float) -> None:
    assert coerce(SCALE, repr(value)) == value
