"""A folder of workflows, kept loaded and up to date (the I/O shell around ``workflow``).

``NAME.json`` (API-format graph) plus an optional ``NAME.meta.json`` make the workflow
``NAME``. The folder is watched with watchdog: a file added, changed, renamed or deleted is
picked up within a fraction of a second, including an editor's save through a temporary
file and a rename (``watcher.FolderWatcher`` coalesces the burst into one reload). A new
version that does not load, for whatever reason, leaves the last good version serving and
records the error, so a typo never takes a workflow offline; ``list()`` shows it.

Errors keep the files' full paths for the operator (``list()``); ``get()``, which answers
requests, names files relative to the folder, so no server path reaches a client.

The registry is also the cache of compiled graphs: each version is compiled for rendering
once, as it loads (``Workflow.plan``), so a changed file's new version brings its own plan
and the old plan goes with the old version. Registries share nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from orchestrator.errors import (
    ConfigError,
    WorkflowError,
    WorkflowFormatError,
    WorkflowInvalid,
    WorkflowNotFound,
)
from orchestrator.metadata import Kind
from orchestrator.rendering import compiled
from orchestrator.validation import check_placeholders
from orchestrator.watcher import FolderWatcher
from orchestrator.workflow import Workflow, content_version, load_workflow

log = logging.getLogger(__name__)

GRAPH_SUFFIX = ".json"
META_SUFFIX = ".meta.json"
# ``x.meta.json`` is the metadata of ``x``, so no workflow may be called ``x.meta``.
RESERVED_ENDING = META_SUFFIX[: -len(GRAPH_SUFFIX)]


@dataclass(frozen=True)
class WorkflowStatus:
    """One workflow as ``list()`` reports it.

    ``serving`` is the version requests get (None when no version ever loaded). ``error``
    says why the newest files do not load; when it is set and ``serving`` is not None, the
    last good version is still serving. ``warnings`` are problems that do not stop it.
    """

    name: str
    source: Path
    title: str
    kind: Kind | None
    serving: str | None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the files on disk are the version being served."""
        return self.serving is not None and self.error is None


def name_of(path: str | Path) -> str | None:
    """The workflow name a file belongs to, or None for files that are not workflows.

    Editors' temporary and backup files (``.x.json.swp``, ``x.json~``, ``x.json.tmp``) and
    hidden files are not workflows.
    """
    base = Path(path).name
    if base.startswith(".") or not base.endswith(GRAPH_SUFFIX):
        return None
    stem = base[: -len(META_SUFFIX)] if base.endswith(META_SUFFIX) else base[: -len(GRAPH_SUFFIX)]
    return stem or None


