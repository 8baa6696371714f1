"""Several replicas on one PostgreSQL against SQLite's single process: enqueue and claim.

Run: ``.venv/bin/python bench/bench_postgres.py [--jobs N]`` (as root, like the tests). It
starts a throwaway PostgreSQL 15 as the tests do (``tests/postgres.py``: Debian's server as
the postgres user on a loopback port, fsync off - a test server, not a tuned one); SQLite
runs at its shipped synchronous=NORMAL.
Each replica is a process with its own store, as ``comfy-orch serve`` replicas are:

- enqueue: the replicas create N one-image jobs between them (one transaction each);
- claim: N queued items, the replicas claim until the queue is empty, each for its own
  node (claims for one node run one at a time by design: its in-flight limit);
- claim → dispatch: each ``claim_next`` call's latency until the item is DISPATCHED.

Rates are printed with their ratio to SQLite's single process. The machine's cores bound
what more replicas can add: on 2 shared cores, 4 replicas mostly share the same CPUs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.jobs import Item, Job, JobSpec  # noqa: E402
from orchestrator.store import JobStore, PostgresJobStore, SqliteJobStore  # noqa: E402

REPLICAS = (1, 2, 4)
DEFAULT_JOBS = 2000


def _open(database: str) -> JobStore:
    if database.startswith("postgresql://"):
        return PostgresJobStore(database)
    return SqliteJobStore(Path(database))


def _anything(job: Job, item: Item) -> bool:
    return True


def _enqueue(database: str, jobs: int, start: multiprocessing.synchronize.Barrier,
             out: multiprocessing.Queue[tuple[float, float, list[float]]]) -> None:
    with _open(database) as store:
        start.wait()
        began = time.perf_counter()
        for _ in range(jobs):
            store.create_job(JobSpec(workflow="bench"))
        out.put((began, time.perf_counter(), []))


def _claim(database: str, node: str, start: multiprocessing.synchronize.Barrier,
           out: multiprocessing.Queue[tuple[float, float, list[float]]]) -> None:
    latencies: list[float] = []
    with _open(database) as store:
        start.wait()
        began = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            claimed = store.claim_next(node, can_run=_anything, prompt_id=lambda item: item.id)
            if claimed is None:
                break
            latencies.append(time.perf_counter() - t0)
        out.put((began, time.perf_counter(), latencies))


@dataclass
class Result:
    rate: float  # operations per second, all replicas together
    p50_ms: float
    p99_ms: float


def _run(target: Callable[..., None], argsets: list[tuple[object, ...]], operations: int) -> Result:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(len(argsets))
    out: multiprocessing.Queue[tuple[float, float, list[float]]] = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, out)) for args in argsets]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[2]) or [0.0]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(operations / elapsed, statistics.median(latencies) * 1000, p99 * 1000)


def enqueue(database: str, replicas: int, jobs: int) -> Result:
    return _run(_enqueue, [(database, jobs // replicas)] * replicas,
                jobs // replicas * replicas)


def claim(database: str, replicas: int, jobs: int) -> Result:
    with _open(database) as store:
        store.create_jobs([JobSpec(workflow="bench", owner=f"o{n % 4}") for n in range(jobs)])
    return _run(_claim, [(database, f"node-{n}") for n in range(replicas)], jobs)


def main() -> None:
    from tests.postgres import fresh_database, running_postgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = {"enqueue": enqueue(str(Path(tmp) / "e.db"), 1, args.jobs),
                  "claim": claim(str(Path(tmp) / "c.db"), 1, args.jobs)}
    print(f"{'backend':<22}{'enqueue/s':>11}{'ratio':>7}{'claim/s':>10}{'ratio':>7}"
          f"{'claim p50 ms':>14}{'p99 ms':>8}")
    _row("sqlite, 1 process", sqlite["enqueue"], sqlite["claim"], sqlite)
    with running_postgres() as server:
        for replicas in REPLICAS:
            done_enqueue = enqueue(fresh_database(server), replicas, args.jobs)
            done_claim = claim(fresh_database(server), replicas, args.jobs)
            _row(f"postgres, {replicas} replica{'s' * (replicas > 1)}", done_enqueue,
                 done_claim, sqlite)


def _row(name: str, enq: Result, clm: Result, base: dict[str, Result]) -> None:
    print(f"{name:<22}{enq.rate:>11.0f}{enq.rate / base['enqueue'].rate:>7.2f}"
          f"{clm.rate:>10.0f}{clm.rate / base['claim'].rate:>7.2f}"
          f"{clm.p50_ms:>14.2f}{clm.p99_ms:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
