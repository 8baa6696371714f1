"""Pool benchmarks against real ComfyUI nodes on loopback, printed as ratios to a baseline.

    .venv/bin/python bench/bench_pool.py [--quick]

Prints, in one run:
- orchestrator overhead per trivial job: p50 of submit→outputs-stored through the pool,
  divided by p50 of a direct ComfyClient.run + /view on the same server (goal <= 1.10);
- completion-to-output-available latency (ComfyUI's end message → our output event);
- throughput with 1/2/4 nodes on sleep-node jobs, relative to 1 node (goal >= 3.8x at 4);
- enqueue rate for 10,000 jobs and the process RSS with 10,000 queued jobs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.comfy.client import ComfyClient  # noqa: E402
from orchestrator.events import Finished, OutputEvent, ProgressEvent  # noqa: E402
from orchestrator.provision.install import default_home, ensure_installed  # noqa: E402
from orchestrator.provision.server import LocalComfy, prepare_base_dir  # noqa: E402
from orchestrator.service import Orchestrator  # noqa: E402

TEST_PACK = ROOT / "tests" / "comfy_nodes"


def solid(seed: int) -> dict[str, dict[str, object]]:
    return {
        "1": {"class_type": "OrchTestSolidImage",
              "inputs": {"width": 16, "height": 16, "color": "#808080", "batch_size": 1,
                         "seed": seed}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "b"}},
    }


def nap(seed: int, seconds: float) -> dict[str, dict[str, object]]:
    return {
        "1": {"class_type": "OrchTestSleep",
              "inputs": {"seconds": seconds, "steps": 2, "seed": seed}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "n"}},
    }


def start_nodes(count: int, workdir: Path) -> list[LocalComfy]:
    inst = ensure_installed(default_home(), progress=lambda line: print(line, flush=True))
    servers = [LocalComfy(inst, prepare_base_dir(inst, workdir / f"node{i}", [TEST_PACK]))
               for i in range(count)]
    threads = [threading.Thread(target=s.start) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in servers:
        s.start()  # no-op when up; raises with the log when it failed
    return servers


def p50(values: list[float]) -> float:
    return statistics.median(values)


def direct_job(client: ComfyClient, seed: int) -> float:
    t0 = time.perf_counter()
    result = client.run(solid(10_000 + seed))
    for file in result.outputs:
        client.view(file)
    return time.perf_counter() - t0


def pooled_job(orch: Orchestrator, seed: int) -> tuple[float, float | None]:
    """(submit → job finished, output node executed → output stored) in seconds."""
    t0 = time.perf_counter()
    handle = orch.submit(graph=solid(20_000 + seed))
    last_progress, gap = None, None
    with handle.events() as sub:
        for event in sub:
            if isinstance(event, ProgressEvent):
                last_progress = event.at  # the output node's `executed` message
            if isinstance(event, OutputEvent) and last_progress is not None:
                gap = (event.at - last_progress).total_seconds()
            if isinstance(event, Finished):
                break
    return time.perf_counter() - t0, gap


def overhead(url: str, workdir: Path, runs: int) -> None:
    """Direct and pooled runs interleaved on one server, so load drifts hit both alike."""
    direct, pooled, gaps = [], [], []
    with ComfyClient(url) as client, Orchestrator(data_dir=workdir / "overhead",
                                                  nodes=[url]) as orch:
        for seed in range(runs):
            direct.append(direct_job(client, seed))
            total, gap = pooled_job(orch, seed)
            pooled.append(total)
            if gap is not None:
                gaps.append(gap)
    print(f"trivial job p50: direct {p50(direct) * 1000:.1f} ms, pool {p50(pooled) * 1000:.1f} ms"
          f" → overhead ratio {p50(pooled) / p50(direct):.2f} (goal <= 1.10)")
    print(f"completion (output node executed) → output stored and announced: p50 "
          f"{p50(gaps) * 1000:.1f} ms, max {max(gaps) * 1000:.1f} ms")


def throughput(urls: list[str], workdir: Path, jobs: int, seconds: float) -> float:
    with Orchestrator(data_dir=workdir / f"tp{len(urls)}", nodes=urls) as orch:
        t0 = time.perf_counter()
        handles = [orch.submit(graph=nap(len(urls) * 1000 + i, seconds)) for i in range(jobs)]
        for handle in handles:
            handle.wait(timeout=600)
        elapsed = time.perf_counter() - t0
    return jobs / elapsed


def rss_mb() -> float:
    """Current resident set size of this process (not the peak)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def enqueue(workdir: Path, jobs: int) -> None:
    """Enqueue through the public API into an Orchestrator with no node (all stay queued)."""
    with Orchestrator(data_dir=workdir / "enqueue") as orch:
        before = rss_mb()
        t0 = time.perf_counter()
        for i in range(jobs):
            orch.submit(graph=solid(i))
        elapsed = time.perf_counter() - t0
        assert orch.queued_count() == jobs
        after = rss_mb()
    print(f"enqueue {jobs} jobs through Orchestrator.submit: {jobs / elapsed:,.0f} jobs/s; "
          f"orchestrator RSS {after:.0f} MB with {jobs} queued (+{after - before:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    runs, jobs, nap_s = (10, 8, 0.5) if args.quick else (30, 24, 1.0)
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        workdir = Path(tmp)
        enqueue(workdir, 10_000)
        servers = start_nodes(4, workdir)
        try:
            urls = [s.url for s in servers]
            overhead(urls[0], workdir, runs)
            base = throughput(urls[:1], workdir, jobs, nap_s)
            print(f"throughput 1 node: {base:.2f} jobs/s (sleep {nap_s}s jobs)")
            for n in (2, 4):
                rate = throughput(urls[:n], workdir, jobs, nap_s)
                goal = " (goal >= 3.8x)" if n == 4 else ""
                print(f"throughput {n} nodes: {rate:.2f} jobs/s → {rate / base:.2f}x{goal}")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