def reserved_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a workflow's name (its graph file would be another workflow's
    metadata file), or None when it can."""
    if not name.endswith(RESERVED_ENDING):
        return None
    owner = name[: -len(RESERVED_ENDING)]
    return (f"a workflow cannot be named {name!r}: {name}{GRAPH_SUFFIX} is the metadata file "
            f"of workflow {owner!r}; choose a name that does not end in {RESERVED_ENDING!r}")


def redact(text: str, folder: Path) -> str:
    """``text`` with the workflows folder's absolute path taken out, so files are named
    relative to it (what a client may see of the server's disk)."""
    for root in dict.fromkeys((str(folder.absolute()), str(folder.resolve()))):
        text = text.replace(root + os.sep, "").replace(root, "the workflows folder")
    return text


def redacted_error(error: WorkflowError, folder: Path) -> WorkflowError:
    """``error`` with every file named relative to ``folder`` (see :func:`redact`)."""
    if isinstance(error, WorkflowInvalid):
        return WorkflowInvalid([_redacted_problem(p, folder) for p in error.problems],
                               source=redact(error.source, folder))
    if isinstance(error, WorkflowFormatError):
        return _redacted_problem(error, folder)
    return error


def _redacted_problem(problem: WorkflowFormatError, folder: Path) -> WorkflowFormatError:
    return WorkflowFormatError(redact(problem.reason, folder),
                               source=redact(problem.source, folder), line=problem.line,
                               column=problem.column, path=problem.path)


def read_workflow(graph_path: str | os.PathLike[str]) -> Workflow:
    """Read ``NAME.json`` and its ``NAME.meta.json`` (if any) and load them.

    Raises ``WorkflowNotFound`` when the graph file is missing, ``WorkflowFormatError`` (or
    ``WorkflowInvalid``) naming the file at fault otherwise.
    """
    return _Files.read(Path(graph_path)).load()


@dataclass(frozen=True)
class _Files:
    """The texts of one workflow's files, read together."""

    name: str
    graph_path: Path
    meta_path: Path
    graph_text: str
    meta_text: str | None

    @classmethod
    def read(cls, graph_path: Path) -> _Files:
        name = name_of(graph_path) or graph_path.stem
        meta_path = graph_path.with_name(name + META_SUFFIX)
        meta_text = _read(meta_path, name) if meta_path.exists() else None
        return cls(name, graph_path, meta_path, _read(graph_path, name), meta_text)

    @property
    def version(self) -> str:
        return content_version(self.graph_text, self.meta_text)

    def load(self) -> Workflow:
        return load_workflow(self.name, self.graph_text, self.meta_text,
                             source=self.graph_path, meta_source=self.meta_path)


def _read(path: Path, name: str) -> str:
    if path.exists() and not path.is_file():
        # A FIFO or a device would block the read (and the watcher with it) or never end.
        raise WorkflowFormatError("is not a regular file; replace it with a JSON file",
                                  source=str(path))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise WorkflowNotFound(name) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFormatError(f"cannot be read: {exc}", source=str(path)) from exc


@dataclass
class _Entry:
    good: Workflow | None = None
    error: WorkflowError | None = None
    warnings: tuple[str, ...] = ()
    seen: str | None = None  # version of the files last loaded


class WorkflowRegistry:
    """The workflows of one folder by name; thread-safe; a context manager.

    With ``watch=True`` a watchdog thread reloads changed files; with ``watch=False`` the
    folder is read once and again on :meth:`reload`. Raises ``ConfigError`` when ``folder``
    is not a directory. Call :meth:`close` (or leave the ``with`` block) to stop watching.
    """

    def __init__(self, folder: str | os.PathLike[str], *, watch: bool = True) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ConfigError(f"workflows folder {self.folder} does not exist or is not a "
                              "folder; create it or point to another one")
        self._lock = threading.Lock()       # guards _entries
        self._load_lock = threading.Lock()  # one load at a time, so versions never go back
        self._entries: dict[str, _Entry] = {}
        self._closed = False
        self._watcher: FolderWatcher | None = None
        self.reload()
        if watch:
            self._watcher = FolderWatcher(self.folder, self._on_names, name_of=name_of).start()

    # --- reading ------------------------------------------------------------------------

    def get(self, name: str) -> Workflow:
        """The serving version of ``name``; raises ``WorkflowNotFound`` (listing known names)
        or, when no version of it ever loaded, the ``WorkflowFormatError`` of its files
        (named relative to the folder: requests see this error)."""
        self._refuse_if_closed()
        with self._lock:
            entry = self._entries.get(name)
            known = sorted(n for n, e in self._entries.items() if e.good is not None)
        if entry is None:
            raise WorkflowNotFound(name, known)
        if entry.good is None:
            if entry.error is None:
                raise WorkflowNotFound(name, known)
            raise redacted_error(entry.error, self.folder)
        return entry.good

    def list(self) -> list[WorkflowStatus]:
        """Every workflow in the folder, loaded or not, sorted by name."""
        self._refuse_if_closed()
        with self._lock:
            items = sorted(self._entries.items())
        return [self._status(name, entry) for name, entry in items]

    def _status(self, name: str, entry: _Entry) -> WorkflowStatus:
        good = entry.good
        return WorkflowStatus(
            name, self.folder / (name + GRAPH_SUFFIX), good.title if good else name,
            good.meta.kind if good else None, good.version if good else None,
            None if entry.error is None else str(entry.error), entry.warnings,
        )

    # --- loading ------------------------------------------------------------------------

    def reload(self, names: Iterable[str] | None = None) -> None:
        """Read ``names`` (default: every workflow in the folder) from disk again.

        Raises ``ConfigError`` when the folder has disappeared.
        """
        self._refuse_if_closed()
        if names is None:
            with self._lock:
                known = set(self._entries)
            names = known | self._names_on_disk()
        self._reload_all(names)

    def _names_on_disk(self) -> set[str]:
        try:
            return {n for p in self.folder.iterdir() if (n := name_of(p))}
        except OSError as exc:
            raise ConfigError(f"workflows folder {self.folder} cannot be read: {exc}") from exc

    def _reload_all(self, names: Iterable[str]) -> None:
        for name in sorted(names):
            self._reload_one(name)

    def _reload_one(self, name: str) -> None:
        with self._load_lock:
            graph_path = self.folder / (name + GRAPH_SUFFIX)
            if reserved_name_problem(name) is not None:
                self._refuse_reserved(name)
            elif not graph_path.exists():
                self._forget(name)
            else:
                with self._lock:
                    entry = self._entries.setdefault(name, _Entry())
                self._refresh(entry, graph_path)

    def _refresh(self, entry: _Entry, graph_path: Path) -> None:
        try:
            files = _Files.read(graph_path)
            if files.version == entry.seen:
                return  # a repeated event for files already read
            workflow = compiled(files.load())
        except WorkflowError as exc:
            self._failed(entry, exc)
            return
        except Exception as exc:  # a file must never stop the service; this is a bug to fix
            log.exception("loading %s failed unexpectedly", graph_path)
            self._failed(entry, WorkflowFormatError(
                f"cannot be loaded ({type(exc).__name__}: {exc}); fix or remove the file",
                source=str(graph_path)))
            return
        warnings = tuple(str(p) for p in check_placeholders(workflow)) + self._preview(workflow)
        with self._lock:
            entry.good, entry.error, entry.warnings = workflow, None, warnings
            entry.seen = workflow.version

    def _failed(self, entry: _Entry, error: WorkflowError) -> None:
        with self._lock:
            entry.error, entry.seen = error, None

    def _preview(self, workflow: Workflow) -> tuple[str, ...]:
        image = workflow.meta.preview_image
        try:
            if image is None or (self.folder / image).is_file():
                return ()
        except OSError:  # a name the file system refuses (too long, bad bytes)
            pass
        return (f"{workflow.name}.meta.json: preview image {image!r} is not in {self.folder}",)

    def _refuse_reserved(self, name: str) -> None:
        meta_path = self.folder / (name + META_SUFFIX)
        with self._lock:
            if meta_path.exists():
                error = WorkflowFormatError(f"{reserved_name_problem(name)}; rename this file",
                                            source=str(meta_path))
                self._entries[name] = _Entry(error=error)
            else:
                self._entries.pop(name, None)

    def _forget(self, name: str) -> None:
        meta_path = self.folder / (name + META_SUFFIX)
        with self._lock:
            if meta_path.exists():
                orphan = WorkflowFormatError(
                    f"has no workflow {name}{GRAPH_SUFFIX} next to it; rename one of them so "
                    "the names match", source=str(meta_path))
                self._entries[name] = _Entry(error=orphan)
            else:
                self._entries.pop(name, None)

    # --- watching -----------------------------------------------------------------------

    def _on_names(self, names: set[str]) -> None:
        if not self._closed:  # a batch racing close() is dropped, not raised in the watcher
            self._reload_all(names)

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop watching. Harmless to call twice; the registry refuses use afterwards."""
        self._closed = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise WorkflowError(f"the workflow registry of {self.folder} was closed; "
                                "open a new WorkflowRegistry")

    def __enter__(self) -> WorkflowRegistry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

