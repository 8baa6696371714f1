"""HTTP errors of the service and the one mapping from any orchestrator error to a response.

The web layer's own refusals (no token, too big, too fast) are ``ApiError`` subclasses of
``OrchestratorError``, so one exception handler turns every error into the same envelope
``{"error": {"code", "message", "details"}}``. ``envelope`` is pure: an exception in, the
status, body and headers out.

```
OrchestratorError
└── ApiError                      an HTTP refusal: status, code, headers
    ├── Unauthorized              401 no token, a wrong one, or a revoked one
    ├── Forbidden                 403 the token is not an admin token
    ├── InvalidRequest            400 a malformed body, field, header or name
    ├── Conflict                  409 the resource already exists
    ├── PayloadTooLarge           413 a body or upload over its limit
    ├── UnsupportedMedia          415 an upload that is not an image Pillow can read
    ├── RangeNotSatisfiable       416 a Range outside the file
    ├── PromptTooLong             422 a prompt over the character limit
    └── TooManyRequests           429 rate_limited or queue_full, with Retry-After
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import (
    AccessDenied,
    ConfigError,
    GraphRejected,
    IdempotencyKeyReused,
    InvalidCursor,
    JobError,
    NodeError,
    NotFound,
    OrchestratorError,
    QueueFull,
    StoreError,
    SubstitutionError,
    WorkflowFormatError,
    WorkflowInvalid,
    WorkflowNotFound,
)


class ApiError(OrchestratorError):
    """An HTTP refusal with its status, error code and extra headers."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}
        self.headers = headers or {}


class Unauthorized(ApiError):
    """No ``Authorization: Bearer`` token, or one that is unknown or revoked."""

    status, code = 401, "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    """The route changes the service and the token is not an admin token."""

    status, code = 403, "forbidden"


class InvalidRequest(ApiError):
    """A malformed body, field, header, name or id."""

    status, code = 400, "invalid_request"


class Conflict(ApiError):
    """The resource already exists (a node name)."""

    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    """A request body or an uploaded file over its limit."""

    status, code = 413, "payload_too_large"


class UnsupportedMedia(ApiError):
    """An upload that is not an image Pillow can read, or a body type we do not take."""

    status, code = 415, "unsupported_media_type"


class RangeNotSatisfiable(ApiError):
    """A ``Range`` header outside the file."""

    status, code = 416, "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"the requested range is outside the file ({size} bytes)",
                         headers={"Content-Range": f"bytes */{size}"})


class PromptTooLong(ApiError):
    """A prompt over the character limit."""

    status, code = 422, "prompt_too_long"


class TooManyRequests(ApiError):
    """Over a rate (``rate_limited``) or the queue is full (``queue_full``).

    ``retry_after`` (seconds, any float) becomes one whole number of at least 1, rounded
    up so a client that waits it is let in: the ``Retry-After`` header, the end of the
    message ("retry in N s") and ``details.retry_after`` all say that same number.
    """

    status = 429

    def __init__(self, code: str, message: str, retry_after: float, *,
                 details: dict[str, Any] | None = None) -> None:
        seconds = retry_seconds(retry_after)
        super().__init__(f"{message}; retry in {seconds} s",
                         details={**(details or {}), "retry_after": seconds},
                         headers={"Retry-After": str(seconds)})
        self.code = code
        self.retry_after = seconds


def retry_seconds(wait: float) -> int:
    """``wait`` as whole seconds for ``Retry-After``: rounded up, and at least 1."""
    return max(1, math.ceil(wait))


@dataclass(frozen=True)
class Envelope:
    """What a response for an error carries."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error envelope every route answers with."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


# 5xx messages are generic: a node's address or a database path is not the caller's business.
_UPSTREAM = "a ComfyUI node failed to answer; try again later"
_INTERNAL = "the service could not complete the request; try again later"


def envelope(exc: OrchestratorError) -> Envelope:
    """The response for ``exc``: the most specific rule wins (first match below)."""
    if isinstance(exc, ApiError):
        return Envelope(exc.status, body(exc.code, str(exc), exc.details), exc.headers)
    if isinstance(exc, QueueFull):
        return envelope(queue_full(exc))
    if isinstance(exc, NotFound | WorkflowNotFound | AccessDenied):
        return Envelope(404, body("not_found", _not_found_message(exc)))
    if isinstance(exc, WorkflowFormatError | SubstitutionError | GraphRejected):
        return Envelope(422, body("invalid_workflow", str(exc), {"problems": problems(exc)}))
    if isinstance(exc, InvalidCursor | ConfigError):
        return Envelope(400, body("invalid_request", str(exc)))
    if isinstance(exc, IdempotencyKeyReused):  # as v2 answers it
        return Envelope(422, body("idempotency_key_reuse", str(exc), {"job_id": exc.job_id}))
    if isinstance(exc, NodeError):
        return Envelope(502, body("upstream_error", _UPSTREAM))
    if isinstance(exc, JobError):
        return Envelope(409, body("conflict", str(exc)))
    if isinstance(exc, StoreError):
        return Envelope(503, body("unavailable", _INTERNAL))
    return Envelope(500, body("internal_error", _INTERNAL))


def queue_full(exc: QueueFull) -> TooManyRequests:
    """429 ``queue_full`` for a refusal of the queue bound, with its ``Retry-After``."""
    return TooManyRequests("queue_full", str(exc), exc.retry_after,
                           details={"limit": exc.limit, "queued": exc.queued,
                                    "scope": exc.scope})


def _not_found_message(exc: OrchestratorError) -> str:
    # Another owner's private data reads exactly like data that does not exist.
    return "not found" if isinstance(exc, AccessDenied) else str(exc)


def problems(exc: OrchestratorError) -> list[dict[str, Any]]:
    """Each problem of a workflow error as a JSON object (where, what)."""
    if isinstance(exc, GraphRejected):
        return [{"node_id": p.node_id, "class_type": p.class_type, "input": p.input_name,
                 "type": p.type, "message": p.message} for p in exc.problems]
    if isinstance(exc, WorkflowInvalid):
        return [_format_problem(p) for p in exc.problems]
    if isinstance(exc, WorkflowFormatError):
        return [_format_problem(exc)]
    return [{"message": str(exc)}]


def _format_problem(exc: WorkflowFormatError) -> dict[str, Any]:
    return {"source": exc.source, "path": exc.path, "line": exc.line, "column": exc.column,
            "message": exc.reason}
