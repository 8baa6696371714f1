"""REST service benchmark: SSE event latency over a real uvicorn and a real ComfyUI node.

    .venv/bin/python bench/bench_service.py [--jobs N]

For each event of sleep-node jobs (progress steps, outputs, the end) it compares the
moment the orchestrator published the event (its ``at`` stamp) with the moment an SSE
client read the frame, and prints p50/p95/max. The baseline in the same run is an
in-process subscriber to the same bus, so the printed ratio is what HTTP + SSE adds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pool import nap, start_nodes  # noqa: E402
from orchestrator.service import Orchestrator  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.tokens import TokenStore  # noqa: E402
from orchestrator.web.app import create_app  # noqa: E402
from orchestrator.web.server import ServerThread  # noqa: E402


def lag_ms(stamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds() * 1000


def sse_lags(api: str, token: str, job_id: str) -> list[float]:
    lags = []
    with requests.get(f"{api}/v1/jobs/{job_id}/events", stream=True, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as response:
        for raw in response.iter_lines():
            line = raw.decode()
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("type") != "snapshot":
                lags.append(lag_ms(event["at"]))
            if event.get("type") == "finished":
                break
    return lags


def bus_lags(orch: Orchestrator, job_id: str, out: list[float]) -> None:
    with orch.events(job_id) as sub:
        for event in sub:
            if getattr(event, "type", "") != "snapshot":
                out.append(lag_ms(event.model_dump(mode="json")["at"]))


def report(name: str, values: list[float]) -> float:
    p50 = statistics.median(values)
    p95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else p50
    print(f"{name:>22}: p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  max {max(values):6.2f} ms"
          f"  ({len(values)} events)")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        root = Path(tmp)
        servers = start_nodes(1, root)
        settings = Settings(data_dir=root / "data", nodes=(servers[0].url,))
        try:
            with TokenStore.open(settings.data_dir) as tokens, Orchestrator(
                    data_dir=settings.data_dir, nodes=settings.nodes) as orch, ServerThread(
                    create_app(orch, tokens, settings)) as server:
                token = tokens.create("bench")
                sse: list[float] = []
                direct: list[float] = []
                for i in range(args.jobs):
                    job = orch.submit(graph=nap(50_000 + i, 0.4), owner="bench")
                    side = threading.Thread(target=bus_lags, args=(orch, job.id, direct))
                    side.start()
                    sse.extend(sse_lags(server.url, token, job.id))
                    side.join()
                base = report("in-process subscriber", direct)
                over = report("SSE client over HTTP", sse)
                print(f"SSE adds {over - base:.2f} ms at p50 (ratio {over / base:.1f}x)")
        finally:
            for node in servers:
                node.stop()


if __name__ == "__main__":
    main()
