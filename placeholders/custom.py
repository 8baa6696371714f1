"""Custom placeholders: find/replace pairs whose replacement text may use macros.

Pairs come from a workflow's metadata or from a request, as SillyTavern's ComfyUI source
defines them: ``{"find": "mood", "replace": "cheerful {{char}}"}`` fills ``%mood%``. The
replacement is always text. Macros resolved from the request's :class:`Context`:

- ``{{char}}``, ``{{user}}``: the character's and the user's names;
- ``{{getvar::name}}``, ``{{getglobalvar::name}}``: a chat or global variable; an unknown
  variable reads as empty text, as in SillyTavern.

Macro keywords are case-insensitive, variable names are not. Any other ``{{...}}`` is left
as written: it is not ours to interpret, and leaving it visible shows the author it did not
apply. Expansion is one pass, so variable values are inserted verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from placeholders.errors import InvalidCustomPlaceholder
from placeholders.syntax import TOKEN, is_name

_MACRO = re.compile(r"\{\{(char|user|getvar::([^{}]*)|getglobalvar::([^{}]*))\}\}", re.IGNORECASE)


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Context:
    """Who is talking and the chat's variables, as a request supplies them."""

    char: str = ""
    user: str = ""
    vars: Mapping[str, str] = field(default_factory=dict)
    globalvars: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vars", _frozen(self.vars))
        object.__setattr__(self, "globalvars", _frozen(self.globalvars))


@dataclass(frozen=True)
class CustomPlaceholder:
    """Fill ``%name%`` with ``replace`` after macro expansion.

    ``name`` may be given with or without the surrounding ``%``; raises
    InvalidCustomPlaceholder when it is not ``[A-Za-z0-9_]+`` or ``replace`` is not text.
    """

    name: str
    replace: str

    def __post_init__(self) -> None:
        whole = TOKEN.fullmatch(self.name)
        if whole:
            object.__setattr__(self, "name", whole.group(1))
        if not is_name(self.name):
            raise InvalidCustomPlaceholder(self.name, "find may only hold letters, digits and _")
        if not isinstance(self.replace, str):
            raise InvalidCustomPlaceholder(self.name, "replace must be text")


def expand_macros(text: str, context: Context) -> str:
    """``text`` with the macros above resolved from ``context``; others left as written."""
    if "{{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        keyword = match.group(1).casefold()
        if keyword == "char":
            return context.char
        if keyword == "user":
            return context.user
        if match.group(2) is not None:
            return context.vars.get(match.group(2).strip(), "")
        return context.globalvars.get(match.group(3).strip(), "")

    return _MACRO.sub(replace, text)


def parse_customs(raw: Mapping[str, str] | Iterable[Mapping[str, str]]) -> list[CustomPlaceholder]:
    """Read pairs given as ``{"mood": "..."}`` or as ``[{"find": "mood", "replace": "..."}]``.

    Raises InvalidCustomPlaceholder naming the entry that lacks ``find`` or ``replace``.
    """
    if isinstance(raw, Mapping):
        return [CustomPlaceholder(name, replace) for name, replace in raw.items()]
    return [_pair(entry) for entry in raw]


def _pair(entry: Mapping[str, str]) -> CustomPlaceholder:
    if not isinstance(entry, Mapping) or "find" not in entry or "replace" not in entry:
        raise InvalidCustomPlaceholder(entry, 'give an object with "find" and "replace"')
    return CustomPlaceholder(entry["find"], entry["replace"])


def custom_values(customs: Iterable[CustomPlaceholder], context: Context) -> dict[str, str]:
    """Name → expanded replacement; a later pair with the same name overrides an earlier one."""
    return {custom.name: expand_macros(custom.replace, context) for custom in customs}
