"""Comfy API v2 end-to-end latency: direct ComfyUI, comfy-api-proxy, and our service.

    .venv/bin/python bench/bench_v2.py [--runs N] [--lift-rate-limit]

On one real ComfyUI node (loopback, test node pack) and a trivial 16x16 graph, prints p50
and max of submit → terminal status with the output known, interleaved so load drifts hit
every column alike. A stream that ends "succeeded" without its output (the proxy's do)
leaves the client to ask for the job; that request counts, and the stream's own end is
printed too:

- direct: ``POST /prompt`` + websocket (our ``ComfyClient``), then ``/view`` of the output;
- proxy: ``comfy-api-proxy`` in front of the same node, through ``comfy-sdk``'s
  ``submit`` + ``events()``;
- ours: this service (``comfy-orch serve`` with a pool of one node, in a process of its own
  like the proxy) through the same SDK calls.

Goals: ours p50 <= proxy p50 and <= direct p50 + 15 ms; ours max < 1 s.

The proxy column needs the proxy installed in this environment; the bench installs
nothing itself:

    .venv/bin/pip install comfy-api-proxy==0.1.6

Without it the column is skipped with a message.

Our service runs at its shipped limits; ``--lift-rate-limit`` raises its per-token request
rate out of reach, to tell the limit's cost from the rest (the bench prints which).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from comfy_sdk import Comfy  # noqa: E402

from bench.bench_pool import solid, start_nodes  # noqa: E402
from orchestrator.comfy.client import ComfyClient  # noqa: E402
from orchestrator.provision.server import free_port  # noqa: E402
from orchestrator.tokens import TokenStore  # noqa: E402

PROXY_VERSION = "0.1.6"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})
Runner = Callable[[int], float]


def direct_runner(client: ComfyClient) -> Runner:
    def run(seed: int) -> float:
        t0 = time.perf_counter()
        result = client.run(solid(seed))
        for file in result.outputs:
            client.view(file)
        return time.perf_counter() - t0
    return run


def sdk_runner(base_url: str, token: str | None, *, defects: list[str],
               stream_ends: list[float]) -> tuple[Runner, Comfy]:
    """submit + events() until the terminal status: the seconds until the output is known.

    A run whose stream did not carry a succeeded status and its one output is noted in
    ``defects``; a client then has to ask for the job (``refresh``) to learn its output,
    and that request is part of its time. When the stream itself ended is kept in
    ``stream_ends``.
    """
    os.environ["COMFY_BASE_URL"] = base_url
    client = Comfy(api_key=token)

    def run(seed: int) -> float:
        t0 = time.perf_counter()
        job = client.submit(client.workflows.from_json(solid(seed)))
        outputs, status = 0, ""
        for event in job.events():
            kind = type(event).__name__
            outputs += kind == "OutputReady"
            status = getattr(event, "status", status)
            if kind == "StatusChange" and status in TERMINAL:
                break
        stream_ends.append(time.perf_counter() - t0)
        if status != "succeeded" or outputs != 1:
            asked = status == "succeeded" and bool(job.refresh().outputs)
            defects.append(f"job {job.id}: stream ended {status!r} with {outputs} output(s)"
                           + ("; the job, asked afterwards, had it" if asked else ""))
        return time.perf_counter() - t0
    return run, client


# Environment that lifts the service's per-token request rate out of a bench's reach.
LIFTED_RATE = {"COMFY_ORCH_RATE_BURST": "100000", "COMFY_ORCH_RATE_PER_MINUTE": "1000000"}


def rate_note(lift: bool) -> str:
    """The line a bench prints about the limits it ran at."""
    return ("rate limit: lifted (--lift-rate-limit)" if lift
            else "rate limit: shipped defaults")


@contextlib.contextmanager
def our_service(url: str, workdir: Path, *, lift_rate: bool = False) -> Iterator[str]:
    """``comfy-orch serve`` over ``url`` in a process of its own, as the proxy runs and as
    the service is deployed; yields its base URL, with a token in COMFY_API_KEY. It runs
    at the shipped limits unless ``lift_rate``."""
    data = workdir / "ours"
    with TokenStore.open(data) as tokens:
        os.environ["COMFY_API_KEY"] = tokens.create("bench")
    env = {**os.environ, **(LIFTED_RATE if lift_rate else {})}
    with server_process(
            lambda port: [sys.executable, "-m", "orchestrator", "serve", "--host", "127.0.0.1",
                          "--port", str(port), "--data", str(data), "--node", url],
            workdir / "ours.log", "/api/v2/health", "the service", env=env) as base:
        yield base


@contextlib.contextmanager
def proxy(url: str, workdir: Path) -> Iterator[str | None]:
    """comfy-api-proxy in front of ``url`` (None when it is not installed here)."""
    if importlib.util.find_spec("comfy_api_proxy") is None:
        print(f"proxy column skipped: comfy-api-proxy is not installed; run "
              f"'.venv/bin/pip install comfy-api-proxy=={PROXY_VERSION}' to include it")
        yield None
        return
    with server_process(
            lambda port: [sys.executable, "-m", "comfy_api_proxy.cli", "run", "--comfyui", url,
                          "--port", str(port), "--state-dir", str(workdir / "proxy-state")],
            workdir / "proxy.log", "/api/v2/jobs/none", "comfy-api-proxy") as base:
        yield base


@contextlib.contextmanager
def server_process(command: Callable[[int], list[str]], log_path: Path, probe: str,
                   what: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``command(port)`` running until it answers ``probe``; yields its base URL and
    stops it on leaving."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command(port), stdout=log, stderr=subprocess.STDOUT,
                                   env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_answering(base + probe, process, what)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_answering(url: str, process: subprocess.Popen[bytes], what: str,
                    timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url}; see its log in the work folder")


def measure(runners: dict[str, Runner], runs: int) -> dict[str, list[float]]:
    """Each runner once per round, rounds interleaved; two warm-up rounds are dropped."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    seed = int(time.time()) * 1000
    for round_no in range(runs + 2):
        for name, run in runners.items():
            seed += 1
            elapsed = run(seed)
            if round_no >= 2:
                times[name].append(elapsed)
    return times


