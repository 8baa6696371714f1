"""The fleet's spare servers (``tests/conftest.py``): handed out once started, oldest first,
never waited for while still queued behind other starts, and every one started is
accounted for at the end. Stand-in servers, so only the bookkeeping is under test; the
real servers go through it in every test that asks ``comfy_factory`` for a node."""

from __future__ import annotations

import threading
from typing import Any, cast

from orchestrator.provision.server import LocalComfy
from tests.conftest import Spares


class StandIn:
    """Starts when told to (``release``), as a ComfyUI start waits on its imports."""

    def __init__(self, version: str, gate: threading.Event) -> None:
        self.version, self.gate = version, gate
        self.started = False
        self.die_with_parent: bool | None = None

    def start(self) -> StandIn:
        assert self.gate.wait(10)
        self.started = True
        return self


def spares_of(gate: threading.Event) -> tuple[Spares, list[StandIn]]:
    made: list[StandIn] = []

    def new(version: str) -> LocalComfy:
        made.append(StandIn(version, gate))
        return cast(LocalComfy, made[-1])

    return Spares(new), made


def test_a_spare_is_handed_out_started_and_the_oldest_first() -> None:
    gate = threading.Event()
    gate.set()
    spares, made = spares_of(gate)
    try:
        spares.make("0.30.0")
        assert len(made) == Spares.DEPTH
        first = spares.take("0.30.0")
        assert first is cast(Any, made[0]) and made[0].started
        assert made[0].die_with_parent is True  # tied to the starter thread, which lives on
        assert spares.waiting() == [cast(LocalComfy, made[1])]
        assert spares.take("0.16.3") is None  # none made for that version
    finally:
        spares.close()


def test_a_spare_still_queued_is_not_waited_for() -> None:
    gate = threading.Event()
    spares, made = spares_of(gate)
    try:
        spares.make("0.30.0")  # the first start runs (held at the gate), the second waits
        spares.make("0.16.3")
        assert spares.take("0.16.3") is None  # queued behind the others: start one yourself
        assert not made[2].started
    finally:
        gate.set()
        spares.close()
    # the end waits for the start in progress and starts nothing more
    assert made[0].started and not made[1].started and not made[2].started
    assert spares.waiting() == []
