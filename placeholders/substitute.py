"""Substitution: an API-format graph plus bindings → a new graph and a report.

Works on the parsed graph, never on JSON text. An input string that is exactly one token
(``"%steps%"``) becomes the typed value (``20``); a token inside longer text is written as
text. Each string is rewritten in one pass over the original, so given values are never
scanned again or escaped.
"""

from __future__ import annotations

import dataclasses
import difflib
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from placeholders.bindings import Bindings, seed_for
from placeholders.catalog import CLIP_SKIP, COMFY_TOKENS, SEED
from placeholders.errors import (
    MissingValue,
    PlaceholderError,
    PlaceholderProblems,
    UnknownPlaceholder,
)
from placeholders.graph import Graph, Path, Site, rebuild
from placeholders.images import ImageMode, UploadRequest, choose_mode, to_base64, upload_request
from placeholders.spec import Given, Value, as_text
from placeholders.syntax import interpolate, whole_name


@dataclass(frozen=True)
class Replacement:
    """One token filled: where, which placeholder, what went in, and whether it was whole."""

    site: Site
    placeholder: str
    value: Value | UploadRequest
    whole: bool


@dataclass(frozen=True)
class Substitution:
    """A rendered graph and its report.

    ``graph`` is new (the input is untouched) and may hold :class:`UploadRequest` markers,
    listed in ``uploads``: upload them and call ``fill_uploads`` before sending the graph.
    ``seed`` is the seed written for ``%seed%`` (None when the graph has none); store it to
    reproduce the image. ``warnings`` are plain sentences, e.g. values given but unused.
    ``replacements`` lists every token filled, in graph order.
    """

    graph: dict[str, Any]
    seed: int | None
    warnings: tuple[str, ...]
    uploads: tuple[UploadRequest, ...]
    index: int = 0
    # Raw (site parts, placeholder, value, whole) rows: building a frozen Replacement per
    # token costs more than the rest of the walk, and most callers never read them.
    _log: tuple[tuple[str, str, Path, str, Any, bool], ...] = field(default=(), repr=False)

    @cached_property
    def replacements(self) -> tuple[Replacement, ...]:
        """Every token filled: site, placeholder, value written, whole value or embedded."""
        return tuple(
            Replacement(Site(node_id, class_type, path), name, value, whole)
            for node_id, class_type, path, name, value, whole in self._log
        )


def substitute(
    graph: Graph, bindings: Bindings, *, rng: random.Random, index: int = 0
) -> Substitution:
    """Render the graph for image ``index`` of a request.

    A ``%seed%`` of -1 draws one seed from ``rng``; a fixed seed ``s`` gives ``s + index``.
    Raises PlaceholderProblems listing every token with no value (UnknownPlaceholder,
    MissingValue, each naming node, input and placeholder), MalformedGraph for a graph that
    is not API format.
    """
    renderer = _Renderer(bindings, rng, index)
    new_graph = rebuild(graph, renderer.fill)
    if renderer.problems:
        raise PlaceholderProblems(list(renderer.problems.values()))
    return Substitution(
        graph=new_graph,
        seed=renderer.seed,
        warnings=_unused(bindings, renderer.used),
        uploads=tuple(renderer.uploads.values()),
        index=index,
        _log=tuple(renderer.log),
    )


def substitute_batch(
    graph: Graph, bindings: Bindings, *, rng: random.Random, count: int
) -> tuple[Substitution, ...]:
    """Render ``count`` graphs, one per image: seeds ``s, s+1, ...`` or fresh draws for -1.

    Raises as :func:`substitute`. A count of 0 or less renders nothing.
    """
    batch = tuple(substitute(graph, bindings, rng=rng, index=i) for i in range(count))
    if count > 1 and batch[0].seed is None:
        note = f"the workflow has no %seed%, so all {count} images render the same graph"
        batch = tuple(dataclasses.replace(s, warnings=(*s.warnings, note)) for s in batch)
    return batch


