"""The ``%name%`` token syntax, on plain strings; knows nothing about graphs.

A token is ``%`` + one or more of ``[A-Za-z0-9_]`` + ``%``. Tokens are found left to right
without overlap, so ``"%a%b%"`` holds the single token ``%a%`` followed by ``b%``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

TOKEN = re.compile(r"%([A-Za-z0-9_]+)%")
NAME = re.compile(r"[A-Za-z0-9_]+")


def is_name(text: str) -> bool:
    """True when ``text`` can be a placeholder name (without the surrounding ``%``)."""
    return NAME.fullmatch(text) is not None


def token(name: str) -> str:
    """The token spelling of ``name``: ``token("seed") == "%seed%"``."""
    return f"%{name}%"


def names_in(text: str) -> list[str]:
    """Names of the tokens in ``text``, in order, repeats kept."""
    if "%" not in text:
        return []
    return TOKEN.findall(text)


def whole_name(text: str) -> str | None:
    """The name when ``text`` is exactly one token (``"%steps%"`` → ``"steps"``), else None."""
    match = TOKEN.fullmatch(text)
    return match.group(1) if match else None


def interpolate(text: str, lookup: Callable[[str], str | None]) -> str:
    """Replace each token of ``text`` by ``lookup(name)`` in one pass over the original text.

    Replacement text is never scanned again, so values containing ``%``, ``%other%``, quotes,
    backslashes or newlines land verbatim. A token whose lookup returns None stays as written.
    """
    if "%" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        return match.group(0) if value is None else value

    return TOKEN.sub(replace, text)
