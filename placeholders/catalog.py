"""The built-in placeholders: SillyTavern's names, with the same meaning, type and defaults.

A workflow written for SillyTavern's ComfyUI source runs unchanged. A workflow's own
declarations (:class:`~placeholders.spec.PlaceholderSpec`) override these by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from placeholders.spec import PlaceholderSpec, ValueType

SEED = "seed"
RANDOM_SEED = -1
"""A ``%seed%`` of -1 (or none given) draws a fresh seed per image."""
SEED_MAX = 2**64 - 1
"""KSampler accepts seeds up to 2**64 - 1; given seeds are never capped to 32 bits."""
RANDOM_SEED_LIMIT = 2**53
"""Drawn seeds lie in 0..2**53 - 1, as SillyTavern draws them, so that they survive
JavaScript clients and JSON tools that read numbers as doubles."""

CLIP_SKIP = "clip_skip"
"""Counted as SillyTavern counts it: 1 = last layer. The graph receives the negative
(-1, -2, ...), the form ``CLIPSetLastLayer.stop_at_clip_layer`` takes."""

COMFY_TOKENS = frozenset({"year", "month", "day", "hour", "minute", "second"})
"""Names ComfyUI itself expands in ``filename_prefix``; left as written unless declared or
given, so ``"shots/%year%-%month%"`` keeps working."""

_S, _I, _F, _IMG = ValueType.STR, ValueType.INT, ValueType.FLOAT, ValueType.IMAGE

_SPECS = (
    PlaceholderSpec("prompt", _S, "", help="positive prompt"),
    PlaceholderSpec("negative_prompt", _S, "", help="negative prompt"),
    PlaceholderSpec("model", _S, help="checkpoint file name as the server lists it"),
    PlaceholderSpec("vae", _S, help="VAE file name as the server lists it"),
    PlaceholderSpec("sampler", _S, "euler", help="sampler name, e.g. euler, dpmpp_2m"),
    PlaceholderSpec("scheduler", _S, "normal", help="scheduler name, e.g. normal, karras"),
    PlaceholderSpec("steps", _I, 20, 1, 10000, help="sampling steps"),
    PlaceholderSpec("scale", _F, 7.0, 0.0, 100.0, help="CFG scale"),
    PlaceholderSpec("width", _I, 512, 16, 16384, help="image width in pixels"),
    PlaceholderSpec("height", _I, 512, 16, 16384, help="image height in pixels"),
    PlaceholderSpec("denoise", _F, 1.0, 0.0, 1.0, help="denoising strength, 0..1"),
    PlaceholderSpec(CLIP_SKIP, _I, 1, 1, 24, help="CLIP layers to skip; 1 = last layer"),
    PlaceholderSpec(SEED, _I, RANDOM_SEED, RANDOM_SEED, SEED_MAX, help="-1 = random"),
    PlaceholderSpec("user_avatar", _IMG, help="the user's avatar as PNG bytes"),
    PlaceholderSpec("char_avatar", _IMG, help="the character's avatar as PNG bytes"),
)

CATALOG: Mapping[str, PlaceholderSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
"""Built-in specs by name, in SillyTavern's order."""