def _unused(bindings: Bindings, used: Collection[str]) -> tuple[str, ...]:
    return tuple(
        f"a value for %{name}% was given but the workflow does not use it"
        for name in sorted(set(bindings.values) - set(used))
    )


_NOTHING = object()
_Where = tuple[str, str, Path]


class _Renderer:
    """Fills tokens for one image; resolves each name once and records what it did."""

    def __init__(self, bindings: Bindings, rng: random.Random, index: int) -> None:
        self.bindings = bindings
        self.rng = rng
        self.index = index
        self.seed: int | None = None
        self.used: set[str] = set()
        self.log: list[tuple[str, str, Path, str, Any, bool]] = []
        self.problems: dict[tuple[Site, str], PlaceholderError] = {}
        self.uploads: dict[str, UploadRequest] = {}
        self._values: dict[str, Any] = {}
        self._base64: dict[str, str] = {}
        self._typed: dict[str, tuple[str, Any]] = {}

    def fill(self, text: str, node_id: str, class_type: str, path: Path) -> Any:
        known = self._typed.get(text)
        if known is not None:
            self.log.append((node_id, class_type, path, known[0], known[1], True))
            return known[1]
        name = whole_name(text)
        if name is not None:
            return self._whole(name, text, (node_id, class_type, path))
        return interpolate(text, lambda found: self._embedded(found, (node_id, class_type, path)))

    def _whole(self, name: str, text: str, where: _Where) -> Any:
        value = self._value(name, where)
        if value is _NOTHING:
            return text
        if value.__class__ is bytes:
            value = self._image(name, value, Site(*where))
        else:
            # Same token, same typed value everywhere; images alone depend on the node.
            self._typed[text] = (name, value)
        self.log.append((*where, name, value, True))
        return value

    def _embedded(self, name: str, where: _Where) -> str | None:
        value = self._value(name, where)
        if value is _NOTHING:
            return None
        text = self._encoded(name, value) if isinstance(value, bytes) else as_text(value)
        self.log.append((*where, name, text, False))
        return text

    def _value(self, name: str, where: _Where) -> Any:
        self.used.add(name)
        try:
            value = self._values[name]
        except KeyError:
            value = self._values[name] = self._resolve(name)
        if value is _NOTHING:
            self._unresolved(name, Site(*where))
        return value

    def _resolve(self, name: str) -> Given | object:
        value = self.bindings.lookup(name)
        if value is None:
            return _NOTHING
        if not isinstance(value, int) or isinstance(value, bool):
            return value
        if name == SEED:
            self.seed = seed_for(value, self.index, self.rng)
            return self.seed
        if name == CLIP_SKIP and value > 0:
            # SillyTavern counts layers as 1, 2, ...; CLIPSetLastLayer wants -1, -2, ...
            return -value
        return value

    def _image(self, name: str, data: bytes, site: Site) -> str | UploadRequest:
        spec = self.bindings.specs.get(name)
        mode = choose_mode(spec.image_mode if spec else ImageMode.AUTO, site)
        if mode is ImageMode.UPLOAD:
            return self.uploads.setdefault(name, upload_request(name, data))
        return self._encoded(name, data)

    def _encoded(self, name: str, data: bytes) -> str:
        if name not in self._base64:
            self._base64[name] = to_base64(data)
        return self._base64[name]

    def _unresolved(self, name: str, site: Site) -> None:
        spec = self.bindings.specs.get(name)
        if spec is None and name in COMFY_TOKENS:
            return
        if spec is None:
            hint = _closest(name, self.bindings.known_names())
            problem: PlaceholderError = UnknownPlaceholder(site, name, hint)
        else:
            hint = _closest(name, set(self.bindings.values) | set(self.bindings.texts))
            problem = MissingValue(site, name, spec.help, hint)
        self.problems.setdefault((site, name), problem)


def _closest(name: str, candidates: Collection[str]) -> str | None:
    matches = difflib.get_close_matches(name, [c for c in candidates if c != name], n=1)
    return matches[0] if matches else None
