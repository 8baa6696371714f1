"""Walking an API-format ComfyUI graph: ``{node_id: {"class_type": ..., "inputs": {...}}}``.

Only values under a node's ``inputs`` are visited, including nested lists and objects.
A list of exactly ``[str, int]`` is a link to another node's output and is never visited.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from placeholders.errors import MalformedGraph

Graph = Mapping[str, Any]
"""An API-format graph as parsed from JSON."""

Path = tuple[str | int, ...]
"""Where a value sits inside a node's inputs: the input name, then list indexes / keys."""

Marked = tuple[str, str, Path, str]
"""An input string holding ``%`` and its place: ``(node_id, class_type, path, text)``."""


@dataclass(frozen=True, slots=True)
class Site:
    """One place in a graph: node id, its ``class_type`` and the path under ``inputs``."""

    node_id: str
    class_type: str
    path: Path

    @property
    def input_name(self) -> str:
        """The name of the node input that holds the value."""
        return str(self.path[0])

    def __str__(self) -> str:
        where = self.input_name + "".join(f"[{step!r}]" for step in self.path[1:])
        return f'node {self.node_id} ({self.class_type}), input "{where}"'


def is_link(value: Any) -> bool:
    """True for ``["node_id", output_index]``, ComfyUI's reference to another node's output.

    The one rule of the whole tree (``orchestrator`` imports it from here): a JSON array of
    exactly a string node id and an integer index. A numeric node id is no link, as in
    ComfyUI (``comfy_execution/graph_utils.py``), whose prompt keys are strings. ComfyUI
    also takes a float index, and a bool (an int to Python); no export writes those, so
    here they are plain values and the pre-flight names the input that holds one.
    """
    return (
        value.__class__ is list
        and len(value) == 2
        and value[0].__class__ is str
        and value[1].__class__ is int
    )


def nodes(graph: Graph) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Yield ``(node_id, class_type, inputs)`` per node; raise MalformedGraph on a bad node."""
    for node_id, node in graph.items():
        yield node_id, *_parts(node_id, node)


def _parts(node_id: str, node: Any) -> tuple[str, Mapping[str, Any]]:
    if node.__class__ is dict:
        inputs = node.get("inputs", {})
        if inputs.__class__ is dict:
            return str(node.get("class_type", "?")), inputs
    if not isinstance(node, Mapping):
        raise MalformedGraph(node_id, "is not an object with class_type and inputs")
    inputs = node.get("inputs", {})
    if not isinstance(inputs, Mapping):
        raise MalformedGraph(node_id, '"inputs" is not an object')
    return str(node.get("class_type", "?")), inputs


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value: new dicts and lists, shared immutable leaves.

    Uses a marshal round trip, which runs in C at about the speed of ``json.loads`` (a
    Python walk or ``copy.deepcopy`` is several times slower). It only ever reads back
    bytes it has just written. Values marshal cannot carry (mapping or str subclasses,
    foreign objects) take a slower walk that turns every mapping into a dict.
    """
    try:
        return marshal.loads(marshal.dumps(value))
    except ValueError:
        return _walk_copy(value)


def _walk_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _walk_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk_copy(item) for item in value]
    return value


OnMarked = Callable[[str, str, str, Path], Any]
"""Called as ``on_marked(text, node_id, class_type, path)`` for an input string holding
``%``; returns the value to put in its place."""


def rebuild(graph: Graph, on_marked: OnMarked) -> dict[str, Any]:
    """A deep copy of ``graph`` where each input string holding ``%`` is ``on_marked(...)``.

    The input graph is never mutated. Raises MalformedGraph for a node that is not an object.
    """
    out: dict[str, Any] = copy_json(graph)
    # Listed before writing, so the walk never reads a container that is being rewritten.
    for node_id, class_type, path, text in list(marked_inputs(out)):
        put(out, node_id, path, on_marked(text, node_id, class_type, path))
    return out


def marked_inputs(plain: Graph) -> Iterator[Marked]:
    """Yield each input string holding ``%`` with its place, in graph order.

    ``plain`` holds only JSON types, as :func:`copy_json` returns them: only exact dicts,
    lists and strs are looked into; links are skipped. Raises MalformedGraph.
    """
    for node_id, node in plain.items():
        class_type, inputs = _parts(node_id, node)
        for name, value in inputs.items():
            if value.__class__ is str:
                if "%" in value:
                    yield node_id, class_type, (name,), value
            elif _is_walkable(value):
                for path, text in _marked_within(value, (name,)):
                    yield node_id, class_type, path, text


def _is_walkable(value: Any) -> bool:
    cls = value.__class__
    return cls is dict or (cls is list and not is_link(value))


def _marked_within(container: Any, path: Path) -> Iterator[tuple[Path, str]]:
    items = container.items() if container.__class__ is dict else enumerate(container)
    for key, value in items:
        if value.__class__ is str:
            if "%" in value:
                yield (*path, key), value
        elif _is_walkable(value):
            yield from _marked_within(value, (*path, key))


def put(plain: dict[str, Any], node_id: str, path: Path, value: Any) -> None:
    """Set the input at ``path`` of node ``node_id`` in a graph made by :func:`copy_json`."""
    container = plain[node_id]["inputs"]
    for step in path[:-1]:
        container = container[step]
    container[path[-1]] = value


def marked_strings(graph: Graph) -> Iterator[tuple[Site, str]]:
    """Yield every input string holding ``%`` with its site, links skipped, in graph order."""
    for node_id, class_type, inputs in nodes(graph):
        for name, value in inputs.items():
            yield from _marked(value, Site(node_id, class_type, (name,)))


def _marked(value: Any, site: Site) -> Iterator[tuple[Site, str]]:
    if isinstance(value, str):
        if "%" in value:
            yield site, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _marked(item, _child(site, key))
    elif isinstance(value, list) and not is_link(value):
        for index, item in enumerate(value):
            yield from _marked(item, _child(site, index))


def _child(site: Site, step: str | int) -> Site:
    return Site(site.node_id, site.class_type, (*site.path, step))


def map_leaves(graph: Graph, fn: Callable[[Any], Any]) -> dict[str, Any]:
    """A new graph with ``fn`` applied to every value that is not a dict or list."""
    return {node_id: _map(node, fn) for node_id, node in graph.items()}


def _map(value: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(value, Mapping):
        return {key: _map(item, fn) for key, item in value.items()}
    if isinstance(value, list):
        return [_map(item, fn) for item in value]
    return fn(value)
