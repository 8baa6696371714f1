"""A graph compiled once for many renders: a frozen copy and the places that hold ``%``.

A render changes only the input strings that hold tokens, yet walking every input of a
large graph in Python costs more than parsing the file again. :func:`compile_graph` walks
once and keeps the copy as marshal bytes; each render then copies the graph in C and writes
its values at the places found. Places are grouped by what decides their value (the text,
and the node class and input that an image's upload-or-base64 choice depends on), so one
request fills each group once, however many nodes repeat it.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from placeholders.graph import Graph, Marked, Path, Site, copy_json, marked_inputs, put
from placeholders.syntax import whole_name


@dataclass(frozen=True, slots=True)
class Group:
    """Sites that take the same value in any render: same text, node class and input.

    ``name`` is the placeholder when the text is exactly one token, else None. ``site`` is
    the first of them in graph order. ``inputs`` lists ``(node_id, input)`` for the sites
    right under a node's inputs, ``nested`` lists ``(node_id, path)`` for deeper ones.
    """

    text: str
    name: str | None
    site: Site
    inputs: tuple[tuple[str, str | int], ...]
    nested: tuple[tuple[str, Path], ...]


@dataclass(frozen=True, eq=False)
class Plan:
    """A compiled graph: what :func:`~placeholders.substitute.render` needs, found once.

    ``marked`` lists every input string holding ``%`` in graph order, ``group_of`` the index
    of each one's group in ``groups``, which are in order of first appearance. Immutable, so
    one plan may serve any number of renders on any thread. Build it with
    :func:`compile_graph`.
    """

    marked: tuple[Marked, ...]
    group_of: tuple[int, ...]
    groups: tuple[Group, ...]
    _frozen: bytes | None = field(repr=False)
    _plain: Graph | None = field(repr=False)

    def copy(self) -> dict[str, Any]:
        """A new deep copy of the compiled graph, sharing no container with anything."""
        if self._frozen is None:
            copied: dict[str, Any] = copy_json(self._plain)
        else:  # bytes this plan wrote itself from plain JSON values, never outside data
            copied = marshal.loads(self._frozen)
        return copied

    def write(self, graph: dict[str, Any], values: Sequence[Any]) -> None:
        """Put ``values[i]`` at every site of ``groups[i]`` in ``graph``, a :meth:`copy`."""
        for group, value in zip(self.groups, values, strict=True):
            for node_id, name in group.inputs:
                graph[node_id]["inputs"][name] = value
            for node_id, path in group.nested:
                put(graph, node_id, path, value)


def compile_graph(graph: Graph) -> Plan:
    """Compile an API-format graph for rendering many times.

    The plan keeps its own copy: later changes to ``graph`` do not reach it. Cache it for as
    long as the graph serves (per workflow version). Raises MalformedGraph for a node that
    is not an object with object inputs.
    """
    frozen = _frozen(graph)
    # A graph marshal cannot carry (a mapping or str subclass, a foreign leaf) is kept as
    # copy_json's walk copy, which is what every render then copies and what is read here.
    plain = graph if frozen is not None else copy_json(graph)
    marked = tuple(marked_inputs(plain))
    index: dict[tuple[str, str, str | int], int] = {}
    group_of = tuple(
        index.setdefault((text, class_type, path[0]), len(index))
        for _, class_type, path, text in marked
    )
    groups = _groups(marked, group_of, len(index))
    return Plan(marked, group_of, groups, frozen, None if frozen is not None else plain)


def _groups(marked: tuple[Marked, ...], group_of: tuple[int, ...], count: int) -> tuple[Group, ...]:
    firsts: dict[int, Marked] = {}
    inputs: list[list[tuple[str, str | int]]] = [[] for _ in range(count)]
    nested: list[list[tuple[str, Path]]] = [[] for _ in range(count)]
    for place, group in zip(marked, group_of, strict=True):
        firsts.setdefault(group, place)
        node_id, _, path, _ = place
        if len(path) == 1:
            inputs[group].append((node_id, path[0]))
        else:
            nested[group].append((node_id, path))
    return tuple(
        _group(firsts[group], tuple(inputs[group]), tuple(nested[group])) for group in range(count)
    )


def _group(first: Marked, inputs: tuple[tuple[str, str | int], ...],
           nested: tuple[tuple[str, Path], ...]) -> Group:
    node_id, class_type, path, text = first
    return Group(text, whole_name(text), Site(node_id, class_type, path), inputs, nested)


def _frozen(graph: Graph) -> bytes | None:
    try:
        return marshal.dumps(graph)  # type: ignore[arg-type]  # a Mapping: checked here
    except ValueError:
        return None
