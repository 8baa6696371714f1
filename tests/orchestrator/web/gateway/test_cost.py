"""What one prompt through the gateway costs the service: job loads and thread hops.

A ComfyUI client's whole job (``POST /prompt`` with its own prompt id to a free node, its
socket's messages to the end, ``GET /history/{id}``), counted on the store and on the
relay. The checks around a submit (is the id free, where did this client's last prompt
run, what did the node say) and the relay's start read no job: the bus has what they ask.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.store import tables as store_tables
from orchestrator.web.gateway import nodecheck
from tests import graphs
from tests.orchestrator.web.conftest import Service
from tests.orchestrator.web.gateway.conftest import ComfyApi, messages_until_end


def test_a_prompt_costs_three_job_loads_and_two_relay_hops(
        service: Service, alice: ComfyApi, client_id: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The job is loaded by the pool's claim, at the relay's end (its closing messages)
    and by ``/history``, nothing else; the relay hops to a worker thread only to count
    the queue when the prompt starts and to read the job at its end (the first
    ``status`` frame's count is taken on the posting request's own thread)."""
    ws = alice.socket(client_id)
    try:
        json.loads(ws.recv())  # the greeting status
        first = alice.prompt(graphs.solid_image(16, 16, seed=9100), client_id=client_id)
        messages_until_end(ws, first)  # a last prompt: cache affinity looks for its node
        alice.history(first)
        # A dispatch slowed by a busy machine must not add a look at the queue.
        monkeypatch.setattr(nodecheck, "QUEUED_CHECK_S", 60.0)
        loads: list[object] = []
        hops: list[str] = []
        load_jobs, to_thread = store_tables.load_jobs, asyncio.to_thread

        def loaded(conn: object, job_ids: object) -> object:
            loads.append(job_ids)
            return load_jobs(conn, job_ids)  # type: ignore[arg-type]

        def hopped(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            hops.append(getattr(func, "__name__", repr(func)))
            return to_thread(func, *args, **kwargs)

        monkeypatch.setattr(store_tables, "load_jobs", loaded)
        monkeypatch.setattr(asyncio, "to_thread", hopped)
        prompt_id = str(uuid.uuid4())
        response = alice.post("/prompt", data=json.dumps({
            "prompt": graphs.solid_image(16, 16, seed=9101), "client_id": client_id,
            "prompt_id": prompt_id}))
        assert response.status_code == 200, response.text
        frames = messages_until_end(ws, prompt_id)
        alice.history(prompt_id)
    finally:
        ws.close()
    assert any(isinstance(f, dict) and f["type"] == "execution_success" for f in frames)
    assert len(loads) == 3, loads
    assert sorted(hops) == ["_ending", "queue_remaining"]
    assert service.orch.get(prompt_id).items[0].node == service.orch.get(first).items[0].node
