"""Fuzz the running service through its own OpenAPI document: no request gets a 5xx.

Schemathesis reads ``/openapi.json`` from a real service (a real ComfyUI node behind it)
and sends generated requests, valid and invalid, to every documented operation: REST
``/v1``, the gateway's ``/comfyui/{token}/...`` and ``/api/v2``. Every request carries an
admin token (``Authorization: Bearer``, and the same token as the gateway's path token),
so each operation is reached past authentication. The run is deterministic
(``derandomize``) and bounded (``EXAMPLES`` cases per operation, no shrinking), about a
minute or two. A failure names the operation and the request that got the 5xx.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis import GenerationMode

from tests.orchestrator.web.conftest import SOLID, SOLID_META
from tests.service import RunningService, start_running

# Cases per operation: about 60 operations × this, bounded well under the test timeout.
EXAMPLES = 25
# A node the fuzzer may add: loopback and closed (port 9, discard), so a generated URL
# never makes the service dial an arbitrary host.
SAFE_NODE_URL = "http://127.0.0.1:9"


@dataclass
class Fuzzed:
    """The service under fuzz, its admin token, and what the run sent."""

    service: RunningService
    token: str
    calls: dict[str, int] = field(default_factory=dict)
    # Operation → the statuses its cases got, to show each was reached past the token check.
    statuses: dict[str, Counter[int]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fuzzed(comfy_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A service over the real node with one quick workflow (a fuzzed submit that passes
    every check makes a 16×16 image, never a long job)."""
    root = tmp_path_factory.mktemp("fuzz")
    workflows = root / "workflows"
    workflows.mkdir()
    (workflows / "solid.json").write_text(json.dumps(SOLID))
    (workflows / "solid.meta.json").write_text(json.dumps(SOLID_META))
    service = start_running(root / "data", workflows, (comfy_url,))
    try:
        fuzz = Fuzzed(service=service, token=service.tokens.create("fuzzer", admin=True))
        yield fuzz
        print(f"\nfuzz: {len(fuzz.calls)} operations, {sum(fuzz.calls.values())} cases")
        for label, seen in sorted(fuzz.statuses.items()):
            print(f"  {label}: {dict(sorted(seen.items()))}")
    finally:
        service.stop()


@pytest.fixture(scope="module")
def openapi_document(fuzzed: Fuzzed) -> dict[str, Any]:
    response = requests.get(fuzzed.service.url + "/openapi.json", timeout=30)
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


@pytest.fixture(scope="module")
def api_schema(fuzzed: Fuzzed) -> Any:
    return schemathesis.openapi.from_url(fuzzed.service.url + "/openapi.json", timeout=30)


def test_the_openapi_document_is_valid(openapi_document: dict[str, Any]) -> None:
    """Generated clients and fuzzers refuse an invalid document (it once declared no
    ``token`` parameter for any ``/comfyui/{token}/...`` operation)."""
    errors = [str(e) for e in OpenAPIV31SpecValidator(openapi_document).iter_errors()]
    assert errors == []
    gateway = [op for path, ops in openapi_document["paths"].items()
               if path.startswith("/comfyui/{token}/") for op in ops.values()]
    assert gateway and all(
        any(p["name"] == "token" and p["in"] == "path" for p in op["parameters"])
        for op in gateway)


def test_no_request_gets_a_server_error(api_schema: Any, fuzzed: Fuzzed) -> None:
    """Every operation, positive and negative cases: each 5xx is listed with its request."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        failures += fuzz(operation, fuzzed)
    assert len(fuzzed.calls) == len(operations)
    unreached = [label for label, seen in fuzzed.statuses.items() if set(seen) <= {401, 403}]
    assert unreached == []
    assert failures == []


def fuzz(operation: Any, fuzzed: Fuzzed) -> list[str]:
    """The 5xx answers ``EXAMPLES`` generated cases of ``operation`` got."""
    tokens = {"token": fuzzed.token} if "{token}" in operation.path else None
    cases = st.one_of(*(operation.as_strategy(mode, path_parameters=tokens)
                        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)))
    failures: list[str] = []

    @given(case=cases)
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def send(case: Any) -> None:
        if case.method == "POST" and case.path == "/v1/nodes" and isinstance(case.body, dict):
            case.body["url"] = SAFE_NODE_URL
        label = f"{case.method} {case.path}"
        fuzzed.calls[label] = fuzzed.calls.get(label, 0) + 1
        response = case.call(headers={"Authorization": f"Bearer {fuzzed.token}"}, timeout=60)
        fuzzed.statuses.setdefault(label, Counter())[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{label} -> {response.status_code}: {case.as_curl_command()}"
                            f"\n  {response.text[:300]}")

    send()
    return failures
