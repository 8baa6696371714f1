"""Files ComfyUI clients upload (``/upload/image``), by ComfyUI's (type, subfolder, name).

A ComfyUI client uploads an image, reads back the name the server chose and puts that name
in its graph (``LoadImage.image = "photo (1).png"``). The file is one of the caller's input
files in the core (``orchestrator.inputs``, through the façade); this module only
translates ComfyUI's addresses: a folder type, a subfolder and a name, checked the way
ComfyUI checks them. Names follow ComfyUI's rules in the core: a clash with different
content becomes ``name (1).ext``; identical content keeps the existing name.
"""

from __future__ import annotations

import io
import mimetypes
import posixpath
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image

from orchestrator.inputs import InputFile, OnName
from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal

KINDS = frozenset({"input", "temp", "output"})  # ComfyUI's upload/view folder types
NAME_MAX = 255  # characters of a file name, as most file systems allow
# Mime types a browser would run as a page or script are served as downloads (ComfyUI too).
_UNSAFE_MIME = frozenset({"text/html", "text/html-sandboxed", "application/xhtml+xml",
                          "text/javascript", "text/css"})

__all__ = ["KINDS", "Upload", "UploadStore", "is_image", "mime_of", "safe_name",
           "safe_subfolder"]


@dataclass(frozen=True)
class Upload:
    """Where an uploaded file is known: ComfyUI's folder type, subfolder and name."""

    kind: str
    subfolder: str
    name: str

    @property
    def graph_name(self) -> str:
        """How a graph names it (``LoadImage`` takes ``subfolder/name``)."""
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


# --- names (pure) ----------------------------------------------------------------------------


def safe_name(filename: str) -> str | None:
    """``filename`` if it is one plain file name, else None."""
    bad = ("/" in filename or "\\" in filename or "\0" in filename
           or filename in ("", ".", "..") or len(filename) > NAME_MAX)
    return None if bad else filename


def safe_subfolder(subfolder: str) -> str | None:
    """The normalised relative subfolder, or None when it would leave its folder."""
    if "\\" in subfolder or "\0" in subfolder:
        return None
    if subfolder in ("", "."):
        return ""
    normal = posixpath.normpath(subfolder)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        return None
    return "" if normal == "." else normal


def is_image(data: bytes) -> bool:
    """Whether Pillow reads ``data`` as a whole, undamaged image (ComfyUI would store any
    bytes and fail later, on a node, in ``LoadImage``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        return True
    except Exception:  # Pillow raises many types for bad data; all mean "not an image"
        return False


def mime_of(name: str) -> str:
    """The type to serve a file named ``name`` as (never one a browser would run)."""
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return "application/octet-stream" if mime in _UNSAFE_MIME else mime


class UploadStore:
    """The caller's input files under ComfyUI's addresses, over the façade."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch

    def save(self, who: Principal, where: Upload, data: bytes, *, overwrite: bool) -> Upload:
        """Store the upload under the name ComfyUI's rules give it; that name is returned."""
        stored = self.orch.put_input(
            who, data, path=where.graph_name, folder=where.kind,
            content_type=mime_of(where.name),
            on_name=OnName.REPLACE if overwrite else OnName.RENAME)
        return Upload(where.kind, stored.file.subfolder, stored.file.name)

    def find(self, who: Principal, where: Upload) -> InputFile:
        """The caller's file at ``where``; ``NotFound("file", name)`` when there is none."""
        return self.orch.input_named(who, where.graph_name, folder=where.kind)

    def inputs_named(self, who: Principal, names: Iterable[str]) -> dict[str, str]:
        """``{graph name: sha256}`` of the caller's input files among ``names``."""
        return {name: file.sha256 for name, file in self.orch.inputs_named(who, names).items()}

    def next_number(self) -> int:
        """The next ComfyUI queue ``number`` (0, 1, 2, ... over the service's life)."""
        return self.orch.next_queue_number()
