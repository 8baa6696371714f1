"""What following a job through v2's event stream costs the store: the job is read when
the stream opens (the access check, the snapshot and the first frames share that read)
and once at its end (the job with its outputs' ids), and never loaded again."""

from __future__ import annotations

from typing import Any

import pytest
from comfy_sdk import Comfy, OutputReady, StatusChange

from tests.orchestrator.web.v2 import graphs
from tests.orchestrator.web.v2.conftest import V2Service


def test_a_followed_job_is_read_when_its_stream_opens_and_at_its_end(
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

    seen = list(job.events())

    assert isinstance(seen[-1], StatusChange) and seen[-1].status == "succeeded"
    assert len([e for e in seen if isinstance(e, OutputReady)]) == 1
    assert reads == ["job_view", "job_view"]
