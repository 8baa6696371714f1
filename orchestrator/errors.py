"""Every error the orchestrator raises, in one tree.

```
OrchestratorError                 base; never raised directly
├── ConfigError                   settings that cannot work (bad URL, unwritable folder)
├── ProvisionError                a local ComfyUI cannot be installed or started
├── WorkflowError                 a workflow cannot be used as given
│   ├── WorkflowNotFound
│   ├── WorkflowFormatError       not JSON; UI export instead of API format; malformed graph
│   │   └── WorkflowInvalid       several problems in one file, each a WorkflowFormatError
│   ├── SubstitutionError         wraps a PlaceholderError; adds the workflow name
│   └── GraphRejected             ComfyUI rejects the graph (object_info check or HTTP 400)
│       └── PromptIdRejected      a client-chosen prompt id the node's ComfyUI refuses
├── NodeError                     talking to a ComfyUI server failed
│   ├── NodeUnreachable           refused, reset, websocket dropped: retry on another node
│   ├── NodeTimeout               retry on another node
│   └── NodeProtocolError         an answer that cannot be understood
├── JobError
│   ├── JobNotFound
│   ├── JobFailed                 ComfyUI reported execution_error (node id, class, message)
│   └── JobCancelled
├── AccessDenied                  a private gallery or job read with the wrong token
├── QueueFull                     the queue, or an owner's share of it, has no room
├── InputsNotShared               regenerating another's output made from their own inputs
├── InvalidCursor                 a page cursor the store did not issue
├── IdempotencyKeyReused          an idempotency key sent again with another request
└── StoreError                    the job database cannot be opened or written
    └── IllegalTransition         an item state change the table forbids (a race or a bug)
```

Each exception keeps its context as attributes and words its message from them in
``__str__``, so a caller can both print it and act on it. Front ends catch
``OrchestratorError`` in one place and show ``str(exc)``; nothing else reaches a user.
Whether a failure is worth retrying on another node is decided from the class
(``NodeError`` yes, ``JobFailed`` / ``GraphRejected`` no), never from message text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class OrchestratorError(Exception):
    """Base of every orchestrator error; never raised directly."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(OrchestratorError):
    """A setting cannot work: a malformed URL, an unwritable folder, a bad flag value."""


class ProvisionError(OrchestratorError):
    """A local ComfyUI cannot be installed or started (download, venv, start-up)."""


# --- workflows ---------------------------------------------------------------------------


class WorkflowError(OrchestratorError):
    """A workflow cannot be used as given."""


class WorkflowNotFound(WorkflowError):
    """No workflow with that name is registered (and no such file exists)."""

    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        self.name = name
        self.known = list(known)
        hint = f"; known workflows: {', '.join(self.known)}" if self.known else ""
        super().__init__(f"no workflow named {name!r}{hint}")


class WorkflowFormatError(WorkflowError):
    """The file is not usable API-format JSON: syntax error, UI export, malformed graph.

    ``source`` names the file, ``line``/``column`` locate a JSON syntax error, ``path``
    is a JSON path inside the document (``$.3.inputs.seed``).
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str = "",
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.column = column
        self.path = path
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = self.source or "workflow"
        if self.line is not None:
            where += f", line {self.line}, column {self.column}"
        if self.path:
            where += f", at {self.path}"
        return f"{where}: {self.reason}"


class SubstitutionError(WorkflowError):
    """Placeholder substitution failed; wraps a ``placeholders.PlaceholderError``."""

    def __init__(self, workflow: str, reason: str) -> None:
        self.workflow = workflow
        self.reason = reason
        super().__init__(f"{workflow}: {reason}")


@dataclass(frozen=True)
class InputProblem:
    """One problem ComfyUI (or our pre-flight) found with one node or input of a graph."""

    node_id: str
    class_type: str
    message: str
    input_name: str | None = None
    type: str = ""
    received: object = None

    def __str__(self) -> str:
        where = f"node {self.node_id} ({self.class_type})"
        if self.input_name:
            where += f" input {self.input_name!r}"
        return f"{where}: {self.message}"


class GraphRejected(WorkflowError):
    """ComfyUI (or our pre-flight against ``/object_info``) rejected the graph.

    ``problems`` lists per-node/per-input problems; ``code`` is ComfyUI's error type
    (``prompt_outputs_failed_validation``, ``invalid_prompt``, ``prompt_no_outputs``...).
    """

    def __init__(
        self,
        reason: str,
        problems: Sequence[InputProblem] = (),
        *,
        code: str = "invalid_prompt",
        node_url: str = "",
        raw: dict[str, object] | None = None,
    ) -> None:
        self.reason = reason
        self.problems = list(problems)
        self.code = code
        self.node_url = node_url
        self.raw = raw or {}
        lines = [reason] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class PromptIdRejected(GraphRejected):
    """A client-chosen prompt id the node's ComfyUI refuses (0.26+: canonical UUIDs only).

    Raised before sending when the node's version is known to refuse it, and for
    ComfyUI's own 400 ``invalid_prompt_id``; never retried elsewhere (the id is at fault).
    """

    def __init__(self, reason: str, *, prompt_id: object = None, node_url: str = "") -> None:
        self.prompt_id = prompt_id
        where = f"ComfyUI at {node_url}" if node_url else "ComfyUI"
        super().__init__(f"prompt id {prompt_id!r} refused by {where}: {reason}",
                         code="invalid_prompt_id", node_url=node_url)


# --- nodes -------------------------------------------------------------------------------


class NodeError(OrchestratorError):
    """Talking to a ComfyUI server failed; the work may succeed on another node."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(self._compose())

    def _compose(self) -> str:
        return f"ComfyUI at {self.url}: {self.reason}"


