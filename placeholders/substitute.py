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
from collections.abc import Collection, Iterable, Mapping
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
from placeholders.graph import Graph, Marked, Site
from placeholders.images import ImageMode, UploadRequest, choose_mode, to_base64, upload_request
from placeholders.plan import Group, Plan, compile_graph
from placeholders.spec import Given, Value, as_text
from placeholders.syntax import interpolate, names_in


@dataclass(frozen=True)
class Replacement:
    """One token filled: where, which placeholder, what went in, and whether it was whole."""

    site: Site
    placeholder: str
    value: Value | UploadRequest
    whole: bool


_Row = tuple[str, Any, bool]
"""What one token put in: placeholder, value written, whole."""


@dataclass(frozen=True, eq=False)
class _Report:
    """The replacements of one render, kept as its plan's sites plus one row set per group:
    building a Replacement per site costs more than the render, and few callers read them."""

    marked: tuple[Marked, ...] = ()
    group_of: tuple[int, ...] = ()
    rows: tuple[tuple[_Row, ...], ...] = ()

    def replacements(self) -> tuple[Replacement, ...]:
        found: list[Replacement] = []
        for (node_id, class_type, path, _), group in zip(self.marked, self.group_of, strict=True):
            site = Site(node_id, class_type, path)
            found += [Replacement(site, *row) for row in self.rows[group]]
        return tuple(found)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Report) and self.replacements() == other.replacements()


@dataclass(frozen=True)
class Substitution:
    """A rendered graph and its report.

    ``graph`` is new (the input is untouched, no container is shared with it) and may hold
    :class:`UploadRequest` markers, listed in ``uploads``: upload them and call
    ``fill_uploads`` before sending the graph. ``seed`` is the seed written for ``%seed%``
    (None when the graph has none); store it to reproduce the image. ``warnings`` are plain
    sentences, e.g. values given but unused. ``replacements`` lists every token filled, in
    graph order.
    """

    graph: dict[str, Any]
    seed: int | None
    warnings: tuple[str, ...]
    uploads: tuple[UploadRequest, ...]
    index: int = 0
    _report: _Report = field(default_factory=_Report, repr=False)

    @cached_property
    def replacements(self) -> tuple[Replacement, ...]:
        """Every token filled: site, placeholder, value written, whole value or embedded."""
        return self._report.replacements()


def substitute(
    graph: Graph, bindings: Bindings, *, rng: random.Random, index: int = 0
) -> Substitution:
    """Render the graph for image ``index`` of a request.

    A ``%seed%`` of -1 draws one seed from ``rng``; a fixed seed ``s`` gives ``s + index``.
    Raises PlaceholderProblems listing every token with no value (UnknownPlaceholder,
    MissingValue, each naming node, input and placeholder), MalformedGraph for a graph that
    is not API format. To render one graph many times, :func:`compile_graph` it once and
    call :func:`render`.
    """
    return render(compile_graph(graph), bindings, rng=rng, index=index)


def render(plan: Plan, bindings: Bindings, *, rng: random.Random, index: int = 0,
           digests: Mapping[str, str] | None = None) -> Substitution:
    """Render a compiled graph for image ``index``: the same result as :func:`substitute`
    on the graph it was compiled from, without walking that graph again.

    ``digests`` maps image placeholders to the sha256 of their bytes where the caller
    knows it (an upload marker is named after it). Raises PlaceholderProblems as
    :func:`substitute` does.
    """
    renderer = _Renderer(bindings, rng, index, digests or {})
    filled = [renderer.fill(group) for group in plan.groups]
    if renderer.failed:
        raise PlaceholderProblems(renderer.problems(plan.marked))
    graph = plan.copy()
    plan.write(graph, [value for value, _ in filled])
    return Substitution(
        graph=graph,
        seed=renderer.seed,
        warnings=_unused(bindings, renderer.used),
        uploads=tuple(renderer.uploads.values()),
        index=index,
        _report=_Report(plan.marked, plan.group_of, tuple(rows for _, rows in filled)),
    )


