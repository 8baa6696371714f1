"""A separate process working on a job store, for the durability and multi-process tests.

DB is a SQLite file or a ``postgresql://`` URL.

``python store_child.py churn DB``: creates jobs and moves each to SUCCEEDED forever,
printing one line after every committed change, until killed.
``python store_child.py claim DB NODE``: prints ``ready``, waits for a line on stdin,
then claims until the queue is empty, printing each claimed item id.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from orchestrator.jobs import Item, Job, JobSpec
from orchestrator.store import JobStore, PostgresJobStore, SqliteJobStore


def _any(job: Job, item: Item) -> bool:
    return True


def _prompt_id(item: Item) -> str:
    return uuid.uuid4().hex


def _open(database: str) -> JobStore:
    if database.startswith("postgresql://"):
        return PostgresJobStore(database)
    return SqliteJobStore(Path(database))


def churn(database: str) -> None:
    with _open(database) as store:
        while True:
            job = store.create_job(JobSpec(workflow="churn", owner="child"))
            print("created", job.id, flush=True)
            claimed = store.claim_next("child-node", can_run=_any, prompt_id=_prompt_id)
            assert claimed is not None
            item = claimed[1]
            print("dispatched", item.id, flush=True)
            store.mark_running(item.id)
            print("running", item.id, flush=True)
            store.mark_succeeded(item.id, [f"out-{item.id}"])
            print("succeeded", item.id, flush=True)


def claim(database: str, node: str) -> None:
    with _open(database) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        while (claimed := store.claim_next(node, can_run=_any, prompt_id=_prompt_id)):
            print(claimed[1].id, flush=True)


if __name__ == "__main__":
    mode, database = sys.argv[1], sys.argv[2]
    if mode == "churn":
        churn(database)
    else:
        claim(database, sys.argv[3])
