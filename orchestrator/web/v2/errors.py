"""Comfy API v2 errors, and the one translation of any failure into the v2 envelope.

Every v2 route answers a failure as ``{"error": {"code", "message", "details"}}`` with the
codes the SDK maps to typed exceptions (``invalid_workflow`` → ``InvalidWorkflow``, ...).
The v2 refusals are ``ApiError`` subclasses, so the app's own handler would render them
the same way; ``v2_error`` also maps the orchestrator's errors to v2 codes, and anything
unexpected to a generic 500 ``upstream_error`` (the contract: 5xx messages say nothing of
nodes, paths or tracebacks).

```
ApiError (orchestrator.web.errors)
├── InvalidWorkflow        422 invalid_workflow, details.node_errors per node
│   └── WorkflowFormatUi   422 workflow_format_ui
├── MissingAsset           422 missing_asset
├── InvalidBody            422 invalid_request (and metadata_invalid, invalid_cursor...)
├── IdempotencyKeyReuse    422 idempotency_key_reuse
├── HashMismatch           409 hash_mismatch
├── AssetInUse             409 asset_in_use
├── BlobNotFound           404 blob_not_found
├── NotFound               404 not_found
├── Refused                any other 4xx (the REST mapping's status and code)
└── UpstreamError          500 upstream_error
```

Anything that ends as a 500 is logged with its traceback here, since the response says
nothing of it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from orchestrator.errors import (
    AccessDenied,
    GraphRejected,
    InputProblem,
    InvalidCursor,
    OrchestratorError,
    WorkflowFormatError,
    WorkflowNotFound,
)
from orchestrator.errors import (
    NotFound as Missing,
)
from orchestrator.web.body import InvalidJson
from orchestrator.web.errors import ApiError, body, envelope

log = logging.getLogger(__name__)

# The only message a 5xx carries: the contract keeps upstream detail out of responses.
UPSTREAM_MESSAGE = "the service could not complete the request; try again later"


class InvalidWorkflow(ApiError):
    """The graph is malformed or would be rejected by ComfyUI; details name each node."""

    status, code = 422, "invalid_workflow"


class WorkflowFormatUi(InvalidWorkflow):
    """A ComfyUI UI export (``nodes``/``links``) was sent instead of the API format."""

    code = "workflow_format_ui"


class MissingAsset(ApiError):
    """A ``core/ASSET`` reference names no asset the caller owns."""

    status, code = 422, "missing_asset"


class InvalidBody(ApiError):
    """A request field, header or query the contract does not allow, with its own code."""

    status = 422

    def __init__(self, message: str, *, code: str = "invalid_request",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.code = code


class IdempotencyKeyReuse(ApiError):
    """The ``Idempotency-Key`` was already presented (keys are single use, no replay)."""

    status, code = 422, "idempotency_key_reuse"


class HashMismatch(ApiError):
    """The uploaded bytes do not hash to the ``expected_hash`` the client declared."""

    status, code = 409, "hash_mismatch"


class AssetInUse(ApiError):
    """The asset is held by the service (a job's output) and cannot be deleted."""

    status, code = 409, "asset_in_use"


class BlobNotFound(ApiError):
    """No blob with that hash that the caller may mint an asset from."""

    status, code = 404, "blob_not_found"


class NotFound(ApiError):
    """No job or asset with that id visible to the caller (others' read the same)."""

    status, code = 404, "not_found"


class Refused(ApiError):
    """A client error the v2 contract has no code of its own for (status from the REST
    mapping: 400 bad cursor, 409 conflict, 413 too large, ...)."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.status, self.code = status, code


# Framework refusals (HTTPException) by status: the code each answers with.
_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type", 429: "rate_limited"}


class UpstreamError(ApiError):
    """Anything the caller cannot fix: a node, the store, or a bug of ours."""

    status, code = 500, "upstream_error"


def v2_error(exc: Exception) -> ApiError:
    """The v2 refusal for ``exc`` (the most specific rule wins); a 5xx is logged."""
    refusal = _client_error(exc)
    if refusal is not None:
        return refusal
    if isinstance(exc, OrchestratorError) and envelope(exc).status < 500:
        rest = envelope(exc)
        error = rest.body["error"]
        refused = Refused(rest.status, error["code"], error["message"], error["details"])
        refused.headers = dict(rest.headers)  # e.g. a full queue's Retry-After
        return refused
    log.error("v2 request failed: %s", type(exc).__name__, exc_info=exc)
    return UpstreamError(UPSTREAM_MESSAGE)


def _client_error(exc: Exception) -> ApiError | None:
    """The v2 answer for a failure the caller can fix; None for anything else."""
    if isinstance(exc, InvalidJson):  # v2 answers every malformed request with 422
        return InvalidBody(str(exc), details=exc.details)
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return _framework(exc)
    if isinstance(exc, Missing | AccessDenied | WorkflowNotFound):
        return NotFound(_not_found_message(exc))
    if isinstance(exc, GraphRejected):
        return graph_rejected(exc)
    if isinstance(exc, WorkflowFormatError):
        return InvalidWorkflow(str(exc), details={"path": exc.path, "node_errors": {}})
    if isinstance(exc, InvalidCursor):
        return InvalidBody(str(exc), code="invalid_cursor")
    if isinstance(exc, RequestValidationError):
        return _validation(exc)
    return None


def _framework(exc: HTTPException) -> ApiError:
    # Starlette words a malformed multipart body as a 400: an invalid request for v2.
    code = _HTTP_CODES.get(exc.status_code)
    if code is None:
        return InvalidBody(str(exc.detail))
    refused = Refused(exc.status_code, code, str(exc.detail))
    refused.headers = dict(exc.headers or {})
    return refused


def _not_found_message(exc: OrchestratorError) -> str:
    if isinstance(exc, Missing):
        return f"no {exc.what} with id {exc.id!r}"
    return "not found"


def graph_rejected(exc: GraphRejected) -> InvalidWorkflow:
    """``invalid_workflow`` whose message names the first node at fault and whose
    ``details.node_errors`` lists every problem per node id."""
    problems = exc.problems
    message = _first_problem(problems) if problems else exc.reason
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s); see details.node_errors)"
    return InvalidWorkflow(message, details={"node_errors": node_errors(problems)})


def _first_problem(problems: list[InputProblem]) -> str:
    first = problems[0]
    where = f"node {first.node_id} ({first.class_type})"
    if first.input_name:
        where += f", input {first.input_name!r}"
    return f"{where}: {first.message}"


def node_errors(problems: list[InputProblem]) -> dict[str, list[dict[str, Any]]]:
    """Problems grouped by node id, each as the contract's ``{field, reason}`` plus text."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for p in problems:
        grouped.setdefault(p.node_id, []).append({
            "field": p.input_name, "reason": p.type or "invalid", "message": p.message,
            "class_type": p.class_type, "received": _jsonable(p.received)})
    return grouped


def _jsonable(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _validation(exc: RequestValidationError) -> InvalidBody:
    errors = [{"field": ".".join(str(p) for p in e.get("loc", ())) or "request",
               "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    return InvalidBody(f"{first['field']}: {first['message']}", details={"errors": errors})


def response(exc: ApiError) -> JSONResponse:
    """The JSON response carrying ``exc`` in the v2 envelope."""
    return JSONResponse(body(exc.code, str(exc), exc.details), status_code=exc.status,
                        headers=exc.headers)
