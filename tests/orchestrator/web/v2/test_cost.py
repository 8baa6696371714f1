"""What following a job through v2's event stream costs: the job is read once, when the
stream opens (the access check, the snapshot and the first frames share that read); its
success is told from its event alone; an output's record is read on a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from comfy_sdk import Comfy, OutputReady, StatusChange

from tests.orchestrator.web.v2 import graphs
from tests.orchestrator.web.v2.conftest import V2Service


def test_a_followed_job_is_read_once_and_hops_to_a_thread_for_its_output_only(
        sdk: Comfy, v2: V2Service, monkeypatch: pytest.MonkeyPatch) -> None:
    job = sdk.submit(sdk.workflows.from_json(graphs.nap(0.6, 6)))
    store: Any = v2.orch._store
    reads: list[str] = []
    for name in ("get_job", "job_view"):
        real = getattr(store, name)

        def counting(job_id: str, *args: Any, _name: str = name, _real: Any = real,
                     **kwargs: Any) -> Any:
            if job_id == job.id:
                reads.append(_name)
            return _real(job_id, *args, **kwargs)

        monkeypatch.setattr(store, name, counting)
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def hopped(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", hopped)

    seen = list(job.events())

    assert isinstance(seen[-1], StatusChange) and seen[-1].status == "succeeded"
    assert len([e for e in seen if isinstance(e, OutputReady)]) == 1
    assert reads == ["job_view"]
    assert hops.count("frames") == 1  # the output event's record; the end needs none
