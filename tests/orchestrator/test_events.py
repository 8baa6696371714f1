"""The event bus: numbering, resume, late subscribers and stale ids from a restart."""

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
