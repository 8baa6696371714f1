"""Which workflow a file drop holds (pure); the report itself is the service's."""

from __future__ import annotations

import pytest

from ui.authoring import split_drop


def test_a_graph_and_its_metadata_dropped_together_make_one_workflow() -> None:
    drop = split_drop([("w.meta.json", "{}"), ("w.json", "{...}")])
    assert (drop.name, drop.graph_text, drop.meta_text) == ("w", "{...}", "{}")


def test_a_graph_alone_has_no_metadata() -> None:
    assert split_drop([("w.json", "{}")]).meta_text is None


def test_a_second_dropped_graph_is_refused_saying_to_remove_one() -> None:
    with pytest.raises(ValueError, match=r"got 2 graph files \(a, b\): one workflow at a "
                                         r"time; remove the ones not wanted with the ✕"):
        split_drop([("a.json", "{}"), ("b.json", "{}")])


def test_metadata_alone_is_refused() -> None:
    with pytest.raises(ValueError, match="got 0 graph files"):
        split_drop([("a.meta.json", "{}")])
