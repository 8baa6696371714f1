"""Events reach every replica on one PostgreSQL (LISTEN/NOTIFY), against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.events import Finished, OutputEvent, PreviewEvent, ProgressEvent, Started
from orchestrator.relay import RelayedBus, decode, encode
from orchestrator.service import EVENT_IDS_PER_SECOND, Orchestrator

WAIT_S = 30.0


@pytest.fixture
def replicas(postgres_url: str) -> Iterator[tuple[RelayedBus, RelayedBus]]:
    a, b = RelayedBus(postgres_url, "a"), RelayedBus(postgres_url, "b")
    try:
        assert a.wait_listening(WAIT_S) and b.wait_listening(WAIT_S)
        yield a, b
    finally:
        a.close()
        b.close()


def test_an_event_published_on_one_replica_reaches_a_subscriber_on_the_other(
        replicas: tuple[RelayedBus, RelayedBus]) -> None:
    a, b = replicas
    with b.subscribe("j") as on_b, a.subscribe("j") as on_a:
        a.publish(Started(job_id="j", item=0, node="gpu"))
        a.publish(OutputEvent(job_id="j", item=0, output_id="o", node_id="9",
                              mime="image/png", filename="x.png"))
        a.publish(Finished(job_id="j", status="succeeded"))
        seen = [on_b.get(timeout=WAIT_S) for _ in range(3)]
        assert [type(event) for event in seen] == [Started, OutputEvent, Finished]
        assert [getattr(event, "seq", 0) for event in seen] == [1, 2, 3]  # b's numbering
        assert [type(on_a.get(timeout=WAIT_S)) for _ in range(3)] == [
            Started, OutputEvent, Finished]
        assert on_a.get(timeout=0.5) is None  # its own events come back once, not twice


def test_previews_and_own_or_foreign_payloads_are_not_relayed() -> None:
    preview = PreviewEvent(job_id="j", item=0, mime="image/png", image=b"x")
    assert encode("a", preview) is None
    progress = ProgressEvent(job_id="j", item=0, node="n", node_id="3", class_type="K",
                             value=1, max=2, item_fraction=0.5, fraction=0.5)
    payload = encode("a", progress)
    assert payload is not None
    assert decode("a", payload) is None
    assert decode("b", payload) == progress
    assert decode("b", "not json") is None and decode("b", '{"event": {}}') is None


def test_replicas_started_in_the_same_second_number_events_apart(
        postgres_url: str, tmp_path: Path) -> None:
    """Each replica numbers events from its own base, and a ``Last-Event-ID`` it never
    gave must not read as one of its own: bases of replicas on one database are a whole
    range apart even when they start together (as an orchestrator restarts them)."""
    replicas = [Orchestrator(data_dir=tmp_path / name, db=postgres_url, start=False)
                for name in ("a", "b", "c")]
    try:
        bases = sorted(orch.replay_after() for orch in replicas)
    finally:
        for orch in replicas:
            orch.close()
    assert all(later - earlier >= EVENT_IDS_PER_SECOND
               for earlier, later in zip(bases, bases[1:], strict=False))