class NodeUnreachable(NodeError):
    """Connection refused or reset, or the websocket dropped: retry on another node."""

    def _compose(self) -> str:
        return (
            f"no ComfyUI answered at {self.url} ({self.reason}); "
            "start one or configure another node"
        )


class NodeTimeout(NodeError):
    """The node did not answer (or went silent while running) within the allowed time."""


class NodeProtocolError(NodeError):
    """The node answered something we cannot understand (not ComfyUI, or a new protocol)."""


# --- jobs --------------------------------------------------------------------------------


class NotFound(OrchestratorError):
    """Nothing of that kind (``what``: a token, a blob, a node, a file...) with that id is
    visible to the caller; one 404 for every face, saying what was looked for."""

    def __init__(self, what: str, id: str) -> None:
        self.what = what
        self.id = id
        super().__init__(f"no {what} with id {id!r}")


class JobError(OrchestratorError):
    """A job cannot be found, failed, or was cancelled."""


class JobNotFound(NotFound, JobError):
    """No job (or one of its prompts, items or outputs) with that id is visible to the
    caller; ``what`` says which."""

    def __init__(self, job_id: str, what: str = "job") -> None:
        self.job_id = job_id
        super().__init__(what, job_id)


class JobFailed(JobError):
    """ComfyUI ran the graph and a node raised (``execution_error``); not retried."""

    def __init__(
        self,
        prompt_id: str,
        *,
        node_id: str | None,
        class_type: str | None,
        exception_message: str,
        exception_type: str = "",
        traceback: Sequence[str] = (),
        node_url: str = "",
    ) -> None:
        self.prompt_id = prompt_id
        self.node_id = node_id
        self.class_type = class_type
        self.exception_message = exception_message.strip()
        self.exception_type = exception_type
        self.traceback = list(traceback)
        self.node_url = node_url
        where = f"node {node_id} ({class_type})" if node_id else "the graph"
        kind = f"{exception_type}: " if exception_type else ""
        super().__init__(f"{where} failed: {kind}{self.exception_message}")


class JobCancelled(JobError):
    """The job (or prompt) was cancelled or interrupted before it finished."""

    def __init__(self, job_id: str, reason: str = "cancelled") -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id} was {reason}")


class AccessDenied(OrchestratorError):
    """The caller's token may not see or change this resource."""


class QueueFull(OrchestratorError):
    """No room for ``count`` more images: the service's queue (``scope`` "service") or
    ``owner``'s share of it (``scope`` "owner") holds ``queued`` of at most ``limit``;
    ``retry_after`` is the seconds a client is told to wait."""

    def __init__(self, *, scope: str, owner: str, queued: int, limit: int,
                 retry_after: float) -> None:
        self.scope = scope
        self.owner = owner
        self.queued = queued
        self.limit = limit
        self.retry_after = retry_after
        if scope == "owner":
            message = (f"{owner} has {queued} images waiting, the most one owner may queue "
                       f"is {limit}")
        else:
            message = f"{queued} images are waiting, the most this service queues is {limit}"
        super().__init__(message)


class InputsNotShared(OrchestratorError):
    """Another owner's output was made from inputs that stay theirs (``inputs``: "graph",
    or the names of their input images), so it cannot be regenerated by someone else."""

    def __init__(self, output_id: str, owner: str, inputs: Sequence[str],
                 workflow: str | None) -> None:
        self.output_id = output_id
        self.owner = owner
        self.inputs = list(inputs)
        if self.inputs == ["graph"]:
            message = (f"output {output_id} was made from {owner}'s own graph, which is not "
                       "shared; regenerate your own outputs, or submit a workflow with your "
                       "values")
        else:
            message = (f"output {output_id} was made from {owner}'s input images "
                       f"({', '.join(self.inputs)}), which are not shared; submit workflow "
                       f"{workflow!r} with your own images instead")
        super().__init__(message)


class StoreError(OrchestratorError):
    """The job database cannot be opened, read or written."""


class IdempotencyKeyReused(OrchestratorError):
    """An idempotency key sent again with a request other than the one that made its job."""

    def __init__(self, key: str, job_id: str) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(
            f"Idempotency-Key {key[:80]!r} was already used for job {job_id} with another "
            "request; send a new key for a new request, or the same request to get that job"
        )


class InvalidCursor(OrchestratorError):
    """A page cursor that this store did not issue (tampered, truncated, or another list's)."""

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor
        super().__init__(
            f"page cursor {cursor!r} is not valid here; start again without a cursor"
        )


class IllegalTransition(StoreError):
    """An item state change that ``jobs.ITEM_TRANSITIONS`` forbids: a race or a bug."""

    def __init__(self, item_id: str, old: str, new: str) -> None:
        self.item_id = item_id
        self.old = old
        self.new = new
        super().__init__(
            f"item {item_id} cannot go from {old} to {new}; another worker or a cancel "
            "changed it first (reload the item), or this is a bug"
        )


class WorkflowInvalid(WorkflowFormatError):
    """A workflow or metadata file has problems; ``problems`` holds each one on its own.

    Raised when a file can be read but several places in it are wrong (metadata that breaks
    the schema in three spots), so an operator sees every spot in one pass.
    """

    def __init__(self, problems: Sequence[WorkflowFormatError], *, source: str = "") -> None:
        self.problems = tuple(problems)
        super().__init__(f"{len(self.problems)} problem(s)", source=source)
        self.message = "\n".join(str(problem) for problem in self.problems)
