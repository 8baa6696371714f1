"""The panel's own view of ``/v1`` (``ui/models.py``) against the service's OpenAPI document.

The panel keeps its own models, so that it runs without the service's code; this test is
what keeps them honest. For each answer the panel's client parses, every field the panel's
model reads must be in the service's response schema, with a type the panel accepts
(checked through nested models, lists and maps). A field the service drops or retypes
fails here, not in a user's browser.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.tokens import TokenStore
from orchestrator.web import create_app
from ui import models
from ui.models import (
    Job,
    JobPage,
    Me,
    Node,
    NodeList,
    Output,
    OutputPage,
    ServiceHealth,
    WorkflowCheck,
    WorkflowDetail,
    WorkflowSummary,
)

Schema = dict[str, Any]

# What ``ui.api.ApiClient`` parses: the panel's model, the operation, and where in the
# answer the model sits ("workflows": a list under that key).
READS: list[tuple[type[BaseModel], str, str, str]] = [
    (ServiceHealth, "get", "/v1/health", ""),
    (Me, "get", "/v1/me", ""),
    (WorkflowSummary, "get", "/v1/workflows", "workflows"),
    (WorkflowDetail, "get", "/v1/workflows/{name}", ""),
    (WorkflowDetail, "put", "/v1/workflows/{name}", ""),
    (WorkflowCheck, "post", "/v1/workflows/{name}/check", ""),
    (Job, "post", "/v1/jobs", ""),
    (JobPage, "get", "/v1/jobs", ""),
    (Job, "get", "/v1/jobs/{job_id}", ""),
    (Job, "delete", "/v1/jobs/{job_id}", ""),
    (Job, "post", "/v1/jobs/{job_id}/retry", ""),
    (Output, "get", "/v1/outputs/{output_id}", ""),
    (OutputPage, "get", "/v1/outputs", ""),
    (OutputPage, "get", "/v1/gallery", ""),
    (Job, "post", "/v1/outputs/{output_id}/regenerate", ""),
    (NodeList, "get", "/v1/nodes", ""),
    (Node, "post", "/v1/nodes", ""),
    (Node, "post", "/v1/nodes/{name}/drain", ""),
]


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    """The service app's OpenAPI document, as ``GET /openapi.json`` serves it."""
    root = tmp_path_factory.mktemp("contract")
    workflows = root / "workflows"
    workflows.mkdir()
    settings = Settings(data_dir=root / "data", workflows_dir=workflows, port=0)
    with TokenStore.open(settings.data_dir) as tokens, Orchestrator(
            data_dir=settings.data_dir, workflows_dir=workflows, nodes=()) as orch:
        document: Schema = create_app(orch, tokens, settings).openapi()
    return document


# --- comparing two JSON schemas -------------------------------------------------------------


def resolved(schema: Schema, defs: Schema) -> Schema:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def branches(schema: Schema, defs: Schema) -> Iterator[Schema]:
    """The alternatives a value of ``schema`` may take, references followed."""
    schema = resolved(schema, defs)
    alternatives = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if alternatives:
        for alternative in alternatives:
            yield from branches(alternative, defs)
    else:
        yield schema


def json_types(schema: Schema, defs: Schema) -> set[str]:
    """The JSON types a value of ``schema`` may have; {"any"} when it says nothing."""
    found: set[str] = set()
    for branch in branches(schema, defs):
        kind = branch.get("type")
        if kind is None and "properties" in branch:
            kind = "object"
        if kind is None:
            return {"any"}
        found |= set(kind) if isinstance(kind, list) else {kind}
    return found


def accepts(panel: set[str], service: set[str]) -> bool:
    """Whether every type the service may send is one the panel reads."""
    if "any" in panel:
        return True
    widened = panel | ({"integer"} if "number" in panel else set())
    return "any" not in service and service <= widened


def branch_with(key: str, schema: Schema, defs: Schema) -> Schema | None:
    return next((b for b in branches(schema, defs) if key in b), None)


