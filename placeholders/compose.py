"""Prompt composition: prefixes, per-character prefixes and style presets around user text.

A prefix may hold ``{prompt}``: the inner text goes there (at every ``{prompt}``). Without
it, the inner text is appended after ``", "``. Layers nest from the outside in:

    common prefix ( style preset ( character prefixes ( user prompt ) ) )

so ``"masterpiece, {prompt}, 4k"`` around ``"1girl"`` around ``"at the beach"`` gives
``"masterpiece, 1girl, at the beach, 4k"``. The negative prompt nests the same way.
Empty parts are skipped, and separators left dangling by them are dropped, so no
``", ,"`` or leading comma appears.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from placeholders.errors import UnknownOption

PROMPT_SLOT = "{prompt}"
_SEPARATORS = " ,\t\r\n"


@dataclass(frozen=True)
class Prefix:
    """A positive and a negative prefix: the common pair, or one character's pair."""

    positive: str = ""
    negative: str = ""


@dataclass(frozen=True)
class StylePreset:
    """A named positive/negative pair chosen per request (e.g. "anime", "photo")."""

    name: str
    positive: str = ""
    negative: str = ""


@dataclass(frozen=True)
class ComposedPrompt:
    """The final texts for ``%prompt%`` and ``%negative_prompt%``."""

    positive: str
    negative: str


def join(*parts: str) -> str:
    """The non-empty parts, trimmed of edge spaces and commas, joined with ``", "``."""
    return ", ".join(trimmed for part in parts if (trimmed := part.strip(_SEPARATORS)))


def wrap(frame: str, text: str) -> str:
    """``text`` placed at each ``{prompt}`` of ``frame``, or appended after ``", "``."""
    pieces = frame.split(PROMPT_SLOT)
    if len(pieces) == 1:
        return join(frame, text)
    text = text.strip(_SEPARATORS)
    if not text:
        return join(*pieces)
    return text.join(pieces).strip(_SEPARATORS)


def compose(
    prompt: str,
    negative: str = "",
    *,
    common: Prefix | None = None,
    characters: Sequence[Prefix] = (),
    style: StylePreset | None = None,
) -> ComposedPrompt:
    """Build the positive and negative prompts from the user's texts and the layers above.

    ``characters`` are joined in order (a group scene may have several). Never raises.
    """
    layers = [common or Prefix(), style or Prefix(), _merged(characters)]
    positive, negative_text = prompt, negative
    for layer in reversed(layers):
        positive = wrap(layer.positive, positive)
        negative_text = wrap(layer.negative, negative_text)
    return ComposedPrompt(positive, negative_text)


def _merged(characters: Sequence[Prefix]) -> Prefix:
    return Prefix(join(*(c.positive for c in characters)), join(*(c.negative for c in characters)))


def find_style(presets: Iterable[StylePreset], name: str) -> StylePreset:
    """The preset called ``name``; raises UnknownOption listing the preset names."""
    by_name = {preset.name: preset for preset in presets}
    if name not in by_name:
        raise UnknownOption("style", name, list(by_name))
    return by_name[name]
