"""The Comfy API v2 spec (``spec/openapi.yaml`` of the comfy-sdk 0.5.0 sdist) as a checker.

The spec is fetched at test time with pip into ``~/.cache/comfy-orchestrator`` (never
committed) and turned into JSON Schemas: OpenAPI 3.0's ``nullable`` becomes a ``null``
alternative, ``$ref``s are resolved, and ``date-time`` demands a timezone (the SDK
refuses naive timestamps). ``check_response`` validates any v2 response by method, path
and status; ``check_event`` validates one SSE payload by its event name.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml  # type: ignore[import-untyped]

SDK_VERSION = "0.5.0"
CACHE = Path.home() / ".cache" / "comfy-orchestrator" / f"comfy-sdk-{SDK_VERSION}"
SPEC_MEMBER = f"comfy_sdk-{SDK_VERSION}/spec/openapi.yaml"


def fetch_spec(cache: Path = CACHE) -> Path:
    """The spec file, downloaded (``pip download --no-binary``) and unpacked on first use.

    Raises ``RuntimeError`` with pip's output when it cannot be fetched.
    """
    target = cache / "openapi.yaml"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         f"comfy-sdk=={SDK_VERSION}", "-d", str(cache)],
        capture_output=True, text=True, timeout=300, check=False)
    archives = sorted(cache.glob(f"comfy_sdk-{SDK_VERSION}.tar.gz"))
    if done.returncode != 0 or not archives:
        raise RuntimeError(f"pip download comfy-sdk=={SDK_VERSION} failed:\n{done.stderr[-2000:]}")
    with tarfile.open(archives[0]) as archive:
        source = archive.extractfile(SPEC_MEMBER)
        if source is None:
            raise RuntimeError(f"{SPEC_MEMBER} is not in {archives[0]}")
        target.write_bytes(source.read())
    return target


def _aware_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.tzinfo is not None


def _absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(_aware_datetime)
FORMATS.checks("uri")(_absolute_uri)


@dataclass
class Spec:
    """The loaded spec; each ``check_*`` raises ``jsonschema.ValidationError`` on a mismatch."""

    doc: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Spec:
        return cls(yaml.safe_load(path.read_text()))

    def schema(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._convert({"$ref": f"#/components/schemas/{name}"})
        return found

    def _resolve(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def _convert(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self._convert(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self._convert(self._resolve(node["$ref"]))
        out = {k: self._convert(v) for k, v in node.items() if k != "nullable"}
        return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") else out

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        for template, ops in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method.lower() in ops:
                found: dict[str, Any] = ops[method.lower()]
                return found
        return None

    def check_response(self, method: str, path: str, status: int, body: Any) -> None:
        """Validate a JSON body against what the spec declares for that answer."""
        if status >= 400:
            self._validate(body, self.schema("ErrorEnvelope"))
            return
        op = self.operation(method, path)
        if op is None:
            self._check_extra(path, body)
            return
        declared = op["responses"].get(str(status))
        assert declared is not None, f"{method} {path} answered {status}, not in the spec"
        declared = self._convert(declared)
        schema = (declared.get("content") or {}).get("application/json", {}).get("schema")
        if schema is not None:
            self._validate(body, schema)

    def _check_extra(self, path: str, body: Any) -> None:
        """Routes the SDK uses that the vendored spec does not carry yet (job list, health)."""
        if path.rstrip("/").endswith("/api/v2/jobs"):
            self._validate(body, {"type": "object", "required": ["jobs", "next_cursor"],
                                  "properties": {"jobs": {"type": "array"}}})
            status = self.schema("JobStatus")
            for item in body["jobs"]:
                self._validate(item, {"type": "object",
                                      "required": ["id", "status", "create_time", "metadata"],
                                      "properties": {"status": status,
                                                     "create_time": {"format": "date-time"},
                                                     "update_time": {"format": "date-time"}}})
        else:
            assert path.rstrip("/").endswith("/api/v2/health"), f"{path} is not in the spec"

    def check_event(self, name: str, data: Any) -> None:
        """Validate one SSE payload against the spec's ``x-sse-events`` catalogue."""
        catalogue = self.doc["paths"]["/api/v2/jobs/{id}/events"]["get"]["x-sse-events"]
        assert name in catalogue, f"SSE event {name!r} is not in the spec"
        self._validate(data, self._convert({"$ref": catalogue[name]["schema"]}))

    @staticmethod
    def _validate(instance: Any, schema: Any) -> None:
        jsonschema.validate(instance, schema, format_checker=FORMATS)