def report(times: dict[str, list[float]], defects: dict[str, list[str]],
           stream_ends: dict[str, list[float]]) -> None:
    """Times until the output is known; for a column whose streams ended without it, also
    when the streams ended (its clients then asked for the job to learn the output)."""
    for name, values in times.items():
        bad = defects.get(name, [])
        print(f"{name:>7}: p50 {statistics.median(values) * 1000:7.1f} ms   "
              f"max {max(values) * 1000:7.1f} ms   ({len(values)} runs, {len(bad)} streams "
              f"without a succeeded status and its output{': ' + bad[0] if bad else ''})")
        ends = stream_ends.get(name, [])[2:]  # the warm-up rounds are dropped, as in measure
        if bad and ends:
            print(f"{'':>9}its streams themselves ended at p50 "
                  f"{statistics.median(ends) * 1000:.1f} ms")
    ours, direct = statistics.median(times["ours"]), statistics.median(times["direct"])
    print(f"ours - direct p50: {(ours - direct) * 1000:+.1f} ms (goal <= +15 ms); "
          f"ours max {max(times['ours']) * 1000:.0f} ms (goal < 1000 ms)")
    if "proxy" in times:
        print(f"ours / proxy p50: {ours / statistics.median(times['proxy']):.2f} (goal <= 1.00)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50, help="measured rounds per column")
    parser.add_argument("--lift-rate-limit", action="store_true",
                        help="raise our per-token request rate out of reach")
    args = parser.parse_args()
    print(rate_note(args.lift_rate_limit))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        [node] = start_nodes(1, workdir)
        try:
            with ComfyClient(node.url) as direct, our_service(
                    node.url, workdir, lift_rate=args.lift_rate_limit) as ours, \
                    proxy(node.url, workdir) as proxied:
                defects: dict[str, list[str]] = {"ours": [], "proxy": []}
                ends: dict[str, list[float]] = {"ours": [], "proxy": []}
                runners = {"direct": direct_runner(direct)}
                ours_run, ours_client = sdk_runner(ours, os.environ["COMFY_API_KEY"],
                                                   defects=defects["ours"],
                                                   stream_ends=ends["ours"])
                runners["ours"] = ours_run
                clients = [ours_client]
                if proxied is not None:
                    proxy_run, proxy_client = sdk_runner(proxied, None,
                                                         defects=defects["proxy"],
                                                         stream_ends=ends["proxy"])
                    runners["proxy"] = proxy_run
                    clients.append(proxy_client)
                try:
                    report(measure(runners, args.runs), defects, ends)
                finally:
                    for client in clients:
                        client.close()
        finally:
            node.stop()


if __name__ == "__main__":
    main()
