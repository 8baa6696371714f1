"""Declared placeholders: name, type, default, limits, help; and coercion of given values.

Request values arrive as text from a command line (``--set steps=20``) or as JSON values from
a REST body. :func:`coerce` turns either into the declared type and checks range and choices,
so everything past it can trust the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from placeholders.errors import InvalidSpec, InvalidValue, NotAChoice, OutOfRange, WrongType
from placeholders.images import ImageMode
from placeholders.syntax import is_name

Value = str | int | float | bool
"""What a non-image placeholder puts into a graph."""

Given = Value | bytes
"""What a caller may give: a value, or image bytes for an ``image`` placeholder."""


class ValueType(StrEnum):
    """The declared type of a placeholder."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    IMAGE = "image"


@dataclass(frozen=True)
class PlaceholderSpec:
    """One declared placeholder. ``default`` None means the value must be given.

    ``minimum``/``maximum`` apply to int and float; ``choices`` (when not empty) lists the
    only values allowed. ``image_mode`` applies to ``image`` placeholders. Raises InvalidSpec
    when the name is not ``[A-Za-z0-9_]+`` or the default or a choice breaks the declaration.
    """

    name: str
    type: ValueType = ValueType.STR
    default: Given | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[Value, ...] = ()
    help: str = ""
    image_mode: ImageMode = ImageMode.AUTO

    def __post_init__(self) -> None:
        if not is_name(self.name):
            raise InvalidSpec(self.name, "a name may only hold letters, digits and _")
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and low > high:
            raise InvalidSpec(self.name, f"minimum {low} is above maximum {high}")
        object.__setattr__(self, "choices", tuple(self._checked(c) for c in self.choices))
        if self.default is not None:
            object.__setattr__(self, "default", self._checked(self.default))

    def _checked(self, raw: Given) -> Value:
        try:
            value = coerce(self, raw)
        except InvalidValue as exc:
            raise InvalidSpec(self.name, f"default or choice {exc.value!r} {exc.reason}") from exc
        if isinstance(value, bytes):
            raise InvalidSpec(self.name, "image bytes cannot be a default or a choice")
        return value


def coerce(spec: PlaceholderSpec, raw: object) -> Given:
    """``raw`` as ``spec``'s type, checked against its range and choices.

    Text is parsed (``"20"`` → 20, ``"0.5"`` → 0.5, ``"true"`` → True); numbers are never
    capped to 32 bits. An image takes bytes, or a string passed on verbatim (an already
    encoded base64 image or a filename already on the server). Raises WrongType, OutOfRange
    or NotAChoice naming the placeholder and the value received.
    """
    value = _READERS[spec.type](spec.name, raw)
    _check_range(spec, value)
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(as_text(choice) for choice in spec.choices)
        raise NotAChoice(spec.name, raw, "is not allowed", f"choose one of: {allowed}")
    return value


def as_text(value: Value) -> str:
    """``value`` as it reads inside text: JSON spelling for booleans, shortest float form."""
    if value is True or value is False:
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


def _read_str(name: str, raw: object) -> Given:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return as_text(raw)
    raise WrongType(name, raw, "is not text", "give a string")


def _read_int(name: str, raw: object) -> Given:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    number = _decimal(raw)
    if number is None or number != number.to_integral_value():
        raise WrongType(name, raw, "is not a whole number", "give digits such as 20")
    return int(number)


def _decimal(raw: object) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, str | float):
        return None
    try:
        number = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _read_float(name: str, raw: object) -> Given:
    number: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        number = float(raw)
    elif isinstance(raw, str):
        number = _parse_float(raw)
    if number is None or not math.isfinite(number):
        raise WrongType(name, raw, "is not a number", "give a number such as 0.5")
    return number


def _parse_float(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _read_bool(name: str, raw: object) -> Given:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().casefold() if isinstance(raw, str | int) else None
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise WrongType(name, raw, "is not a yes/no value", "give true or false")


def _read_image(name: str, raw: object) -> Given:
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, str):
        return raw
    raise WrongType(name, raw, "is not image data", "give the PNG file's bytes")


_READERS: dict[ValueType, Callable[[str, object], Given]] = {
    ValueType.STR: _read_str,
    ValueType.INT: _read_int,
    ValueType.FLOAT: _read_float,
    ValueType.BOOL: _read_bool,
    ValueType.IMAGE: _read_image,
}


def _check_range(spec: PlaceholderSpec, value: Given) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, high = spec.minimum, spec.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{'' if low is None else low}..{'' if high is None else high}"
        help = f" ({spec.help})" if spec.help else ""
        raise OutOfRange(spec.name, value, "is out of range", f"allowed: {span}{help}")
