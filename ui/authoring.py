"""Which workflow a file drop holds (pure).

A dropped ``NAME.json`` and its optional ``NAME.meta.json`` are paired here; checking them
is the service's work (``POST /v1/workflows/{name}/check``), so the report shown before
saving is the one the service will apply, its nodes' check included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GRAPH_SUFFIX = ".json"
META_SUFFIX = ".meta.json"


@dataclass(frozen=True)
class Drop:
    """Files dropped together: a graph and, optionally, its metadata."""

    name: str
    graph_text: str
    meta_text: str | None = None


def split_drop(files: Iterable[tuple[str, str]]) -> Drop:
    """The workflow in dropped ``(file name, text)`` pairs: ``NAME.json`` plus an optional
    ``NAME.meta.json``. Raises ``ValueError`` saying what to drop instead."""
    graphs, metas = {}, {}
    for filename, text in files:
        if filename.endswith(META_SUFFIX):
            metas[filename.removesuffix(META_SUFFIX)] = text
        elif filename.endswith(GRAPH_SUFFIX):
            graphs[filename.removesuffix(GRAPH_SUFFIX)] = text
    if len(graphs) > 1:
        raise ValueError(f"got {len(graphs)} graph files ({', '.join(sorted(graphs))}): "
                         "one workflow at a time; remove the ones not wanted with the ✕ "
                         "beside their names (a second drop adds to the first)")
    if not graphs:
        raise ValueError("drop one workflow file NAME.json (API format), optionally with its "
                         "NAME.meta.json; got 0 graph files")
    name, graph_text = next(iter(graphs.items()))
    return Drop(name, graph_text, metas.get(name))