def resolve(plan: Plan, bindings: Bindings, *, rng: random.Random) -> dict[str, Any]:
    """The value of each placeholder the plan uses, as :func:`render` would look it up,
    without rendering: no graph copy, no image encoded, no seed drawn for an item.

    For a check before anything is recorded (values that would fail a render fail here,
    with the same PlaceholderProblems). Image placeholders resolve to the bytes given;
    names left to ComfyUI (``%year%``) are absent; a random ``%seed%`` is drawn from ``rng``.
    """
    renderer = _Renderer(bindings, rng, 0)
    for group in plan.groups:
        for name in [group.name] if group.name is not None else names_in(group.text):
            renderer.look_up(name)
    if renderer.failed:
        raise PlaceholderProblems(renderer.problems(plan.marked))
    return {name: value for name, value in renderer.looked_up().items() if value is not _NOTHING}


def substitute_batch(
    graph: Graph, bindings: Bindings, *, rng: random.Random, count: int
) -> tuple[Substitution, ...]:
    """Render ``count`` graphs, one per image: seeds ``s, s+1, ...`` or fresh draws for -1.

    Raises as :func:`substitute`. A count of 0 or less renders nothing.
    """
    if count < 1:
        return ()
    plan = compile_graph(graph)
    batch = tuple(render(plan, bindings, rng=rng, index=i) for i in range(count))
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


class _Renderer:
    """Fills each group of a plan for one image; resolves each name once."""

    def __init__(self, bindings: Bindings, rng: random.Random, index: int,
                 digests: Mapping[str, str] | None = None) -> None:
        self.bindings = bindings
        self.digests = digests or {}
        self.rng = rng
        self.index = index
        self.seed: int | None = None
        self.used: set[str] = set()
        self.failed = False  # some token has no value and is not left to ComfyUI
        self.uploads: dict[str, UploadRequest] = {}
        self._values: dict[str, Any] = {}
        self._base64: dict[str, str] = {}

    def fill(self, group: Group) -> tuple[Any, tuple[_Row, ...]]:
        """The value for the group's sites and the rows it adds to the report."""
        if group.name is not None:
            return self._whole(group.name, group.text, group.site)
        rows: list[_Row] = []
        text = interpolate(group.text, lambda name: self._embedded(name, rows))
        return text, tuple(rows)

    def _whole(self, name: str, text: str, site: Site) -> tuple[Any, tuple[_Row, ...]]:
        value = self._value(name)
        if value is _NOTHING:
            return text, ()
        if value.__class__ is bytes:
            value = self._image(name, value, site)
        return value, ((name, value, True),)

    def _embedded(self, name: str, rows: list[_Row]) -> str | None:
        value = self._value(name)
        if value is _NOTHING:
            return None
        text = self._encoded(name, value) if isinstance(value, bytes) else as_text(value)
        rows.append((name, text, False))
        return text

    def look_up(self, name: str) -> None:
        """Resolve ``name`` as a render would (for :func:`resolve`)."""
        self._value(name)

    def looked_up(self) -> dict[str, Any]:
        return dict(self._values)

    def _value(self, name: str) -> Any:
        self.used.add(name)
        try:
            return self._values[name]
        except KeyError:
            value = self._values[name] = self._resolve(name)
        if value is _NOTHING and (name in self.bindings.specs or name not in COMFY_TOKENS):
            self.failed = True
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
            return self.uploads.setdefault(name, upload_request(
                name, data, self.digests.get(name)))
        return self._encoded(name, data)

    def _encoded(self, name: str, data: bytes) -> str:
        if name not in self._base64:
            self._base64[name] = to_base64(data)
        return self._base64[name]

    def problems(self, marked: Iterable[Marked]) -> list[PlaceholderError]:
        """One problem per site and name left without a value, in graph order."""
        found: dict[tuple[Site, str], PlaceholderError | None] = {}
        for node_id, class_type, path, text in marked:
            site = Site(node_id, class_type, path)
            for name in names_in(text):
                if self._values[name] is _NOTHING and (site, name) not in found:
                    found[site, name] = self._problem(name, site)
        return [problem for problem in found.values() if problem is not None]

    def _problem(self, name: str, site: Site) -> PlaceholderError | None:
        spec = self.bindings.specs.get(name)
        if spec is None and name in COMFY_TOKENS:
            return None
        if spec is None:
            return UnknownPlaceholder(site, name, _closest(name, self.bindings.known_names()))
        hint = _closest(name, set(self.bindings.values) | set(self.bindings.texts))
        return MissingValue(site, name, spec.help, hint)


def _closest(name: str, candidates: Collection[str]) -> str | None:
    matches = difflib.get_close_matches(name, [c for c in candidates if c != name], n=1)
    return matches[0] if matches else None