def drift(panel: Schema, pdefs: Schema, service: Schema, sdefs: Schema,
          where: str) -> list[str]:
    """Where the panel's ``panel`` schema reads what the service's ``service`` schema does
    not send, or sends with another type."""
    wanted, sent = json_types(panel, pdefs), json_types(service, sdefs)
    if not accepts(wanted, sent):
        return [f"{where}: the service sends {sorted(sent)}, the panel reads {sorted(wanted)}"]
    found: list[str] = []
    for key in ("items", "additionalProperties"):
        inner_p, inner_s = branch_with(key, panel, pdefs), branch_with(key, service, sdefs)
        if inner_p and inner_s and isinstance(inner_p[key], dict):
            found += drift(inner_p[key], pdefs, inner_s[key], sdefs, f"{where}[]")
    return found + field_drift(panel, pdefs, service, sdefs, where)


def field_drift(panel: Schema, pdefs: Schema, service: Schema, sdefs: Schema,
                where: str) -> list[str]:
    model, answer = branch_with("properties", panel, pdefs), branch_with(
        "properties", service, sdefs)
    if model is None:
        return []
    sent = (answer or {}).get("properties", {})
    found: list[str] = []
    for name, field in model["properties"].items():
        if name not in sent:
            found.append(f"{where}.{name}: not in the service's schema")
        else:
            found += drift(field, pdefs, sent[name], sdefs, f"{where}.{name}")
    return found


def answer_schemas(openapi: Schema, method: str, path: str, key: str) -> list[Schema]:
    """The schema of each JSON success answer of the operation (or of the list at ``key``)."""
    responses = openapi["paths"][path][method]["responses"]
    found = [resolved(r["content"]["application/json"]["schema"],
                      openapi["components"]["schemas"])
             for status, r in responses.items()
             if status.startswith("2") and "application/json" in r.get("content", {})]
    assert found, f"{method.upper()} {path} documents no JSON answer"
    return [schema["properties"][key]["items"] if key else schema for schema in found]


def model_drift(model: type[BaseModel], openapi: Schema, method: str, path: str,
                key: str = "") -> list[str]:
    panel = model.model_json_schema(mode="validation")
    return [problem for answer in answer_schemas(openapi, method, path, key)
            for problem in drift(panel, panel.get("$defs", {}), answer,
                                 openapi["components"]["schemas"],
                                 f"{method.upper()} {path} {model.__name__}")]


# --- the contract ---------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "method", "path", "key"), READS,
                         ids=[f"{m.upper()} {p}" for _, m, p, _ in READS])
def test_every_field_the_panel_reads_is_in_the_services_answer(
        openapi: Schema, model: type[BaseModel], method: str, path: str, key: str) -> None:
    assert model_drift(model, openapi, method, path, key) == []


def test_every_model_of_the_panel_is_checked() -> None:
    answers = {cls.__name__ for _, cls in inspect.getmembers(models, inspect.isclass)
               if issubclass(cls, models._Answer) and cls is not models._Answer}
    checked = {model.__name__ for model, *_ in READS} | {
        name for model, *_ in READS for name in model.model_json_schema().get("$defs", {})}
    assert answers == checked


class _Drifted(Me):
    """The panel's ``Me`` as a careless edit might leave it."""

    nickname: str = ""  # a field the service never sends
    admin: int = 0  # type: ignore[assignment]  # retyped: the service sends a boolean


class _DriftedPage(JobPage):
    jobs: list[_Drifted]  # type: ignore[assignment]  # a nested model, read from a list


def test_drift_is_found_at_the_top_and_inside_lists(openapi: Schema) -> None:
    top = model_drift(_Drifted, openapi, "get", "/v1/me")
    assert any(".nickname: not in the service's schema" in p for p in top), top
    assert any(".admin: the service sends ['boolean']" in p for p in top), top
    nested = model_drift(_DriftedPage, openapi, "get", "/v1/jobs")
    assert any(".jobs[].nickname: not in" in p for p in nested), nested
    assert any(".jobs[].token_id: not in" in p for p in nested), nested
    assert not any(".jobs[].owner" in p for p in nested), nested  # JobOut has an owner
