"""Idle workers and wake-ups: a submit that lands while a worker looks is never missed."""

from __future__ import annotations

import threading
import time
from typing import Any

from orchestrator.pool import NodePool


def _pool() -> NodePool:
    ctx: Any = None  # waiting and waking touch neither the store nor the nodes
    return NodePool(ctx)


def test_a_wake_after_the_last_look_ends_the_wait_at_once() -> None:
    pool = _pool()
    seen = pool.wakes
    pool.wake()  # a submit between the worker's look at the queue and its wait
    started = time.monotonic()
    pool.wait_for_work(5.0, seen=seen)
    assert time.monotonic() - started < 1.0


def test_without_a_wake_the_wait_lasts_until_one_comes() -> None:
    pool = _pool()
    seen = pool.wakes
    threading.Timer(0.2, pool.wake).start()
    started = time.monotonic()
    pool.wait_for_work(5.0, seen=seen)
    assert 0.15 < time.monotonic() - started < 2.0
