"""Prompts reach a node in claim order, whatever each item's preparation takes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from orchestrator.jobs import JobStatus
from orchestrator.post_order import PostOrder
from orchestrator.runner import ItemExecution
from orchestrator.service import Orchestrator
from tests.orchestrator.test_pool import orch_factory, workflows  # noqa: F401 - fixtures


def post_in_threads(order: PostOrder, tickets: list[int], delays: dict[int, float]) -> list[int]:
    """Each ticket 'posts' from its own thread after its delay; the order they posted in."""
    posted: list[int] = []

    def post(ticket: int) -> None:
        time.sleep(delays.get(ticket, 0.0))
        with order.turn(ticket):
            posted.append(ticket)

    threads = [threading.Thread(target=post, args=(t,)) for t in tickets]
    for thread in reversed(threads):  # the later ones start first
        thread.start()
    for thread in threads:
        thread.join(10)
    return posted


def test_a_later_ticket_posts_after_an_earlier_slow_one() -> None:
    order = PostOrder()
    tickets = [order.ticket() for _ in range(3)]
    assert post_in_threads(order, tickets, {tickets[0]: 0.3}) == tickets
    assert order.waiting() == 0


def test_a_ticket_given_up_frees_the_line_and_done_is_idempotent() -> None:
    order = PostOrder()
    first, second = order.ticket(), order.ticket()
    order.done(first)  # failed before posting
    order.done(first)
    assert post_in_threads(order, [second], {}) == [second]


def test_the_wait_for_an_earlier_ticket_is_bounded() -> None:
    order = PostOrder(max_wait_s=0.2)
    stuck, later = order.ticket(), order.ticket()
    started = time.monotonic()
    assert post_in_threads(order, [later], {}) == [later]
    assert 0.15 <= time.monotonic() - started < 2.0
    order.done(stuck)
    assert order.waiting() == 0


def test_items_claimed_together_run_on_the_node_in_claim_order(
    comfy_url: str, orch_factory: Callable[..., Orchestrator],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first item's preparation is slow (a big upload, a long render): the second,
    claimed a moment later, still reaches the node after it and runs after it."""
    prepare = ItemExecution._prepare

    def slow_first(self: ItemExecution, client: object) -> None:
        if self.item.index == 0:
            time.sleep(1.0)
        prepare(self, client)  # type: ignore[arg-type]

    monkeypatch.setattr(ItemExecution, "_prepare", slow_first)
    orch = orch_factory([comfy_url])
    job = orch.submit("nap", {"seconds": 0.2}, count=2).wait(timeout=60)
    assert job.status == JobStatus.SUCCEEDED
    first, second = job.items
    assert first.started_at is not None and second.started_at is not None
    assert first.started_at < second.started_at
