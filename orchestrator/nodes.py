"""A ComfyUI node as the pool sees it: address, health, capabilities.

Health comes from ``/system_stats``; capabilities from ``/object_info`` and the node's
features (ComfyUI release, ``/api/jobs``, job cancel, ``/api/features``) are fetched when a
node first answers and again whenever it comes back after being down (a restart may have
brought new custom nodes, models or another ComfyUI release).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, Field, field_validator

from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.features import NodeFeatures, version_of
from orchestrator.comfy.stream import NodeStream
from orchestrator.dispatch import Capabilities
from orchestrator.errors import ConfigError, NodeError

# One prompt running plus one waiting in ComfyUI's own queue, so the next starts with no
# round trip, while work still moves to a node that frees up first.
DEFAULT_MAX_IN_FLIGHT = 2


class NodeConfig(BaseModel):
    """A node as an operator registers it."""

    url: str
    name: str = ""
    tags: list[str] = Field(default_factory=list)
    max_in_flight: int = Field(default=DEFAULT_MAX_IN_FLIGHT, ge=1, le=64)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"{url!r} is not an http(s) address like http://127.0.0.1:8188")
        return url.rstrip("/")

    def model_post_init(self, context: Any) -> None:
        if not self.name:
            self.name = urlparse(self.url).netloc


def node_config(url_or_config: str | NodeConfig) -> NodeConfig:
    if isinstance(url_or_config, NodeConfig):
        return url_or_config
    try:
        return NodeConfig(url=url_or_config)
    except ValueError as exc:
        raise ConfigError(f"node address {url_or_config!r}: {exc}") from exc


class NodeHealth(StrEnum):
    """Whether a node answers (``/system_stats``); not the service's own health."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class NodeInfo(BaseModel):
    """A read-only snapshot of one node, for APIs and the panel."""

    name: str
    url: str
    tags: list[str]
    health: NodeHealth
    draining: bool
    in_flight: int
    max_in_flight: int
    classes: int
    models: dict[str, list[str]]
    comfyui_version: str | None  # the node's release (system_stats), None until it answered
    last_error: str | None
    last_seen: float | None


@dataclass
class Node:
    """Live state of one node; ``check()`` is the only method that does I/O."""

    config: NodeConfig
    health: NodeHealth = NodeHealth.UNKNOWN
    draining: bool = False
    capabilities: Capabilities | None = None
    object_info: dict[str, Any] = field(default_factory=dict, repr=False)
    system_stats: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    last_seen: float | None = None
    restarts: int = 0
    features: NodeFeatures | None = None
    refreshes: int = 0  # how often capabilities were (re)read; the pool watches it
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _client: ComfyClient | None = field(default=None, repr=False)
    _stream: NodeStream | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def client(self) -> ComfyClient:
        """One client per node, shared by its items: HTTP keep-alive saves a TCP handshake
        per request (requests' connection pool is thread-safe)."""
        if self._client is None:
            self._client = ComfyClient(self.url)
        return self._client

    @property
    def stream(self) -> NodeStream:
        """The node's shared event socket, opened on first use (it reconnects by itself)."""
        with self.lock:
            if self._stream is None:
                self._stream = NodeStream(self.url)
            return self._stream

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def check(self) -> bool:
        """Ask ``/system_stats``; on coming (back) up, refresh capabilities and features.
        True if up."""
        client = self.client
        try:
            stats = client.system_stats()
            if self.health != NodeHealth.UP or self.capabilities is None:
                self._refresh(client, stats)
        except NodeError as exc:
            self.mark_down(str(exc))
            return False
        self.system_stats, self.health = stats, NodeHealth.UP
        self.last_error, self.last_seen = None, time.time()
        return True

    def _refresh(self, client: ComfyClient, stats: dict[str, Any]) -> None:
        self.object_info = client.object_info()
        self.features = client.detect_features(stats)
        self.capabilities = Capabilities.from_object_info(self.object_info)
        self.refreshes += 1
        if self.health == NodeHealth.DOWN:
            self.restarts += 1

    def mark_down(self, reason: str) -> None:
        self.health = NodeHealth.DOWN
        self.last_error = reason

    def info(self, in_flight: int) -> NodeInfo:
        caps = self.capabilities
        version = self.features.version if self.features else version_of(self.system_stats)
        return NodeInfo(
            name=self.name, url=self.url, tags=list(self.config.tags), health=self.health,
            draining=self.draining, in_flight=in_flight, max_in_flight=self.config.max_in_flight,
            classes=len(caps.classes) if caps else 0, models=caps.model_files if caps else {},
            comfyui_version=version, last_error=self.last_error, last_seen=self.last_seen,
        )
