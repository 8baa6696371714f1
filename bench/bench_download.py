"""How long the service's own download of a trivial output takes (its lean node client),
against a plain ``requests`` GET of the same file: the part of a face's added wall time
that sits between the node's end and the job's terminal status (issue 17's floor).

    .venv/bin/python bench/bench_download.py        # ~30 s, one local ComfyUI node
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import requests
from bench_pool import solid, start_nodes

from orchestrator.comfy.client import ComfyClient

FILES, ROUNDS = 20, 10


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"p50 {statistics.median(ordered) * 1000:.2f} ms, "
            f"p90 {ordered[int(len(ordered) * 0.9)] * 1000:.2f} ms")


def timed(call: Callable[[], object], into: list[float]) -> None:
    started = time.perf_counter()
    call()
    into.append(time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        [node] = start_nodes(1, Path(tmp))
        try:
            client = ComfyClient(node.url)
            files = [client.run(solid(30_000 + i)).outputs[0] for i in range(FILES)]
            session = requests.Session()
            lean: list[float] = []
            plain: list[float] = []
            for _ in range(ROUNDS):  # alternated, so a drift of the machine weighs on both
                for file in files:
                    url, params = f"{node.url}/view", file.view_params()
                    timed(partial(client.view, file), lean)
                    timed(partial(session.get, url, params=params, timeout=10), plain)
            print(f"{len(lean)} downloads of a 16x16 PNG from one local node")
            print(f"  the service's node client (ComfyClient.view): {quantiles(lean)}")
            print(f"  requests GET /view:                           {quantiles(plain)}")
        finally:
            node.stop()


if __name__ == "__main__":
    main()
