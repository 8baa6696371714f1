"""Image sizes from an aspect ratio and a resolution tier, or from explicit width/height.

A tier is a pixel budget: the size chosen never exceeds it (``width * height <= budget``).
Sides are multiples of ``step`` (64 by default: SD latents are 1/8 of the image, and most
models are trained on multiples of 64). Among the multiples of ``step`` around the ideal
size that fit the budget, the one closest to the aspect ratio wins; ties go to the larger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from placeholders.errors import InvalidSize, UnknownOption

STEP = 64

_T = TypeVar("_T")

ASPECTS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "1:1": (1, 1),
        "16:9": (16, 9),
        "9:16": (9, 16),
        "4:3": (4, 3),
        "3:4": (3, 4),
        "3:2": (3, 2),
        "2:3": (2, 3),
        "21:9": (21, 9),
    }
)

TIERS: Mapping[str, int] = MappingProxyType(
    {
        "512": 512 * 512,  # SD 1.5's native size
        "768": 768 * 768,  # SD 2.x
        "1MP": 1024 * 1024,  # SDXL and most current models
        "2K": 2560 * 1440,  # 3.7 MP, a 1440p screen
        "4K": 3840 * 2160,  # 8.3 MP, a 2160p screen
    }
)
"""Default tiers: name → pixel budget. Pass your own mapping to change them."""


@dataclass(frozen=True)
class Size:
    """Width and height in pixels."""

    width: int
    height: int


def size_for(aspect: str, tier: str, *, tiers: Mapping[str, int] = TIERS, step: int = STEP) -> Size:
    """The largest size near ``aspect`` that fits ``tier``'s budget, sides multiples of step.

    Raises UnknownOption listing the valid aspects or tiers, InvalidSize when the budget is
    smaller than one step squared.
    """
    ratio_w, ratio_h = _lookup("aspect", ASPECTS, aspect)
    budget = _lookup("tier", tiers, tier)
    _check_step(step)
    target = math.log(ratio_w / ratio_h)
    fitting = [
        Size(w, h)
        for w in _near(math.sqrt(budget * ratio_w / ratio_h), step)
        for h in _near(math.sqrt(budget * ratio_h / ratio_w), step)
        if w * h <= budget
    ]
    if not fitting:
        raise InvalidSize(f"tier {tier!r} ({budget} pixels) is smaller than {step}x{step}")
    return min(fitting, key=lambda size: _miss(size, target))


def snap(width: int, height: int, *, step: int = STEP) -> Size:
    """``width`` and ``height`` rounded to the nearest multiple of ``step``, at least one step.

    Raises InvalidSize for a side that is not a positive number of pixels.
    """
    _check_step(step)
    return Size(_snap_side("width", width, step), _snap_side("height", height, step))


def resolve_size(
    *,
    aspect: str | None = None,
    tier: str | None = None,
    width: int | None = None,
    height: int | None = None,
    tiers: Mapping[str, int] = TIERS,
    step: int = STEP,
) -> Size:
    """Explicit ``width`` and ``height`` (snapped), or ``aspect`` x ``tier``.

    A missing aspect means 1:1, a missing tier means 1MP. Raises InvalidSize when only one
    side is given or when sides and aspect/tier are mixed; otherwise as :func:`size_for`
    and :func:`snap`.
    """
    if width is None and height is None:
        return size_for(aspect or "1:1", tier or "1MP", tiers=tiers, step=step)
    if width is None or height is None:
        raise InvalidSize("give both width and height, or neither and use aspect and tier")
    if aspect is not None or tier is not None:
        raise InvalidSize("give either width and height or aspect and tier, not both")
    return snap(width, height, step=step)


def _miss(size: Size, target: float) -> tuple[float, int]:
    return abs(math.log(size.width / size.height) - target), -size.width * size.height


def _lookup(kind: str, options: Mapping[str, _T], name: str) -> _T:
    if name not in options:
        raise UnknownOption(kind, name, list(options))
    return options[name]


def _near(ideal: float, step: int) -> list[int]:
    below = math.floor(ideal / step) * step
    return [side for side in (below - step, below, below + step) if side >= step]


def _snap_side(name: str, pixels: int, step: int) -> int:
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels <= 0:
        raise InvalidSize(f"{name} must be a positive whole number of pixels, not {pixels!r}")
    return max(step, (pixels + step // 2) // step * step)


def _check_step(step: int) -> None:
    if step <= 0:
        raise InvalidSize(f"step must be a positive number of pixels, not {step}")
