"""Speed-aware dispatch on a pool of one fast and one 3x slower real ComfyUI node.

    .venv/bin/python bench/bench_speed.py [--items 12] [--seconds 2.0] [--slowdown 3]

Two real nodes with the test node pack; the slow one's sleep node takes ``--slowdown``
times longer (``tests/faults.py: set_slowdown``), as a slower GPU would. For each
dispatch policy, a fresh orchestrator first runs one warm-up item per node (so both have
a measured speed, as a pool that has run anything has), then a batch of ``--items`` sleep
items; the makespan is submit → last item done. Printed as ratios to the best possible
split of the batch between the two nodes, from each node's measured seconds per item:
``min over k of max(k * fast, (n - k) * slow)``. Goal: speed-aware within 1.15x of it;
first-free dispatch is measured in the same run for comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pool import start_nodes  # noqa: E402
from orchestrator.jobs import JobStatus  # noqa: E402
from orchestrator.provision.server import LocalComfy  # noqa: E402
from orchestrator.service import Orchestrator  # noqa: E402
from tests.faults import set_slowdown  # noqa: E402

GOAL = 1.15


def nap(seconds: float) -> dict[str, dict[str, object]]:
    return {
        "1": {"class_type": "OrchTestSleep",
              "inputs": {"seconds": seconds, "steps": 4, "seed": uuid.uuid4().int % 10**9}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "s"}},
    }


def best_split(n: int, fast_s: float, slow_s: float) -> float:
    return min(max(k * fast_s, (n - k) * slow_s) for k in range(n + 1))


def run_batch(nodes: list[LocalComfy], data: Path, *, speed_aware: bool, items: int,
              seconds: float) -> tuple[float, dict[str, int], dict[str, float]]:
    """(makespan, items per node, measured seconds per item per node) for one policy."""
    with Orchestrator(data_dir=data, nodes=[n.url for n in nodes]) as orch:
        orch._pool.placement.speed_aware = speed_aware
        names = [n.url.split("//")[1] for n in nodes]
        for name in names:  # one warm-up item on each node, so both are measured
            for other in names:
                orch._pool.drain(other, other != name)
            warm = orch.submit(graph=nap(seconds)).wait(timeout=300)
            assert warm.status == JobStatus.SUCCEEDED, warm
        for name in names:
            orch._pool.drain(name, False)
        time.sleep(2 * orch._pool.watchdog.interval)  # the watchdog records the last run
        start = time.perf_counter()
        # One job per item (a job holds at most MAX_COUNT images): a batch of separate
        # requests, as a platform sends them.
        handles = [orch.submit(graph=nap(seconds)) for _ in range(items)]
        jobs = [handle.wait(timeout=900) for handle in handles]
        makespan = time.perf_counter() - start
        assert all(job.status == JobStatus.SUCCEEDED for job in jobs), jobs
        per_node = {name: sum(1 for j in jobs for i in j.items if i.node == name)
                    for name in names}
        time.sleep(2 * orch._pool.watchdog.interval)
        key = orch._pool.placement.key_of(jobs[0])
        speeds = {name: orch._pool.speeds.item_seconds(name, key) or 0.0 for name in names}
    return makespan, per_node, speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=2.0, help="sleep per item, fast node")
    parser.add_argument("--slowdown", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nodes = start_nodes(2, Path(tmp))  # the second is slowed below
        try:
            set_slowdown(nodes[1].base_dir, args.slowdown)
            results = {}
            for policy, aware in (("speed-aware", True), ("first-free", False)):
                results[policy] = run_batch(nodes, Path(tmp) / policy, speed_aware=aware,
                                            items=args.items, seconds=args.seconds)
        finally:
            for node in nodes:
                node.stop()
    _, _, speeds = results["speed-aware"]
    fast_s, slow_s = speeds.values()
    best = best_split(args.items, fast_s, slow_s)
    print(f"{args.items} items of {args.seconds:.1f} s sleep; measured s/item: "
          f"fast {fast_s:.2f}, slow {slow_s:.2f} ({slow_s / fast_s:.2f}x); "
          f"best split makespan {best:.1f} s")
    for policy, (makespan, per_node, _) in results.items():
        split = "/".join(str(v) for v in per_node.values())
        print(f"{policy:>11}: makespan {makespan:.1f} s, {makespan / best:.2f}x best split "
              f"(fast/slow items {split})")
    ratio = results["speed-aware"][0] / best
    print(f"speed-aware within {GOAL:.2f}x of best split: {'OK' if ratio <= GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
