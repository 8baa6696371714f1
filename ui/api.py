"""A small typed client for the service's REST API: the panel's only way to the service.

Every request goes through :meth:`ApiClient._call`, the one place where ``requests``'
exceptions, the service's error envelope and unexpected answers become a ``PanelError``
whose message says what is wrong, where, and what to do. Views show ``str(exc)``; nothing
from ``requests`` or pydantic leaks out of this module.

```
PanelError              the service could not do what the panel asked
├── ServiceUnreachable  no answer at the address (refused, timed out, bad URL)
├── TokenRefused        401: no token, an unknown one, or a revoked one
├── ServiceRefused      any other 4xx/5xx envelope (status, code, details kept)
└── UnexpectedAnswer    an answer that is not the JSON the panel expects
```
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ValidationError

from ui.events import Frame, parse_frames
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

# --- Timeouts (seconds) ---------------------------------------------------------------------
CONNECT_TIMEOUT_S = 3.0  # loopback or LAN: a service that does not accept in 3 s is not there
READ_TIMEOUT_S = 30.0  # the slowest ordinary answer is a submit that renders a graph once
# An event stream is quiet between events; the service sends a keep-alive every 15 s by
# default, so two missed keep-alives mean the stream is dead and should be reopened.
STREAM_READ_TIMEOUT_S = 40.0

M = TypeVar("M", bound=BaseModel)
ImageFile = tuple[str, bytes, str]  # file name, bytes, content type


class PanelError(Exception):
    """The service could not do what the panel asked; ``str()`` is the message to show.

    The panel's own root: it runs without the service's code, so it shares no error type
    with it; the service's refusals arrive as ``ServiceRefused`` with their code."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ServiceUnreachable(PanelError):
    """Nothing answered at the service's address (refused, timed out, malformed URL)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the service at {url} is unreachable ({reason}); start it with "
                         "'comfy-orch serve' or correct the address in the sidebar", url=url)
        self.reason = reason


class TokenRefused(PanelError):
    """The service answered 401: the token is missing, unknown or revoked."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"the token was refused by the service at {url} ({detail}); paste "
                         "a valid token in the sidebar", url=url)


