"""Runner threads are kept per node: an idle one takes the next item, extra ones end after
a while, names say what each runs, and closing ends the waiting ones."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from orchestrator.jobs import JobStatus
from orchestrator.runner_threads import RunnerThreads
from orchestrator.service import Orchestrator
from tests.helpers import wait_until
from tests.orchestrator.test_pool import orch_factory, workflows  # noqa: F401 - fixtures


def test_items_one_after_another_run_on_one_thread_named_after_each() -> None:
    runners = RunnerThreads("gpu0", idle=5)
    seen: list[tuple[int, str]] = []
    for n in range(5):
        done = threading.Event()

        def task(done: threading.Event = done) -> None:
            thread = threading.current_thread()
            seen.append((thread.ident or 0, thread.name))
            done.set()

        runners.run(task, name=f"item-{n}")
        assert done.wait(5)
        wait_until(lambda: runners.waiting() == 1, 5, "the thread waits for the next item")
    assert runners.started == 1
    assert len({ident for ident, _ in seen}) == 1
    assert [name for _, name in seen] == [f"item-{n}" for n in range(5)]
    idle = [t for t in threading.enumerate() if t.name == "runner-gpu0"]
    assert len(idle) == 1
    runners.close()
    idle[0].join(5)
    assert not idle[0].is_alive()


def test_items_at_once_get_threads_of_their_own_and_the_extra_ones_end() -> None:
    runners = RunnerThreads("gpu1", idle=0.3)
    release = threading.Event()
    running = threading.Semaphore(0)

    def task() -> None:
        running.release()
        release.wait(5)

    for n in range(3):
        runners.run(task, name=f"item-{n}")
    for _ in range(3):
        assert running.acquire(timeout=5)
    assert runners.started == 3
    release.set()
    wait_until(lambda: runners.waiting() == 3, 5, "all three wait for more")
    wait_until(lambda: runners.waiting() == 0, 5, "idle threads end after their wait")
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "runner-gpu1"], 5,
               "the ended threads are gone")


def test_a_task_that_raises_is_reported_and_its_thread_serves_the_next(
        monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_value))
    runners = RunnerThreads("gpu2", idle=5)
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    runners.run(boom, name="item-a")
    wait_until(lambda: runners.waiting() == 1, 5, "the thread survives the error")
    runners.run(done.set, name="item-b")
    assert done.wait(5)
    assert runners.started == 1
    assert len(reported) == 1 and str(reported[0]) == "boom"
    runners.close()


def test_a_closed_set_still_runs_what_it_is_given_then_ends_the_thread() -> None:
    runners = RunnerThreads("gpu3", idle=5)
    runners.close()
    done = threading.Event()
    runners.run(done.set, name="item-late")
    assert done.wait(5)
    wait_until(lambda: not [t for t in threading.enumerate()
                            if t.name in ("item-late", "runner-gpu3")], 5, "the thread ends")


def test_a_node_runs_a_jobs_items_on_a_kept_thread(
        comfy_url: str, orch_factory: Callable[..., Orchestrator]) -> None:  # noqa: F811
    orch = orch_factory([comfy_url])
    worker = next(iter(orch._pool.workers.values()))
    for _ in range(4):
        job = orch.submit("seeded").wait(timeout=60)
        assert job.status == JobStatus.SUCCEEDED
        # The job ends just before its item's thread is free again.
        wait_until(lambda: worker.runners.waiting() == 1, 5, "the thread waits for more")
    assert worker.runners.started == 1  # four items one after another: one thread
    orch.close()
    wait_until(lambda: worker.runners.waiting() == 0, 5, "closing ends the waiting thread")
