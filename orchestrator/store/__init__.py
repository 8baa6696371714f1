"""The durable job store: jobs, their items, idempotency keys and output records.

Program against ``JobStore`` (the interface in ``protocol``); ``open_store`` opens the
SQLite implementation in a data directory, or the PostgreSQL one that several replicas
share. Everything a method changes is committed
before it returns.

```python
with open_store(data_dir) as store:
    job = store.create_job(JobSpec(workflow="portrait", count=2))
    claimed = store.claim_next("gpu-1", can_run=lambda job, item: True,
                               prompt_id=lambda item: uuid.uuid4().hex)
```
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.store.postgres import PostgresJobStore
from orchestrator.store.protocol import (
    CanRun,
    JobPage,
    JobStore,
    JobView,
    OutputPage,
    PromptId,
    Settled,
)
from orchestrator.store.sqlite import IDEMPOTENCY_TTL, SqliteJobStore

DATABASE_NAME = "orchestrator.sqlite3"  # inside the data directory

__all__ = [
    "DATABASE_NAME",
    "IDEMPOTENCY_TTL",
    "CanRun",
    "JobPage",
    "JobStore",
    "JobView",
    "OutputPage",
    "PostgresJobStore",
    "PromptId",
    "Settled",
    "SqliteJobStore",
    "open_store",
]


def open_store(data_dir: Path, url: str | None = None) -> JobStore:
    """The job store at ``url`` (a ``postgresql://`` URL), else the SQLite one of
    ``data_dir`` (created if missing); close it, or use ``with``.

    The one database of the service: jobs, outputs, input files, keys and tokens. The
    separate files of the older data-directory layout still in ``data_dir`` are imported
    into it, then renamed aside (``store/legacy.py``), so a data directory upgrades in
    place on start.

    Raises ``ConfigError`` if the directory cannot be created, ``StoreError`` if the
    database cannot be opened or an old file cannot be imported.
    """
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"data directory {data_dir} cannot be created ({exc}); "
                          "choose a writable folder") from exc
    store = PostgresJobStore(url) if url is not None else SqliteJobStore(
        Path(data_dir) / DATABASE_NAME)
    try:
        store.import_old_files(Path(data_dir))
    except BaseException:
        store.close()
        raise
    return store