class ServiceRefused(PanelError):
    """Any other error answer; keeps the HTTP status, the error code and its details."""

    def __init__(self, url: str, status: int, code: str, message: str,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(_refusal_text(status, code, message), url=url)
        self.status, self.code = status, code
        self.details: dict[str, Any] = dict(details or {})


class UnexpectedAnswer(PanelError):
    """An answer the panel cannot read: not JSON, or missing fields it needs."""

    def __init__(self, url: str, what: str) -> None:
        super().__init__(f"the service at {url} answered in a shape this panel does not "
                         f"know ({what}); is it a comfy-orchestrator service of a matching "
                         "version?", url=url)


def _refusal_text(status: int, code: str, message: str) -> str:
    if status == 403:
        return f"{message} (ask the operator for an admin token)"
    if status == 405:
        return "this service does not offer that action yet (405); update the service"
    if status >= 500:
        return f"the service failed ({status} {code}): {message}"
    return message


class ApiClient:
    """The REST API at ``base_url`` called with bearer ``token``; cheap to create.

    Every method raises ``PanelError`` (one of the four kinds above) on failure.
    """

    def __init__(self, base_url: str, token: str, *,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self.token = token.strip()
        self._http = session or requests.Session()

    # --- service ------------------------------------------------------------------------

    def health(self) -> ServiceHealth:
        """``GET /v1/health``; needs no token, so it tells "down" apart from "refused"."""
        return _parsed(ServiceHealth, self._json("GET", "/v1/health", auth=False), self.base_url)

    def me(self) -> Me:
        """``GET /v1/me``: who the token stands for; ``TokenRefused`` when it is refused."""
        return _parsed(Me, self._json("GET", "/v1/me"), self.base_url)

    # --- workflows ----------------------------------------------------------------------

    def workflows(self) -> list[WorkflowSummary]:
        data = self._json("GET", "/v1/workflows")
        return [_parsed(WorkflowSummary, w, self.base_url) for w in data.get("workflows", [])]

    def workflow(self, name: str) -> WorkflowDetail:
        return _parsed(WorkflowDetail, self._json("GET", f"/v1/workflows/{name}"),
                       self.base_url)

    def put_workflow(self, name: str, graph: Mapping[str, Any],
                     meta: Mapping[str, Any] | None) -> WorkflowDetail:
        """Store ``NAME.json`` (+ ``NAME.meta.json``); ``ServiceRefused`` 422 lists problems."""
        body = {"graph": dict(graph), "meta": None if meta is None else dict(meta)}
        return _parsed(WorkflowDetail, self._json("PUT", f"/v1/workflows/{name}", json=body),
                       self.base_url)

    def check_workflow(self, name: str, graph_text: str,
                       meta_text: str | None = None) -> WorkflowCheck:
        """The service's report on the files' texts as ``NAME`` (JSON mistakes come back
        with their line), the pool's check included; nothing is stored."""
        body = {"graph": graph_text, "meta": meta_text}
        return _parsed(WorkflowCheck, self._json("POST", f"/v1/workflows/{name}/check",
                                                 json=body), self.base_url)

    def preview(self, name: str) -> bytes:
        """The workflow's preview image; ``ServiceRefused`` 404 when it has none."""
        return self._call("GET", f"/v1/workflows/{name}/preview").content

    def delete_workflow(self, name: str) -> None:
        self._call("DELETE", f"/v1/workflows/{name}")

    # --- jobs ---------------------------------------------------------------------------

    def submit(self, request: Mapping[str, Any], images: Mapping[str, ImageFile]) -> Job:
        """``POST /v1/jobs``: JSON, or multipart when ``images`` holds input files (each
        sent under its placeholder's name)."""
        if not images:
            return _parsed(Job, self._json("POST", "/v1/jobs", json=dict(request)),
                           self.base_url)
        form = {k: json.dumps(v) if isinstance(v, dict) else str(v)
                for k, v in request.items() if v is not None}
        return _parsed(Job, self._json("POST", "/v1/jobs", data=form, files=dict(images)),
                       self.base_url)

    def job(self, job_id: str) -> Job:
        return _parsed(Job, self._json("GET", f"/v1/jobs/{job_id}"), self.base_url)

    def jobs(self, *, limit: int = 20, cursor: str | None = None,
             **filters: str | None) -> JobPage:
        """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
        params = {k: v for k, v in {**filters, "cursor": cursor}.items() if v}
        return _parsed(JobPage, self._json("GET", "/v1/jobs", params={**params, "limit": limit}),
                       self.base_url)

    def cancel(self, job_id: str) -> Job:
        return _parsed(Job, self._json("DELETE", f"/v1/jobs/{job_id}"), self.base_url)

    def retry(self, job_id: str) -> Job:
        return _parsed(Job, self._json("POST", f"/v1/jobs/{job_id}/retry"), self.base_url)

    @contextlib.contextmanager
    def events(self, job_id: str, *, after: int | None = None) -> Iterator[Iterator[Frame]]:
        """The job's Server-Sent Events from after event ``after`` (a snapshot first when
        None); the stream ends after the job's last event. Closed on leaving ``with``."""
        headers = {} if after is None else {"Last-Event-ID": str(after)}
        response = self._call("GET", f"/v1/jobs/{job_id}/events", headers=headers,
                              stream=True, timeout=STREAM_READ_TIMEOUT_S)
        try:
            with self._translated(f"/v1/jobs/{job_id}/events"):
                yield parse_frames(response.iter_lines(decode_unicode=True))
        finally:
            response.close()

    # --- outputs ------------------------------------------------------------------------

    def output(self, output_id: str) -> Output:
        return _parsed(Output, self._json("GET", f"/v1/outputs/{output_id}"), self.base_url)

    def content(self, output_id: str) -> bytes:
        return self._call("GET", f"/v1/outputs/{output_id}/content").content

    def thumbnail(self, output_id: str, size: int = 256) -> bytes:
        return self._call("GET", f"/v1/outputs/{output_id}/thumbnail",
                          params={"size": size}).content

    def regenerate(self, output_id: str, seed: int | None) -> Job:
        """A new job with the output's values; ``seed`` None draws a new one."""
        return _parsed(Job, self._json("POST", f"/v1/outputs/{output_id}/regenerate",
                                       json={"seed": seed}), self.base_url)

    def delete_output(self, output_id: str) -> None:
        self._call("DELETE", f"/v1/outputs/{output_id}")

    def outputs(self, *, limit: int = 50, cursor: str | None = None,
                **filters: str | None) -> OutputPage:
        """Outputs the token may see, newest first, filtered by ``workflow``, ``owner``,
        ``character``, ``conversation`` or ``job``; ``next_cursor`` continues."""
        params = {k: v for k, v in {**filters, "cursor": cursor}.items() if v}
        return _parsed(OutputPage, self._json("GET", "/v1/outputs",
                                              params={**params, "limit": limit}), self.base_url)

    def gallery(self, *, character: str | None = None, conversation: str | None = None,
                limit: int = 50, cursor: str | None = None) -> OutputPage:
        """A character's public gallery or a conversation's private one (exactly one)."""
        params = {k: v for k, v in {"character": character, "conversation": conversation,
                                    "cursor": cursor}.items() if v}
        return _parsed(OutputPage, self._json("GET", "/v1/gallery",
                                              params={**params, "limit": limit}), self.base_url)

    # --- nodes --------------------------------------------------------------------------

    def nodes(self) -> NodeList:
        return _parsed(NodeList, self._json("GET", "/v1/nodes"), self.base_url)

    def add_node(self, url: str, *, name: str = "", tags: list[str] | None = None,
                 max_in_flight: int | None = None) -> Node:
        body = {"url": url, "name": name, "tags": tags or [], "max_in_flight": max_in_flight}
        return _parsed(Node, self._json("POST", "/v1/nodes", json=body), self.base_url)

    def remove_node(self, name: str) -> None:
        self._call("DELETE", f"/v1/nodes/{name}")

    def drain_node(self, name: str, draining: bool) -> Node:
        return _parsed(Node, self._json("POST", f"/v1/nodes/{name}/drain",
                                        json={"draining": draining}), self.base_url)

    def object_info(self, classes: list[str] | None = None) -> dict[str, Any]:
        """The pool's merged ``/object_info``, or only ``classes`` of it (unknown ones are
        left out); empty while no node has answered."""
        if classes is not None and not classes:
            return {}
        params = [("class", c) for c in classes or []]
        return self._json("GET", "/v1/object_info", params=params)

    # --- the one translation ------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._call(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError as exc:
            raise UnexpectedAnswer(self.base_url, f"{method} {path} is not JSON") from exc
        if not isinstance(data, dict):
            raise UnexpectedAnswer(self.base_url, f"{method} {path} is not a JSON object")
        return data

    def _call(self, method: str, path: str, *, auth: bool = True,
              timeout: float = READ_TIMEOUT_S, headers: Mapping[str, str] | None = None,
              **kwargs: Any) -> requests.Response:
        sent = dict(headers or {})
        if auth:
            sent["Authorization"] = f"Bearer {self.token}"
        with self._translated(path):
            response = self._http.request(method, self.base_url + path, headers=sent,
                                          timeout=(CONNECT_TIMEOUT_S, timeout), **kwargs)
        if response.status_code >= 400:
            raise self._refusal(response)
        return response

    @contextlib.contextmanager
    def _translated(self, path: str) -> Iterator[None]:
        try:
            yield
        except requests.exceptions.InvalidURL as exc:
            raise ServiceUnreachable(self.base_url, "the address is not a valid URL") from exc
        except (requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise ServiceUnreachable(self.base_url, "the address must start with http:// "
                                                    "or https://") from exc
        except requests.exceptions.Timeout as exc:
            raise ServiceUnreachable(self.base_url, f"no answer to {path} in time") from exc
        except requests.exceptions.RequestException as exc:
            raise ServiceUnreachable(self.base_url, _reason(exc)) from exc

    def _refusal(self, response: requests.Response) -> PanelError:
        code, message, details = _envelope(response)
        if response.status_code == 401:
            return TokenRefused(self.base_url, message)
        return ServiceRefused(self.base_url, response.status_code, code, message, details)


def _reason(exc: requests.exceptions.RequestException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    return type(exc).__name__


def _envelope(response: requests.Response) -> tuple[str, str, dict[str, Any]]:
    """The ``{"error": {code, message, details}}`` of an error answer, or a stand-in."""
    try:
        error = response.json().get("error")
        return str(error["code"]), str(error["message"]), dict(error.get("details") or {})
    except (ValueError, AttributeError, KeyError, TypeError):
        reason = response.reason or "error"
        return "http_error", f"HTTP {response.status_code} {reason}", {}


def _parsed(model: type[M], data: Any, url: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        raise UnexpectedAnswer(url, f"{model.__name__}.{where}: {first['msg']}") from exc
