"""Which placeholders a graph uses, and where; for editors and workflow checks.

Nothing is resolved here: the graph is only read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from placeholders.catalog import CATALOG
from placeholders.graph import Graph, Site, marked_strings
from placeholders.syntax import TOKEN, whole_name


@dataclass(frozen=True)
class Occurrence:
    """One ``%name%`` in a graph: where it is and whether it is the whole input value."""

    site: Site
    placeholder: str
    whole: bool


def scan(graph: Graph) -> tuple[Occurrence, ...]:
    """Every token under the nodes' inputs, in graph order; links are skipped.

    A whole-value token becomes a typed value when substituted; an embedded one becomes
    text. Raises MalformedGraph for a node that is not an object.
    """
    found: list[Occurrence] = []
    for site, text in marked_strings(graph):
        if whole_name(text) is not None:
            found.append(Occurrence(site, text[1:-1], whole=True))
        else:
            found += [Occurrence(site, m.group(1), whole=False) for m in TOKEN.finditer(text)]
    return tuple(found)


def used_names(graph: Graph) -> frozenset[str]:
    """The distinct placeholder names the graph uses."""
    return frozenset(occurrence.placeholder for occurrence in scan(graph))


def presence(
    graph: Graph, custom_names: Iterable[str] = (), *, declared: Iterable[str] = ()
) -> dict[str, bool]:
    """For each known name, whether the graph uses it: the built-in names in catalog order,
    then ``declared`` names, then ``custom_names`` (with or without ``%``); each listed once.

    Names the graph uses but nobody knows are not listed; find them with :func:`scan`.
    """
    used = used_names(graph)
    names = dict.fromkeys([*CATALOG, *declared, *(name.strip("%") for name in custom_names)])
    return {name: name in used for name in names}
