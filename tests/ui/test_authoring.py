"""Checking a dropped or edited workflow before saving, and the presence list (pure)."""

from __future__ import annotations

import json

import pytest

from ui.authoring import check_texts, presence_list, split_drop

GRAPH = {"1": {"class_type": "A", "inputs": {"text": "%prompt%, %mood%",
                                             "name": "out/%year%"}}}


def test_a_graph_and_its_metadata_dropped_together_make_one_workflow() -> None:
    drop = split_drop([("w.meta.json", "{}"), ("w.json", "{...}")])
    assert (drop.name, drop.graph_text, drop.meta_text) == ("w", "{...}", "{}")


def test_two_graphs_in_one_drop_are_refused() -> None:
    with pytest.raises(ValueError, match="drop one workflow file"):
        split_drop([("a.json", "{}"), ("b.json", "{}")])


def test_presence_marks_used_and_unused_and_flags_undeclared_names() -> None:
    meta = {"custom_placeholders": [{"find": "%era%", "replace": "1920s"}]}
    rows = {r.name: r for r in presence_list(GRAPH, meta)}
    assert rows["prompt"].mark == "✅" and rows["prompt"].sites == ("1.text",)
    assert rows["seed"].mark == "❌" and rows["seed"].origin == "built-in"
    assert rows["era"].origin == "custom" and rows["era"].mark == "❌"
    assert rows["mood"].mark == "⚠️"
    assert "year" not in rows  # ComfyUI expands %year% itself


def test_a_valid_workflow_passes_with_warnings_for_unknown_names() -> None:
    check = check_texts("w", json.dumps(GRAPH))
    assert check.ok and check.graph == GRAPH
    assert any("%mood%" in w for w in check.warnings)


def test_a_bad_name_is_refused_before_parsing() -> None:
    assert not check_texts("../etc", json.dumps(GRAPH)).ok


def test_broken_json_names_the_line() -> None:
    check = check_texts("w", '{"1": ')
    assert not check.ok and "line 1" in check.problems[0]
