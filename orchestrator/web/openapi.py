"""The service's OpenAPI document, valid as generated clients and API fuzzers read it.

FastAPI declares a path parameter only when an endpoint (or one of its dependencies)
names it. The gateway's ``/comfyui/{token}/...`` routes read the token in their auth
dependency from the path as ComfyUI clients send it, so their operations carried a
``{token}`` template with no parameter, which OpenAPI forbids: every such operation was
refused by validators. ``document`` declares each templated segment that an operation
leaves undeclared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.routing import BaseRoute

_TEMPLATE = re.compile(r"\{([^}/]+)\}")
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# What a segment means, for parameters no endpoint declares itself.
_DESCRIPTIONS = {
    "token": "the caller's API token (`comfy-orch token create`), in the path because "
             "ComfyUI clients cannot send an Authorization header",
}


def document(*, title: str, version: str, description: str,
             routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document of ``routes``, every path template declared as a parameter."""
    doc = get_openapi(title=title, version=version, description=description, routes=routes)
    for path, operations in doc.get("paths", {}).items():
        names = _TEMPLATE.findall(path)
        for method, operation in operations.items():
            if method in _METHODS and names:
                declare_path_parameters(operation, names)
    return doc


def declare_path_parameters(operation: dict[str, Any], names: Sequence[str]) -> None:
    """Add a required string path parameter for each of ``names`` ``operation`` lacks."""
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    declared = {p.get("name") for p in parameters if p.get("in") == "path"}
    for name in names:
        if name not in declared:
            parameters.insert(0, {
                "name": name, "in": "path", "required": True,
                "description": _DESCRIPTIONS.get(name, f"the {name} of the resource"),
                "schema": {"type": "string", "title": name.replace("_", " ").title()},
            })


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` inlined, for an ``openapi_extra`` request
    body: a ``#/$defs/...`` reference there would resolve against the whole document."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    return _inlined(schema, defs)  # type: ignore[no-any-return]


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inlined(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
    return {key: _inlined(value, defs) for key, value in node.items()}
