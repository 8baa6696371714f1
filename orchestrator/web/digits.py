"""Decimal numbers in headers, form fields and cursors: ASCII digits only, bounded.

``str.isdigit`` is true for ``"²"`` and ``"٣"``, which ``int`` refuses, and ``int`` refuses
strings of more than 4,300 digits however they are checked: both were 500s. HTTP's
``DIGIT`` is ``0-9`` (RFC 5234), so anything else is not a number here.
"""

from __future__ import annotations

import re

# 18 digits always fit SQLite's signed 64-bit INTEGER and are far past any file size,
# event number or retention a request can mean.
MAX_DIGITS = 18
_DIGITS = re.compile(r"[0-9]+")


def is_decimal(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits (no sign, no spaces)."""
    return _DIGITS.fullmatch(text) is not None


def parse_decimal(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """``text`` as a non-negative int; None unless it is 1 to ``max_digits`` ASCII digits."""
    if len(text) > max_digits or not is_decimal(text):
        return None
    return int(text)


def clamped_decimal(text: str, *, ceiling: int = 10**MAX_DIGITS) -> int | None:
    """``text`` as a non-negative int capped at ``ceiling``, for numbers whose size past a
    point no longer matters (a byte position beyond any file); None unless ASCII digits."""
    if not is_decimal(text):
        return None
    if len(text) > len(str(ceiling)):
        return ceiling
    return min(int(text), ceiling)
