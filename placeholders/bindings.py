"""The values of one request, checked against the declarations, ready to substitute.

Precedence for a ``%name%``: a value given in the request, then a custom placeholder's text
(a later pair overriding an earlier one), then the declared default. Declarations come from
the workflow's metadata and override the built-in :data:`~placeholders.catalog.CATALOG`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from placeholders.catalog import CATALOG, RANDOM_SEED, RANDOM_SEED_LIMIT, SEED_MAX
from placeholders.custom import Context, CustomPlaceholder, custom_values
from placeholders.errors import InvalidValue, PlaceholderError, PlaceholderProblems, WrongType
from placeholders.spec import Given, PlaceholderSpec, coerce


@dataclass(frozen=True)
class Bindings:
    """Coerced request values, expanded custom texts and the declarations in force.

    Build it with :func:`bind`, which checks every value; the constructor trusts its input.
    """

    values: Mapping[str, Given] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)
    specs: Mapping[str, PlaceholderSpec] = field(default_factory=lambda: CATALOG)

    def __post_init__(self) -> None:
        for name in ("values", "texts", "specs"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def lookup(self, name: str) -> Given | None:
        """The value for ``name`` by the precedence above, or None when it has none."""
        if name in self.values:
            return self.values[name]
        if name in self.texts:
            return self.texts[name]
        spec = self.specs.get(name)
        return None if spec is None else spec.default

    def known_names(self) -> frozenset[str]:
        """Every name declared, given or defined as a custom placeholder."""
        return frozenset(self.specs) | frozenset(self.values) | frozenset(self.texts)


def bind(
    values: Mapping[str, object] | None = None,
    *,
    specs: Iterable[PlaceholderSpec] = (),
    customs: Iterable[CustomPlaceholder] = (),
    context: Context | None = None,
) -> Bindings:
    """Check the request's ``values`` against the declarations and build :class:`Bindings`.

    ``values`` maps names to text (``"20"`` from a command line), JSON values, or image
    bytes; a None value counts as not given. ``specs`` extend or override the catalog.
    ``customs`` are expanded with ``context``. Raises PlaceholderProblems listing every
    value that cannot fill its placeholder (each an InvalidValue).
    """
    declared = {**CATALOG, **{spec.name: spec for spec in specs}}
    coerced: dict[str, Given] = {}
    problems: list[PlaceholderError] = []
    for name, raw in (values or {}).items():
        if raw is None:
            continue
        try:
            coerced[name] = _coerce(declared.get(name), name, raw)
        except InvalidValue as exc:
            problems.append(exc)
    if problems:
        raise PlaceholderProblems(problems)
    texts = custom_values(customs, context or Context())
    return Bindings(coerced, texts, declared)


def _coerce(spec: PlaceholderSpec | None, name: str, raw: object) -> Given:
    if spec is not None:
        return coerce(spec, raw)
    if isinstance(raw, str | int | float | bytes):
        return raw
    raise WrongType(name, raw, "is not text, a number, true/false or image bytes")


def seed_for(seed: int, index: int, rng: random.Random) -> int:
    """The seed for image ``index`` of a request whose ``%seed%`` is ``seed``.

    -1 draws a fresh seed in 0..2**53 - 1 from ``rng`` (one draw per call); a fixed seed
    ``s`` gives ``s + index``, wrapping past 2**64 - 1 to stay a valid KSampler seed.
    """
    if seed == RANDOM_SEED:
        return rng.randrange(RANDOM_SEED_LIMIT)
    return (seed + index) % (SEED_MAX + 1)
