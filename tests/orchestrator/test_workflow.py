"""Workflow text is parsed into an API graph; each common mistake gets an actionable error."""

import json

import pytest

from orchestrator.errors import WorkflowFormatError
from orchestrator.workflow import is_link, parse_graph_text

GOOD = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}


def test_api_format_graph_parses() -> None:
    assert parse_graph_text(json.dumps(GOOD)) == GOOD


def test_syntax_error_names_file_line_and_column() -> None:
    with pytest.raises(WorkflowFormatError) as info:
        parse_graph_text('{\n  "1": {"class_type": "X",, }\n}', source="wf.json")
    assert info.value.line == 2 and info.value.column is not None
    assert str(info.value).startswith("wf.json, line 2, column")


def test_unquoted_placeholder_says_wrap_it_in_quotes() -> None:
    text = '{"3": {"class_type": "KSampler",\n "inputs": {"steps": %steps%}}}'
    with pytest.raises(WorkflowFormatError) as info:
        parse_graph_text(text, source="wf.json")
    assert "%steps%" in str(info.value) and "wrap it in quotes" in str(info.value)
    assert info.value.line == 2


def test_ui_export_says_to_use_api_export() -> None:
    with pytest.raises(WorkflowFormatError, match="UI export.*API format"):
        parse_graph_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))


def test_node_without_class_type_is_named() -> None:
    with pytest.raises(WorkflowFormatError, match='node 7 has no "class_type"') as info:
        parse_graph_text(json.dumps({"7": {"inputs": {}}}))
    assert info.value.path == "$.7"


def test_link_to_missing_node_is_named() -> None:
    graph = {"2": {"class_type": "SaveImage", "inputs": {"images": ["5", 0]}}}
    with pytest.raises(WorkflowFormatError, match="input 'images' links to node 5"):
        parse_graph_text(json.dumps(graph))


def test_a_saved_prompt_body_is_unwrapped() -> None:
    assert parse_graph_text(json.dumps({"prompt": GOOD, "client_id": "x"})) == GOOD


def test_links_are_node_id_and_integer_index_only() -> None:
    assert is_link(["4", 1]) and not is_link(["a", "b"]) and not is_link(["4", True])
