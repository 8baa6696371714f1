"""Files ComfyUI clients upload (``/upload/image``), kept per owner until a graph names them.

A ComfyUI client uploads an image, reads back the name the server chose and puts that name
in its graph (``LoadImage.image = "photo (1).png"``). Which node will run that graph is only
known at dispatch, so the bytes live in our blob store and this table maps each owner's
``(type, subfolder, name)`` to the blob's sha256; ``Orchestrator.submit(images=...)`` then
stages them on the chosen node. Names follow ComfyUI's rules: a clash with different
content becomes ``name (1).ext``; identical content keeps the existing name.

The table lives in its own SQLite file in the data directory, with the counter behind
ComfyUI's queue ``number``. One connection is kept open: in WAL mode the last connection to
close checkpoints the file with an fsync, tens of milliseconds on every prompt otherwise.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from orchestrator.errors import StoreError
from orchestrator.jobs import utcnow

UPLOADS_FILE = "comfyui-uploads.sqlite3"  # in the data directory
KINDS = frozenset({"input", "temp", "output"})  # ComfyUI's upload/view folder types
NAME_MAX = 255  # characters of a file name, as most file systems allow
BUSY_TIMEOUT_S = 10.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS uploads (
        owner TEXT NOT NULL, kind TEXT NOT NULL, subfolder TEXT NOT NULL, name TEXT NOT NULL,
        sha256 TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (owner, kind, subfolder, name))""",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


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


def choose_name(name: str, sha256: str, existing: Callable[[str], str | None], *,
                overwrite: bool) -> str:
    """The name ComfyUI would store ``name`` under: itself when free, when ``overwrite`` or
    when the same content is already there; else the first free ``stem (N).ext``."""
    if overwrite:
        return name
    stem, ext = posixpath.splitext(name)
    candidate, n = name, 1
    while (found := existing(candidate)) is not None and found != sha256:
        candidate, n = f"{stem} ({n}){ext}", n + 1
    return candidate


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


# --- the table ---------------------------------------------------------------------------------


class UploadStore:
    """Each owner's uploaded names → blob sha256, plus the prompt number counter.

    Thread-safe (one connection behind a lock); ``StoreError`` when the file cannot be
    used. ``close()`` when done; harmless twice.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self._translated("opening"):
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                                         isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit survives a crash of this process, which is what a client
            # that got an answer relies on; only a power cut may lose the last commits.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._conn.execute(statement)

    @classmethod
    def open(cls, data_dir: Path) -> UploadStore:
        return cls(Path(data_dir) / UPLOADS_FILE)

    def save(self, owner: str, where: Upload, sha256: str, *, overwrite: bool) -> Upload:
        """Record the upload under the name ComfyUI's rules give it; that name is returned."""
        with self._db("recording an upload") as conn:
            conn.execute("BEGIN IMMEDIATE")

            def existing(name: str) -> str | None:
                return _sha(conn, owner, Upload(where.kind, where.subfolder, name))

            name = choose_name(where.name, sha256, existing, overwrite=overwrite)
            conn.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                         (owner, where.kind, where.subfolder, name, sha256,
                          utcnow().isoformat()))
            conn.execute("COMMIT")
        return Upload(where.kind, where.subfolder, name)

    def find(self, owner: str, where: Upload) -> str | None:
        """The sha256 of the owner's upload at ``where``, or None."""
        with self._db("reading an upload") as conn:
            return _sha(conn, owner, where)

    def inputs_named(self, owner: str, names: Iterable[str]) -> dict[str, str]:
        """``{graph name: sha256}`` of the owner's input uploads among ``names``."""
        found: dict[str, str] = {}
        with self._db("reading uploads") as conn:
            for name in set(names):
                subfolder, _, base = name.rpartition("/")
                sha = _sha(conn, owner, Upload("input", subfolder, base))
                if sha is not None:
                    found[name] = sha
        return found

    def next_number(self) -> int:
        """The next ComfyUI queue ``number`` (0, 1, 2, ... over the service's life)."""
        with self._db("counting prompts") as conn:
            row = conn.execute(
                "INSERT INTO counters VALUES ('prompt', 0) ON CONFLICT (name) DO UPDATE "
                "SET value = value + 1 RETURNING value").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @contextlib.contextmanager
    def _db(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translated(what):
            if self._conn is None:
                raise StoreError(f"the upload table {self.path} was closed")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{what} in {self.path} failed ({exc}); check the data "
                             "directory's permissions and free space") from exc


def _sha(conn: sqlite3.Connection, owner: str, where: Upload) -> str | None:
    row = conn.execute("SELECT sha256 FROM uploads WHERE owner = ? AND kind = ? AND "
                       "subfolder = ? AND name = ?",
                       (owner, where.kind, where.subfolder, where.name)).fetchone()
    return None if row is None else str(row[0])
