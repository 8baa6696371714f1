"""The cost bench's own instruments: what it reads from /proc and the jobs it makes."""

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from bench.bare_relay import Upstream
from bench.bench_cost import (
    ClientProcess,
    Setup,
    Tally,
    added_ms,
    block,
    floor_verdict,
    graph,
    hop_cost,
    median_margin,
    own_cpu,
    p99,
    paired_added,
    print_floor,
    relay_process,
    run_rounds,
    tree_cpu,
)
from orchestrator.provision.server import LocalComfy
from orchestrator.service import Orchestrator


def test_every_job_has_a_colour_and_seed_of_its_own() -> None:
    jobs = [graph(seed)["1"]["inputs"] for seed in range(5000)]
    assert len({job["color"] for job in jobs}) == 5000
    assert len({job["seed"] for job in jobs}) == 5000


def test_tree_cpu_counts_a_busy_child_under_its_root() -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nend = time.process_time() + 0.3\n"
                              "while time.process_time() < end: pass\n"
                              "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30  # the spin may wait for a core on a busy machine
        while tree_cpu([child.pid]) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = tree_cpu([child.pid])
        assert spent >= 0.25  # the child's own spin, read from /proc
        assert tree_cpu([os.getpid()]) - own_cpu() >= spent - 0.02  # the root counts its child
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def test_p99_is_the_nearest_rank() -> None:
    assert p99([float(i) for i in range(1, 101)]) == 99.0
    assert p99([3.0]) == 3.0


# --- the bare relay: the floor of the added wall time --------------------------------

def _tally(ms_each: float, jobs: int = 100, cpu_ms: float = 0.0) -> Tally:
    return Tally(times=[ms_each / 1000] * jobs, service_cpu=cpu_ms * jobs / 1000)


def test_the_blocks_place_the_relays_added_time_and_cpu(
        capsys: pytest.CaptureFixture[str]) -> None:
    seq = {"direct": _tally(10.0), "relay": _tally(13.0, cpu_ms=1.5)}
    assert added_ms(seq, "relay") == pytest.approx((3.0, 3.0))
    print_floor(seq, own=0.003)
    out = capsys.readouterr().out
    assert "added to direct p50 +3.0 ms" in out
    assert "relay CPU per job 1.50 ms (0.50x ComfyUI's own), 0.50 ms per relayed request" in out


def test_job_by_job_each_job_counts_against_its_own_rounds_direct_job() -> None:
    # The machine slows down halfway: blocks would see +20 ms, each round sees +2 ms.
    direct = [0.010] * 50 + [0.030] * 50
    paired = {"direct": direct, "relay": [took + 0.002 for took in direct]}
    median, first, third = paired_added(paired, "relay")
    assert (median, first, third) == pytest.approx((2.0, 2.0, 2.0))
    assert median_margin(1.0, 3.0, 100) == pytest.approx(0.364, abs=0.001)


def test_the_hop_is_the_relays_step_minus_directs_same_step() -> None:
    direct = [[0.001, 0.005, 0.001, 0.001]] * 10
    relay = [[0.0016, 0.0052, 0.0015, 0.0017]] * 10  # +0.6, +0.2, +0.5, +0.7 ms
    per_request, frames = hop_cost({"direct": direct, "relay": relay})
    assert per_request == pytest.approx(0.6) and frames == pytest.approx(0.2)


def test_the_floor_verdict_splits_each_faces_added_time_at_the_relay() -> None:
    added = {"relay": (2.0, 0.5), "gateway": (10.0, 1.0), "rest": (4.0, 1.0),
             "v2": (1.0, 1.0)}
    relay, gateway, rest, v2 = floor_verdict(added)
    assert "added p50 +2.0 ms (+-0.5)" in relay and "leaves +1.0 ms" in relay  # +3 - floor
    assert "relay floor +2.0 ms (20%)" in gateway and "own work +8.0 ms" in gateway
    assert "(50%)" in rest and "own work +2.0 ms" in rest
    assert "(200%)" in v2 and "own work -1.0 ms" in v2  # a face faster than the relay says so
    noisy = floor_verdict({**added, "relay": (2.0, 4.0)})
    assert len(noisy) == 5 and "too noisy to judge" in noisy[1]


def test_the_relays_node_client_resends_on_a_new_connection_after_an_idle_close() -> None:
    """The node may close a kept-alive connection between two requests (its keep-alive
    timeout): the relay's next request must not fail for it."""
    async def scenario() -> tuple[list[bytes], int]:
        connections = 0

        async def answer_once(reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()  # kept alive as far as the client knows, then closed

        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        upstream = Upstream("127.0.0.1", port)
        bodies = []
        for _ in range(2):
            answer = await upstream.request("GET", "/history/x")
            assert answer.status == 200 and answer.content_type == "text/plain"
            bodies.append(b"".join(answer.body))
            await asyncio.sleep(0.05)  # the close reaches the client's idle connection
        upstream.close()
        server.close()
        await server.wait_closed()
        return bodies, connections

    bodies, connections = asyncio.run(scenario())
    assert bodies == [b"ok", b"ok"] and connections == 2


def test_the_relay_path_runs_the_example_flow_and_charges_the_relays_process(
        comfy_server: LocalComfy, tmp_path: Path) -> None:
    """The bench's relay path: ComfyUI's example flow through the bare relay to a real
    node, the relay's CPU read from its own process (not the service's)."""
    with relay_process(comfy_server.url, tmp_path) as (address, pid):
        assert f"--port\0{address.rsplit(':', 1)[1]}" in Path(
            f"/proc/{pid}/cmdline").read_text()
        clients = ClientProcess({"nodes": [comfy_server.url.removeprefix("http://")],
                                 "service": "", "token": "", "relay": address})
        try:
            setup = Setup("", "", 0, [comfy_server.pid or 0], clients,
                          cast(Orchestrator, None), relay_pid=pid)
            seed = int(time.time()) % 1000 * 10_000
            before = tree_cpu([pid])
            tally = block(setup, "relay", 20, seed)
            relay_spent = tree_cpu([pid]) - before
            rounds = clients.run("direct", 5, seed + 1000, 1, paths=("direct", "relay"))
        finally:
            clients.close()
    assert tally.jobs == 20 and all(0 < took < 30 for took in tally.times)
    assert 0 < tally.service_cpu <= relay_spent  # the relay's process, nothing else
    assert tally.comfy_cpu > 0
    # job by job: one job per path per round, and the example flow's four steps of each
    assert {path: len(times) for path, times in rounds["paired"].items()} == {
        "direct": 5, "relay": 5}
    for path in ("direct", "relay"):
        assert len(rounds["steps"][path]) == 5
        for steps, took in zip(rounds["steps"][path], rounds["paired"][path], strict=True):
            assert len(steps) == 4 and sum(steps) == pytest.approx(took)


def test_job_by_job_rounds_rotate_so_every_path_follows_every_other_alike() -> None:
    order: list[str] = []

    def runner(path: str) -> Callable[[dict[str, Any]], float]:
        return lambda _graph: order.append(path) or 0.001

    paths = ("direct", "relay", "gateway")
    answer = run_rounds({path: (runner(path), None) for path in paths}, 6, seed=0)
    assert {path: len(times) for path, times in answer["paired"].items()} == dict.fromkeys(
        paths, 6)
    followers = Counter(zip(order, order[1:], strict=False))
    assert {pair for pair in followers if pair[0] != pair[1]} == {
        (a, b) for a in paths for b in paths if a != b}
    assert order[:3] == ["direct", "relay", "gateway"] and order[3:6] == [
        "relay", "gateway", "direct"]
