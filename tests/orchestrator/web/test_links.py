"""One rule for what a link is, shared by the pure core and the service, and what it means
for a graph posted with a link ComfyUI cannot follow."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import placeholders
from orchestrator import workflow
from tests import graphs
from tests.orchestrator.web.conftest import Api, Service

ROOT = Path(__file__).resolve().parents[3]


def test_the_service_and_the_core_share_one_is_link() -> None:
    assert workflow.is_link is placeholders.is_link
    defined = [str(path.relative_to(ROOT))
               for package in ("orchestrator", "placeholders", "ui")
               for path in sorted((ROOT / package).rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.FunctionDef) and node.name == "is_link"]
    assert defined == ["placeholders/graph.py"]


@pytest.mark.parametrize(("value", "link"), [
    (["4", 0], True),
    (["4", 12], True),
    ([4, 0], False),  # node ids are strings: ComfyUI finds no node 4 either
    (["4", True], False),
    (["4", 0.0], False),
    (["4", 0, 1], False),
    (("4", 0), False),
    (["%prompt%", "x"], False),
    ("4", False),
])
def test_a_link_is_a_string_node_id_and_an_integer_index(value: Any, link: bool) -> None:
    assert placeholders.is_link(value) is link


def test_a_link_by_numeric_node_id_is_refused_at_submit_naming_the_input(
        api: Api, service: Service) -> None:
    """Taken for a link before, such a graph was queued and failed inside ComfyUI."""
    graph = graphs.solid_image(8, 8)
    graph["2"]["inputs"]["images"] = [1, 0]
    response = api.post("/v1/jobs", token=service.bob, json={"graph": graph})
    assert response.status_code == 422, response.text
    problems = response.json()["error"]["details"]["problems"]
    assert ("2", "images") in {(p["node_id"], p["input"]) for p in problems}
