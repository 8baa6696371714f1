"""Soak: many trivial jobs through comfy-sdk against our service, counting what went wrong.

    .venv/bin/python bench/soak_v2.py [--jobs 1000] [--workers 8] [--max-minutes 30]
                                      [--lift-rate-limit]

Not part of the test suite. Starts one real ComfyUI (test node pack) and our service
(``comfy-orch serve``, its own process) on loopback, then sends ``--jobs`` trivial graphs
from ``--workers`` threads: half through ``client.run`` (polling), half through
``submit`` + ``events()``. Each job must end ``succeeded`` with exactly one downloadable
PNG, and every terminal status a client saw must be the one the service finally records.
Prints the counts of false terminal states and lost outputs (both should be zero) and exits
non-zero when either is not. Bounded by ``--max-minutes``; stops everything it started.
The service runs at its shipped limits unless ``--lift-rate-limit`` (printed either way).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comfy_sdk import Comfy, OutputReady, StatusChange  # noqa: E402

from bench.bench_pool import solid, start_nodes  # noqa: E402
from bench.bench_v2 import our_service, rate_note  # noqa: E402

TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})


class Tally:
    """Thread-safe counts of outcomes and the first few problems, for the report."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []

    def add(self, what: str, problem: str | None = None) -> None:
        with self.lock:
            self.counts[what] += 1
            if problem is not None and len(self.problems) < 20:
                self.problems.append(problem)


def via_run(client: Comfy, seed: int, tally: Tally) -> None:
    job = client.run(client.workflows.from_json(solid(seed)), timeout=300)
    check_outputs(client, job.id, [o.to_bytes() for o in job.outputs], job.status, tally)


def via_events(client: Comfy, seed: int, tally: Tally) -> None:
    job = client.submit(client.workflows.from_json(solid(seed)))
    seen_status, blobs = "", []
    for event in job.events():
        if isinstance(event, OutputReady):
            blobs.append(event.output.to_bytes())
        elif isinstance(event, StatusChange) and event.status in TERMINAL:
            seen_status = event.status
    check_outputs(client, job.id, blobs, seen_status, tally)


def check_outputs(client: Comfy, job_id: str, blobs: list[object], seen: str,
                  tally: Tally) -> None:
    final = client.jobs.get(job_id).status
    if seen != final or final != "succeeded":
        tally.add("false_terminal", f"job {job_id}: client saw {seen!r}, service says {final!r}")
    elif len(blobs) != 1 or not (isinstance(blobs[0], bytes) and blobs[0][:4] == b"\x89PNG"):
        tally.add("lost_output", f"job {job_id}: {len(blobs)} output(s) reached the client")
    else:
        tally.add("ok")


def run_one(client: Comfy, n: int, seed0: int, deadline: float, tally: Tally) -> None:
    if time.monotonic() > deadline:
        tally.add("not_run")
        return
    try:
        (via_events if n % 2 else via_run)(client, seed0 + n, tally)
    except Exception as exc:  # noqa: BLE001 - a soak counts failures instead of stopping
        tally.add("error", f"job #{n}: {type(exc).__name__}: {exc}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=30.0)
    parser.add_argument("--lift-rate-limit", action="store_true",
                        help="raise the service's per-token request rate out of reach")
    args = parser.parse_args()
    print(rate_note(args.lift_rate_limit))
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        [node] = start_nodes(1, Path(tmp))
        try:
            with our_service(node.url, Path(tmp), lift_rate=args.lift_rate_limit) as url:
                os.environ["COMFY_BASE_URL"] = url
                deadline = time.monotonic() + args.max_minutes * 60
                seed0 = int(time.time()) * 10_000
                t0 = time.monotonic()
                with Comfy() as client, ThreadPoolExecutor(args.workers) as pool:
                    for n in range(args.jobs):
                        pool.submit(run_one, client, n, seed0, deadline, tally)
                took = time.monotonic() - t0
        finally:
            node.stop()
    print(f"{args.jobs} jobs in {took:.0f} s: {dict(tally.counts)}")
    for problem in tally.problems:
        print("  " + problem)
    bad = tally.counts["false_terminal"] + tally.counts["lost_output"] + tally.counts["error"]
    print(f"false terminal states: {tally.counts['false_terminal']}, lost outputs: "
          f"{tally.counts['lost_output']}, errors: {tally.counts['error']}")
    return 1 if bad or tally.counts["not_run"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
