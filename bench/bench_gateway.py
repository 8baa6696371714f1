"""Gateway overhead: ComfyUI's websocket example flow, direct against a node vs through us.

    .venv/bin/python bench/bench_gateway.py [--runs N] [--lift-rate-limit]

The flow is ``websockets_api_example.py``'s ``get_images`` on a trivial graph, over one
open socket: ``POST /prompt`` (with ``client_id`` and ``prompt_id``), read the socket until
``executing`` null for that prompt, ``GET /history/{id}``, ``GET /view`` for each image.
It runs against one real ComfyUI node, and against our service (uvicorn, the real pool over
that same node) at ``/comfyui/<token>``. Runs alternate between the two, so drifts in
machine load hit both alike. Prints p50/p90 of each and the p50 ratio (goal <= 1.15).

The client runs in a process of its own, as a real ComfyUI client does: in the service's
process its own work (websocket-client checks every frame in pure Python) would compete
with the service for the interpreter lock and count against the gateway alone.

The service runs at its shipped limits; ``--lift-rate-limit`` raises its per-token request
rate out of reach (printed either way).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import websocket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.provision.install import default_home, ensure_installed  # noqa: E402
from orchestrator.provision.server import LocalComfy, prepare_base_dir  # noqa: E402
from orchestrator.service import Orchestrator  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.tokens import TokenStore  # noqa: E402
from orchestrator.web import ServerThread, create_app  # noqa: E402

TEST_PACK = ROOT / "tests" / "comfy_nodes"
GOAL_RATIO = 1.15
WARMUP = 3


def trivial(seed: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "OrchTestSolidImage",
              "inputs": {"width": 16, "height": 16, "color": "#808080", "batch_size": 1,
                         "seed": seed}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "g"}},
    }


class ExampleClient:
    """``websockets_api_example.py``'s calls, against one base address."""

    def __init__(self, address: str) -> None:
        self.address = address  # host:port[/comfyui/<token>], as the example's server_address
        self.client_id = str(uuid.uuid4())
        self.ws = websocket.create_connection(f"ws://{address}/ws?clientId={self.client_id}")

    def run(self, graph: dict[str, Any]) -> float:
        """Seconds for one prompt: queue, wait for the end, history, every image."""
        started = time.perf_counter()
        prompt_id = str(uuid.uuid4())
        body = json.dumps({"prompt": graph, "client_id": self.client_id,
                           "prompt_id": prompt_id}).encode()
        urllib.request.urlopen(urllib.request.Request(f"http://{self.address}/prompt",
                                                      data=body)).read()
        self._wait_end(prompt_id)
        with urllib.request.urlopen(f"http://{self.address}/history/{prompt_id}") as answer:
            entry = json.loads(answer.read())[prompt_id]
        for output in entry["outputs"].values():
            for image in output.get("images", ()):
                query = urllib.parse.urlencode(image)
                with urllib.request.urlopen(f"http://{self.address}/view?{query}") as view:
                    view.read()
        return time.perf_counter() - started

    def _wait_end(self, prompt_id: str) -> None:
        while True:
            frame = self.ws.recv()
            if isinstance(frame, str):
                message = json.loads(frame)
                data = message.get("data") or {}
                if (message["type"] == "executing" and data.get("node") is None
                        and data.get("prompt_id") == prompt_id):
                    return

    def close(self) -> None:
        self.ws.close()


def measure(addresses: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Seconds per run for each address, alternating; in this (the client's) process."""
    clients = {name: ExampleClient(address) for name, address in addresses.items()}
    times: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for index in range(WARMUP + runs):
            for offset, (name, client) in enumerate(clients.items()):
                took = client.run(trivial(index * 10 + offset + 1))
                if index >= WARMUP:
                    times[name].append(took)
    finally:
        for client in clients.values():
            client.close()
    return times


def measure_in_child(addresses: dict[str, str], runs: int) -> dict[str, list[float]]:
    """``measure`` in a separate Python process (see the module docstring)."""
    answer = subprocess.run(
        [sys.executable, __file__, "--client", json.dumps(addresses), "--runs", str(runs)],
        check=True, capture_output=True, text=True)
    times: dict[str, list[float]] = json.loads(answer.stdout)
    return times


def report(times: dict[str, list[float]]) -> None:
    for name, values in times.items():
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(f"{name:>8}: p50 {statistics.median(values) * 1000:7.1f} ms   "
              f"p90 {p90 * 1000:7.1f} ms   ({len(values)} runs)")
    ratio = statistics.median(times["gateway"]) / statistics.median(times["direct"])
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    print(f"gateway/direct p50 ratio: {ratio:.2f} ({verdict} the goal <= {GOAL_RATIO})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--client", help=argparse.SUPPRESS)  # JSON {name: address}: measure
    parser.add_argument("--lift-rate-limit", action="store_true",
                        help="raise the service's per-token request rate out of reach")
    args = parser.parse_args()
    if args.client:
        print(json.dumps(measure(json.loads(args.client), args.runs)))
        return
    print("rate limit: lifted (--lift-rate-limit)" if args.lift_rate_limit
          else "rate limit: shipped defaults")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        install = ensure_installed(default_home(), progress=lambda line: print(line))
        node = LocalComfy(install, prepare_base_dir(install, workdir / "node", [TEST_PACK]))
        with node.start():
            run_against(node, workdir, args.runs, lift_rate=args.lift_rate_limit)


def run_against(node: LocalComfy, workdir: Path, runs: int, *, lift_rate: bool) -> None:
    lifted = {"rate_burst": 100_000, "rate_per_minute": 1_000_000} if lift_rate else {}
    settings = Settings(data_dir=workdir / "data", workflows_dir=workdir / "workflows",
                        port=0, **lifted)
    settings.workflows_folder.mkdir(parents=True)
    with TokenStore.open(settings.data_dir) as tokens, Orchestrator(
            data_dir=settings.data_dir, workflows_dir=settings.workflows_folder,
            nodes=[node.url]) as orch:
        token = tokens.create("bench")
        with ServerThread(create_app(orch, tokens, settings)) as server:
            ours = server.url.removeprefix("http://") + f"/comfyui/{token}"
            report(measure_in_child({"direct": node.url.removeprefix("http://"),
                                     "gateway": ours}, runs))


if __name__ == "__main__":
    main()
