"""The job store's input-file methods, and the one rule for releasing a blob.

A mixin of ``SqlJobStore`` (it gives ``_tx`` and ``_clock``): input files are rows of the
same database as jobs and outputs, so whether a blob is still named is one query over
every kind of record (``blob_in_use``), never a look into other files.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime

from orchestrator.inputs import InputFile, InputPage, OnName, StoredInput
from orchestrator.store import input_rows, tables
from orchestrator.store.dialect import Conn, Dialect

MAX_PAGE = 500


class InputFileMethods:
    """See ``JobStore``'s input-file methods (``protocol.py``)."""

    _dialect: Dialect

    def _tx(self, what: str, *, write: bool = True) -> AbstractContextManager[Conn]:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    def put_input_file(self, file: InputFile, *, on_name: OnName = OnName.KEEP) -> StoredInput:
        """See ``JobStore.put_input_file``."""
        with self._tx(f"recording input file {file.path or file.id} of {file.owner}") as conn:
            if file.path is not None:
                self._lock_name(conn, file)
            return input_rows.put(conn, file, on_name)

    def _lock_name(self, conn: Conn, file: InputFile) -> None:
        """Hold the owner's file names against other writers until the transaction ends."""
        return

    def input_file(self, owner: str, file_id: str) -> InputFile | None:
        """See ``JobStore.input_file``."""
        with self._tx(f"reading input file {file_id}", write=False) as conn:
            return input_rows.by_id(conn, owner, file_id, self._now())

    def input_file_named(self, owner: str, path: str, *,
                         folder: str = "input") -> InputFile | None:
        """See ``JobStore.input_file_named``."""
        with self._tx(f"reading input file {folder}/{path}", write=False) as conn:
            return input_rows.by_path(conn, owner, folder, path, self._now())

    def input_files_named(self, owner: str, paths: Iterable[str], *,
                          folder: str = "input") -> dict[str, InputFile]:
        """See ``JobStore.input_files_named``."""
        with self._tx("reading input files by name", write=False) as conn:
            return input_rows.by_paths(conn, owner, folder, paths, self._now())

    def input_file_by_hash(self, owner: str, *, sha256: str | None = None,
                           blake3: str | None = None) -> InputFile | None:
        """See ``JobStore.input_file_by_hash``."""
        column, digest = ("sha256", sha256) if sha256 is not None else ("blake3", blake3)
        if digest is None:
            return None
        with self._tx("finding an input file by hash", write=False) as conn:
            return input_rows.by_hash(conn, owner, column, digest, self._now())

    def list_input_files(self, owner: str, *, limit: int = 50,
                         cursor: str | None = None) -> InputPage:
        """See ``JobStore.list_input_files``."""
        before = tables.decode_cursor("i", cursor)
        with self._tx("listing input files", write=False) as conn:
            files, last = input_rows.page(conn, owner, self._now(),
                                          limit=max(1, min(limit, MAX_PAGE)), before=before)
        return InputPage(files=files, next_cursor=tables.encode_cursor("i", last))

    def delete_input_file(self, owner: str, file_id: str) -> InputFile | None:
        """See ``JobStore.delete_input_file``."""
        with self._tx(f"deleting input file {file_id}") as conn:
            return input_rows.delete(conn, owner, file_id)

    def delete_expired_input_files(self, limit: int = MAX_PAGE) -> list[InputFile]:
        """See ``JobStore.delete_expired_input_files``."""
        with self._tx("deleting expired input files") as conn:
            return input_rows.expired(conn, self._now(), max(1, min(limit, MAX_PAGE)))

    def blob_in_use(self, sha256: str) -> bool:
        """See ``JobStore.blob_in_use``."""
        with self._tx(f"checking whether blob {sha256} is named", write=False) as conn:
            row = conn.execute(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM outputs WHERE sha256 = ?)"
                " OR EXISTS (SELECT 1 FROM input_files WHERE sha256 = ?)"
                f" OR EXISTS ({self._dialect.input_uses}) THEN 1 ELSE 0 END",
                [sha256, sha256, sha256]).fetchone()
        return bool(row[0])
