"""The blob store's interface: what the rest of the service needs of the place bytes live.

Outputs and input files name their bytes by sha256; everything that stores, holds, reads
or releases bytes depends on ``Blobs``, not on a kind of storage. ``outputs.BlobStore``
(a directory, which replicas share as a mounted volume) is the one implementation today;
an S3-compatible store slots in by implementing the same methods, keeping a local cache
for ``path`` (ComfyUI uploads and HTTP file responses read files).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from orchestrator.outputs import BlobRef


class Blobs(Protocol):
    """Content-addressed bytes, shared by every replica of the service."""

    def put(self, data: bytes) -> BlobRef:
        """Store ``data`` (once per content); its reference."""

    def storing(self, data: bytes) -> AbstractContextManager[BlobRef]:
        """Store ``data`` and keep it from any replica's ``release`` until the block ends
        (write the record naming it inside the block)."""

    def holding(self, sha256: str) -> AbstractContextManager[None]:
        """Keep stored bytes from any replica's ``release`` while the block runs."""

    def release(self, sha256: str, unused: Callable[[], bool]) -> bool:
        """Delete the bytes if ``unused()`` and no replica held them meanwhile; True if
        they went."""

    def exists(self, sha256: str) -> bool:
        """Whether bytes with that sha256 are stored."""

    def path(self, sha256: str) -> Path:
        """A local file with the bytes (whether or not they exist); ``NotFound`` for a
        malformed hash."""

    def delete(self, sha256: str) -> None:
        """Remove the bytes and what was derived from them, unconditionally."""

    def public_copy(self, sha256: str, mime: str) -> Path:
        """A local file with the bytes as anyone but their owner gets them (without the
        graph ComfyUI embeds)."""

    def thumbnail(self, sha256: str, size: int = ...) -> Path | None:
        """A local thumbnail file, or None for bytes that are no image."""
