"""The pool's watchdog against real ComfyUI nodes, with faults made by ``tests/faults.py``:
a silenced websocket is reconnected within seconds and its work finishes once, a healthy
one on a node slow between steps is left alone; a hung prompt is interrupted and finished
on the other node."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.protocol import PromptPhase
from orchestrator.events import ItemFailed, ProgressEvent
from orchestrator.jobs import ItemStatus, JobStatus
from orchestrator.provision.server import LocalComfy
from orchestrator.service import Orchestrator
from orchestrator.stall import socket_silence_allowed
from tests import graphs
from tests.conftest import ComfyFactory
from tests.faults import FaultProxy, set_slowdown
from tests.helpers import wait_until
from tests.service import start_running


def seed() -> int:
    return uuid.uuid4().int % 10**9


@pytest.fixture()
def orch_factory(tmp_path: Path) -> Iterator[Callable[..., Orchestrator]]:
    opened: list[Orchestrator] = []

    def make(nodes: list[str]) -> Orchestrator:
        orch = Orchestrator(data_dir=tmp_path / f"data{len(opened)}", nodes=nodes)
        opened.append(orch)
        return orch

    yield make
    for orch in opened:
        orch.close()


@pytest.fixture()
def proxy(comfy_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(comfy_url) as proxy:
        yield proxy


class ProgressLog:
    """Every progress event of one job, with the moment it arrived (a thread collects)."""

    def __init__(self, orch: Orchestrator, job_id: str) -> None:
        self.times: list[float] = []
        self.failures: list[ItemFailed] = []
        self._sub = orch.events(job_id)
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        for event in self._sub:
            if isinstance(event, ProgressEvent):
                self.times.append(time.monotonic())
            elif isinstance(event, ItemFailed):
                self.failures.append(event)

    def close(self) -> None:
        self._sub.close()
        self._thread.join(5)


def times_run_on(url: str, prompt_ids: list[str]) -> int:
    """How many of ``prompt_ids`` the node has a record of running (its history)."""
    with ComfyClient(url) as client:
        return sum(1 for pid in prompt_ids if client.history(pid) is not None)


@pytest.mark.every_comfyui
def test_a_frozen_socket_is_reconnected_within_seconds_and_the_item_runs_once(
    proxy: FaultProxy, comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([proxy.url])
    stream = orch._pool.worker(proxy.url.split("//")[1]).node.stream
    # Long enough to still run when the socket is back (~6 s after the freeze; 12 s at the
    # most the test allows) with a little room: the test then sees progress arrive on the
    # new socket.
    handle = orch.submit(graph=graphs.sleep(14.0, steps=56, seed=seed()))
    log = ProgressLog(orch, handle.id)
    try:
        wait_until(lambda: len(log.times) >= 2, 60, "progress from the running prompt")
        frozen_at = time.monotonic()
        assert proxy.freeze() == 1
        wait_until(lambda: bool(orch._pool.watchdog.reconnects), 30, "the watchdog to reconnect")
        wait_until(lambda: stream.connects >= 2 and stream.wait_connected(0), 10,
                   "the socket to be open again")
        back_at = time.monotonic()
        detected = orch._pool.watchdog.reconnects[0].at - frozen_at
        print(f"\nfrozen socket: reconnect decided {detected:.1f}s after the freeze, "
              f"socket back after {back_at - frozen_at:.1f}s")
        assert detected < 10 and back_at - frozen_at < 12
        # Progress flows again on the new socket while the same prompt runs on.
        wait_until(lambda: log.times[-1] > back_at, 30, "progress on the new socket")
        job = handle.wait(timeout=60)
    finally:
        log.close()
    item = job.items[0]
    assert job.status == JobStatus.SUCCEEDED and len(item.output_ids) == 1
    assert len(item.attempts) == 1 and proxy.websockets_opened == 2
    assert times_run_on(comfy_url, [a.prompt_id for a in item.attempts]) == 1


@pytest.mark.every_comfyui
def test_a_prompt_ending_while_its_socket_is_frozen_is_collected_not_run_again(
    proxy: FaultProxy, comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([proxy.url])
    handle = orch.submit(graph=graphs.sleep(1.5, steps=6, seed=seed()))
    log = ProgressLog(orch, handle.id)
    try:
        wait_until(lambda: len(log.times) >= 1, 60, "progress from the running prompt")
        proxy.freeze()
        # The end (`executed`, `executing` null) is dropped by the proxy: only a look-up
        # over HTTP can tell the item finished.
        job = handle.wait(timeout=60)
    finally:
        log.close()
    item = job.items[0]
    assert job.status == JobStatus.SUCCEEDED and len(item.output_ids) == 1
    assert len(item.attempts) == 1 and proxy.dropped() > 0
    assert times_run_on(comfy_url, [item.attempts[0].prompt_id]) == 1


def test_a_node_slower_than_the_silence_floor_between_steps_is_not_reconnected(
    comfy_url: str, orch_factory: Callable[..., Orchestrator], caplog: pytest.LogCaptureFixture
) -> None:
    orch = orch_factory([comfy_url])
    name = comfy_url.split("//")[1]
    watchdog, stream = orch._pool.watchdog, orch._pool.worker(name).node.stream
    # One run measures the workload's seconds per step on this node: 6.5 s, over the 5 s
    # floor (a video model's steps, a large image on a small GPU).
    first = orch.submit(graph=graphs.sleep(6.5, steps=1, seed=seed())).wait(timeout=120)
    wait_until(lambda: orch.eta_s(first, 0) is not None, 10, "the run measured")
    estimate = watchdog.book.estimate(name, watchdog.placement.key_of(first))
    assert estimate is not None and estimate.step_s is not None
    reconnects, connects = len(watchdog.reconnects), stream.connects
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        # Two more such steps: 6.5 s of silence before each, on a healthy socket.
        job = orch.submit(graph=graphs.sleep(13.0, steps=2, seed=seed())).wait(timeout=120)
    print(f"\nslow steps: {estimate.step_s:.1f}s per step measured, socket silence allowed "
          f"{socket_silence_allowed(watchdog.limits, estimate.step_s):.1f}s")
    assert job.status == JobStatus.SUCCEEDED
    assert watchdog.reconnects[reconnects:] == [] and stream.connects == connects
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.fixture()
def slow_and_fast(comfy_server: LocalComfy,
                  comfy_factory: ComfyFactory) -> Iterator[tuple[LocalComfy, LocalComfy]]:
    """The shared server made very slow (a hung GPU), and a second real server at speed."""
    fast = comfy_factory()
    set_slowdown(comfy_server.base_dir, 1000)
    try:
        yield comfy_server, fast
    finally:
        set_slowdown(comfy_server.base_dir, None)
        fast.stop()


@pytest.mark.every_comfyui
def test_a_hung_prompt_is_interrupted_and_finished_on_the_other_node(
    slow_and_fast: tuple[LocalComfy, LocalComfy], tmp_path: Path
) -> None:
    hung, fast = slow_and_fast
    hung_name, fast_name = (s.url.split("//")[1] for s in (hung, fast))
    # The shipped floor and ceiling (minutes) fit real GPUs; a test cannot wait that long,
    # so this service gives up on a prompt after 3 s without progress.
    running = start_running(tmp_path / "data", tmp_path / "workflows", [hung.url, fast.url],
                            stall_floor_s=1.0, stall_ceiling_s=3.0)
    try:
        orch = running.orch
        orch._pool.drain(fast_name)  # the first attempt must land on the hung node
        handle = orch.submit(graph=graphs.sleep(2.0, steps=1, seed=seed()))
        wait_until(lambda: handle.get().items[0].status == ItemStatus.RUNNING, 60,
                   "the prompt running on the hung node")
        orch._pool.drain(fast_name, False)
        job = handle.wait(timeout=90)
        token = running.tokens.create("ops", admin=True)
        shown = requests.get(f"{running.url}/v1/jobs/{job.id}", timeout=10,
                             headers={"Authorization": f"Bearer {token}"}).json()
    finally:
        running.stop()
    item = job.items[0]
    assert job.status == JobStatus.SUCCEEDED and item.node == fast_name
    first, second = item.attempts
    assert first.node == hung_name and second.node == fast_name
    assert first.error is not None and "no progress for" in first.error
    # The reason is part of the item's REST answer (and so of the panel's job card).
    assert shown["items"][0]["earlier_attempts"] == [{"node": hung_name, "error": first.error}]
    with ComfyClient(hung.url) as client:  # interrupted there, not left running
        state = client.lookup(first.prompt_id)
    assert state.phase == PromptPhase.DONE and state.entry is not None
    assert state.entry.interrupted


@pytest.mark.every_comfyui
def test_progress_moves_over_http_while_the_socket_stays_silent(
    proxy: FaultProxy, comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([proxy.url])
    # One run measures the workload's seconds per step on this node.
    first = orch.submit(graph=graphs.sleep(2.0, steps=8, seed=seed())).wait(timeout=120)
    wait_until(lambda: orch.eta_s(first, 0) is not None, 10, "the run measured")
    # From now on the node's socket says nothing, on every connection, reconnects too.
    proxy.freeze(new_too=True)
    frozen_at = time.monotonic()
    handle = orch.submit(graph=graphs.sleep(12.0, steps=48, seed=seed()))
    fractions: list[float] = []
    sub = orch.events(handle.id)

    def collect() -> None:
        for event in sub:
            if isinstance(event, ProgressEvent):
                fractions.append(event.item_fraction)

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    try:
        # The start the socket never brought is read from HTTP...
        wait_until(lambda: handle.get().items[0].status == ItemStatus.RUNNING, 60,
                   "the item running per HTTP")
        started_seen = time.monotonic() - frozen_at
        # ...and its progress moves from the measured speed while it runs.
        wait_until(lambda: len(fractions) >= 2, 60, "progress while the socket is silent")
        moved_at = time.monotonic() - frozen_at
        job = handle.wait(timeout=120)
    finally:
        sub.close()
        thread.join(5)
    print(f"\nsilent socket: running seen after {started_seen:.1f}s, progress moving "
          f"after {moved_at:.1f}s, {len(fractions)} updates {fractions[:6]}")
    # Expected: 48 steps at the measured seconds per step (~12 s), so it climbs a little
    # each second once the socket's silence outlasts its allowance (5 s); at the 8-step
    # item's mean (~2.4 s) it would hit the cap in three.
    assert len(fractions) >= 5 and fractions == sorted(fractions)
    assert 0 < fractions[0] < fractions[-1] <= 0.95
    item = job.items[0]
    assert job.status == JobStatus.SUCCEEDED and len(item.output_ids) == 1
    assert len(item.attempts) == 1 and proxy.dropped() > 0
    assert times_run_on(comfy_url, [item.attempts[0].prompt_id]) == 1
