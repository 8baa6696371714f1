"""The event bus: numbering, resume, late subscribers and stale ids from a restart."""

import asyncio
import threading
import time

from orchestrator.events import EventBus, Finished, Queued, Snapshot


def snapshot(job_id: str) -> Snapshot:
    return Snapshot(job_id=job_id, status="running", progress=0.5, items=[])


def test_events_are_numbered_per_job_above_the_base() -> None:
    bus = EventBus(seq_base=1000)
    assert bus.publish(Queued(job_id="a", count=1)).seq == 1001
    assert bus.publish(Queued(job_id="b", count=1)).seq == 1001
    assert bus.publish(Finished(job_id="a", status="succeeded")).seq == 1002


def test_resume_replays_only_newer_events() -> None:
    bus = EventBus(seq_base=10)
    for _ in range(3):
        bus.publish(Queued(job_id="a", count=1))
    with bus.subscribe("a", after=12) as sub:
        event = sub.get(timeout=1)
        assert event is not None and event.seq == 13
        assert sub.get(timeout=0.01) is None


def test_late_subscriber_gets_a_snapshot_first() -> None:
    bus = EventBus()
    bus.publish(Queued(job_id="a", count=1))
    with bus.subscribe("a", snapshot=lambda: snapshot("a")) as sub:
        first = sub.get(timeout=1)
    assert isinstance(first, Snapshot) and first.seq == 1


def test_an_id_from_an_earlier_process_gets_a_snapshot_not_a_replay() -> None:
    bus = EventBus(seq_base=5_000)
    bus.publish(Queued(job_id="a", count=1))
    with bus.subscribe("a", after=42, snapshot=lambda: snapshot("a")) as sub:
        first = sub.get(timeout=1)
    assert isinstance(first, Snapshot)


def test_iteration_ends_after_the_finished_event() -> None:
    bus = EventBus()
    sub = bus.subscribe("a")
    bus.publish(Queued(job_id="a", count=1))
    bus.publish(Finished(job_id="a", status="succeeded"))
    assert [e.type for e in sub] == ["queued", "finished"]  # type: ignore[attr-defined]


def test_aget_wakes_on_an_event_published_by_another_thread() -> None:
    bus = EventBus()

    async def wait() -> object:
        with bus.subscribe("a") as sub:
            threading.Timer(0.05, bus.publish, [Queued(job_id="a", count=1)]).start()
            return await sub.aget(timeout=5)

    started = time.monotonic()
    event = asyncio.run(wait())
    assert isinstance(event, Queued) and time.monotonic() - started < 2


def test_aget_gives_events_already_queued_without_waiting() -> None:
    bus = EventBus()

    async def drain() -> list[object]:
        with bus.subscribe("a") as sub:
            bus.publish(Queued(job_id="a", count=1))
            bus.publish(Finished(job_id="a", status="succeeded"))
            return [await sub.aget(timeout=0), await sub.aget(timeout=0)]

    assert [type(e) for e in asyncio.run(drain())] == [Queued, Finished]


def test_aget_times_out_with_none_and_close_wakes_a_waiter() -> None:
    bus = EventBus()

    async def wait() -> tuple[object, object, bool]:
        sub = bus.subscribe("a")
        quiet = await sub.aget(timeout=0.01)
        threading.Timer(0.05, sub.close).start()
        after_close = await sub.aget(timeout=5)
        return quiet, after_close, sub.closed

    started = time.monotonic()
    assert asyncio.run(wait()) == (None, None, True)
    assert time.monotonic() - started < 2  # woken by the close, not by the 5 s timeout


def test_aget_takes_every_event_of_a_publishing_thread_in_order() -> None:
    bus = EventBus()

    async def drain() -> list[int]:
        with bus.subscribe("a") as sub:
            def publish() -> None:
                for count in range(200):
                    bus.publish(Queued(job_id="a", count=count))
            threading.Thread(target=publish).start()
            seen: list[int] = []
            while len(seen) < 200:
                event = await sub.aget(timeout=5)
                assert isinstance(event, Queued)
                seen.append(event.count)
            return seen

    assert asyncio.run(drain()) == list(range(200))


def test_a_canceled_aget_leaves_the_subscription_usable() -> None:
    bus = EventBus()

    async def cancel_then_read() -> object:
        with bus.subscribe("a") as sub:
            waiting = asyncio.ensure_future(sub.aget(timeout=5))
            await asyncio.sleep(0.01)
            waiting.cancel()  # a client that went away mid-wait
            await asyncio.gather(waiting, return_exceptions=True)
            bus.publish(Queued(job_id="a", count=1))  # no waiter left to wake
            return await sub.aget(timeout=5)

    assert isinstance(asyncio.run(cancel_then_read()), Queued)
