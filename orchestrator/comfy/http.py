"""Plain HTTP to one ComfyUI node: a kept-alive urllib3 pool and the answers it gives.

``ComfyClient`` makes a handful of small calls per image (post the prompt, fetch each
output). requests spent more CPU preparing and unpacking each of those than the loopback
round trip itself took (merging settings and hooks, re-reading the environment), so the
client speaks urllib3 - which requests wraps - directly. What requests read from the
environment for a node (proxy variables with ``NO_PROXY``, the CA bundle, ``.netrc``
credentials, or credentials in the node's URL) is read once, when the pool is made.

A plain ``http://`` node reached without a proxy - the usual one, on the same host or
network - is spoken to by ``http11`` instead: a small HTTP/1.1 client over kept-alive
sockets that costs a fraction of urllib3's CPU per call. urllib3 stays for TLS and proxies.
"""

from __future__ import annotations

import json
import netrc
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3

from orchestrator.comfy.http11 import KeptAlive

POOL_SIZE = 16  # connections kept per node: one per item in flight is plenty


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes = field(repr=False)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.content)


class NodeHTTP:
    """HTTP calls to the node at ``url``; thread-safe. Raises urllib3's exceptions, or
    ``http11``'s on a plain ``http://`` node without a proxy."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]  # credentials go in a header, not the URL
        self.base = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
        self.prefix = parts.path.rstrip("/")
        self.headers = _auth_headers(parts)
        self.timeout = timeout
        proxy = _proxy_for(parts)
        self._direct: KeptAlive | None = None
        self._pool: urllib3.PoolManager | None = None
        if parts.scheme == "http" and not proxy and parts.hostname:
            self._direct = KeptAlive(parts.hostname, parts.port or 80, host_header=host,
                                     keep=POOL_SIZE)
            return
        timeouts = urllib3.Timeout(total=timeout)
        options: dict[str, Any] = {"maxsize": POOL_SIZE, "retries": False, "timeout": timeouts,
                                   "ca_certs": _ca_bundle()}
        self._pool = (urllib3.ProxyManager(proxy, **options) if proxy
                      else urllib3.PoolManager(**options))

    def request(self, method: str, path: str, *, json_body: Any = None,
                params: Mapping[str, str] | None = None,
                fields: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> Answer:
        """``method`` on ``base + path``: a JSON body, query ``params`` or multipart
        ``fields`` (a value ``(filename, bytes)`` is a file)."""
        if params:
            path += "?" + urllib.parse.urlencode(params)
        if self._direct is not None:
            return self._direct_request(method, path, json_body=json_body, fields=fields,
                                        timeout=timeout)
        assert self._pool is not None
        url = self.base + path
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = urllib3.Timeout(total=timeout)
        if json_body is not None:
            extra["json"] = json_body
        if fields is not None:
            extra["fields"] = dict(fields)
            extra["encode_multipart"] = True
        response = self._pool.request(method, url, headers=dict(self.headers) or None,
                                      preload_content=True, **extra)
        return Answer(response.status, response.headers, response.data)

    def _direct_request(self, method: str, path: str, *, json_body: Any,
                        fields: Mapping[str, Any] | None, timeout: float | None) -> Answer:
        assert self._direct is not None
        headers = dict(self.headers)
        body: bytes | None = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        elif fields is not None:
            body, headers["Content-Type"] = urllib3.encode_multipart_formdata(dict(fields))
        reply = self._direct.request(method, self.prefix + path, headers, body,
                                     self.timeout if timeout is None else timeout)
        return Answer(reply.status, reply.headers, reply.body)

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        if self._pool is not None:
            self._pool.clear()


def _proxy_for(parts: urllib.parse.SplitResult) -> str | None:
    """The proxy the environment names for the node (honouring ``NO_PROXY``), if any."""
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _ca_bundle() -> str | None:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def _auth_headers(parts: urllib.parse.SplitResult) -> dict[str, str]:
    """Basic auth from credentials in the URL, else from ``~/.netrc`` for its host."""
    user, password = parts.username, parts.password
    if user is None and parts.hostname:
        try:
            found = netrc.netrc().authenticators(parts.hostname)
        except (OSError, netrc.NetrcParseError):
            found = None
        if found is not None:
            user, password = found[0], found[2]
    if user is None:
        return {}
    credentials = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
    return dict(urllib3.make_headers(basic_auth=credentials))
