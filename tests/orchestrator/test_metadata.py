"""Workflow metadata parses into typed values; every mistake names the file and JSON path."""

from __future__ import annotations

import json

import jsonschema
import pytest

from orchestrator.errors import WorkflowFormatError, WorkflowInvalid
from orchestrator.metadata import (
    META_SCHEMA,
    Kind,
    custom_placeholders,
    parse_metadata,
    placeholder_specs,
)
from placeholders import ImageMode, ValueType


def parse(doc: object) -> object:
    return parse_metadata(json.dumps(doc), source="wf.meta.json")


def problems(doc: object) -> list[str]:
    with pytest.raises(WorkflowInvalid) as info:
        parse(doc)
    return [str(p) for p in info.value.problems]


def test_an_empty_file_means_every_default() -> None:
    meta = parse_metadata("{}")
    assert (meta.title, meta.kind, meta.cost_units, meta.snap) == ("", Kind.TXT2IMG, 1, 64)
    assert meta.placeholders == {} and meta.custom_placeholders == ()


def test_a_full_file_parses_into_typed_values() -> None:
    meta = parse_metadata(json.dumps({
        "title": "Portrait", "description": "d", "kind": "edit", "tags": ["a", "b"],
        "cost_units": 2.5, "preview_image": "portrait.png", "snap": 8,
        "placeholders": {"main_image": {"type": "image", "image_mode": "upload"}},
        "custom_placeholders": [{"find": "%mood%", "replace": "happy {{char}}"}],
        "prompt": {"positive": "best quality, {prompt}", "negative": "lowres"},
        "styles": {"anime": {"positive": "anime", "negative": "photo"}},
        "node_packs": {"ETN_LoadImageBase64": "comfyui-tooling-nodes"},
    }))
    assert meta.kind is Kind.EDIT and meta.cost_units == 2.5 and meta.snap == 8
    assert meta.styles["anime"].negative == "photo"
    assert meta.prompt.positive == "best quality, {prompt}"


def test_a_wrong_type_names_file_and_json_path() -> None:
    assert problems({"placeholders": {"steps": {"min": "abc"}}}) == [
        "wf.meta.json, at $.placeholders.steps.min: 'abc' is not of type 'number'"]


def test_a_misspelt_key_gets_a_did_you_mean() -> None:
    [message] = problems({"titel": "x"})
    assert message.startswith("wf.meta.json, at $: Additional properties are not allowed")
    assert "did you mean 'title'?" in message


def test_an_unknown_key_inside_a_declaration_lists_the_allowed_keys() -> None:
    [message] = problems({"placeholders": {"steps": {"zzz": 1}}})
    assert "at $.placeholders.steps:" in message and "allowed keys: type, default" in message


def test_an_unknown_kind_lists_the_kinds() -> None:
    [message] = problems({"kind": "txt2vid"})
    assert message.startswith("wf.meta.json, at $.kind: 'txt2vid' is not one of")
    assert "'upscale'" in message


def test_a_placeholder_name_with_a_dash_is_rejected() -> None:
    [message] = problems({"placeholders": {"bad-name": {}}})
    assert "at $.placeholders: 'bad-name' does not match" in message


def test_a_negative_cost_is_rejected() -> None:
    [message] = problems({"cost_units": -1})
    assert "at $.cost_units: -1 is less than the minimum of 0" in message


def test_a_custom_pair_without_replace_is_named_by_index() -> None:
    [message] = problems({"custom_placeholders": [{"find": "a", "replace": "x"}, {"find": "b"}]})
    assert "at $.custom_placeholders[1]: 'replace' is a required property" in message


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    found = problems({"kind": "nope", "snap": 0, "tags": "x"})
    assert [m.split(":")[0] for m in found] == [
        "wf.meta.json, at $.kind", "wf.meta.json, at $.snap", "wf.meta.json, at $.tags"]


def test_a_syntax_error_names_line_and_column() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        parse_metadata('{\n  "title": "x",\n}', source="wf.meta.json")
    [problem] = info.value.problems
    assert (problem.line, problem.column) == (3, 1)
    assert str(problem).startswith("wf.meta.json, line 3, column 1: not valid JSON")


def test_a_default_of_the_wrong_type_is_reported_at_load() -> None:
    [message] = problems({"placeholders": {"steps": {"default": "many"}}})
    assert message.startswith("wf.meta.json, at $.placeholders.steps: ")
    assert "%steps%" in message and "'many'" in message


def test_a_minimum_above_the_maximum_is_reported_at_load() -> None:
    [message] = problems({"placeholders": {"x": {"type": "int", "min": 5, "max": 1}}})
    assert "at $.placeholders.x:" in message and "minimum 5 is above maximum 1" in message


def test_invalid_is_a_format_error_so_one_handler_catches_both() -> None:
    with pytest.raises(WorkflowFormatError):
        parse({"snap": "x"})


def test_a_declaration_inherits_what_it_leaves_out_from_the_catalog() -> None:
    meta = parse_metadata(json.dumps({"placeholders": {"steps": {"default": 4}}}))
    [spec] = placeholder_specs(meta)
    assert (spec.type, spec.default, spec.minimum, spec.maximum) == (ValueType.INT, 4, 1, 10000)
    assert spec.help == "sampling steps"


def test_a_new_placeholder_is_text_unless_typed() -> None:
    meta = parse_metadata(json.dumps({"placeholders": {
        "mood": {"default": "calm"}, "x": {"type": "int", "default": 0, "min": 0},
        "pic": {"type": "image", "image_mode": "upload"}}}))
    specs = {spec.name: spec for spec in placeholder_specs(meta)}
    assert specs["mood"].type is ValueType.STR and specs["x"].type is ValueType.INT
    assert specs["pic"].image_mode is ImageMode.UPLOAD


def test_an_explicit_null_default_makes_a_catalog_value_required() -> None:
    meta = parse_metadata(json.dumps({"placeholders": {"sampler": {"default": None}}}))
    [spec] = placeholder_specs(meta)
    assert spec.default is None


def test_custom_pairs_become_engine_placeholders_without_percent_signs() -> None:
    meta = parse_metadata(json.dumps(
        {"custom_placeholders": [{"find": "%mood%", "replace": "{{char}} smiles"}]}))
    [pair] = custom_placeholders(meta)
    assert (pair.name, pair.replace) == ("mood", "{{char}} smiles")


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(META_SCHEMA)
    assert META_SCHEMA["properties"]["placeholders"]["propertyNames"]["pattern"]
