"""The façade's use cases every face calls: access for a caller, admission, follow,
output deletion; against a real ComfyUI node."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel

from orchestrator.admission import Admission, QueueBound
from orchestrator.errors import (
    AccessDenied,
    GraphRejected,
    InputsNotShared,
    JobNotFound,
    QueueFull,
    WorkflowFormatError,
    WorkflowNotFound,
)
from orchestrator.events import Finished, OutputEvent, Snapshot
from orchestrator.jobs import JobStatus, Visibility
from orchestrator.service import Orchestrator
from orchestrator.store import tables as store_tables
from orchestrator.tokens import Principal
from tests import graphs
from tests.helpers import wait_until

ALICE = Principal(owner="alice", admin=False, token_id="a1")
BOB = Principal(owner="bob", admin=False, token_id="b1")
ADMIN = Principal(owner="ops", admin=True, token_id="o1")
LOAD_AND_SAVE = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "in"}},
}


@pytest.fixture()
def orch(tmp_path: Path, comfy_url: str) -> Iterator[Orchestrator]:
    with Orchestrator(data_dir=tmp_path / "data", nodes=[comfy_url]) as opened:
        wait_until(lambda: bool(opened.object_info()), 60, "the node's object_info")
        yield opened


@pytest.fixture()
def idle(tmp_path: Path, comfy_url: str) -> Iterator[Orchestrator]:
    """Not started: what is admitted stays queued, so the queue bound can be reached."""
    with Orchestrator(data_dir=tmp_path / "idle", nodes=[comfy_url], start=False) as opened:
        yield opened


def alices(graph: Mapping[str, Any] | None = None, **fields: object) -> Admission:
    return Admission.model_validate({"graph": graph or graphs.solid_image(16, 16),
                                     "owner": "alice", **fields})


def collect(orch: Orchestrator, job_id: str, after: int | None = None) -> list[BaseModel]:
    async def run() -> list[BaseModel]:
        return [e async for e in orch.follow(job_id, after) if e is not None]

    return asyncio.run(asyncio.wait_for(run(), 60))


def test_another_owners_job_reads_like_a_missing_one_and_an_admin_sees_it(
        orch: Orchestrator) -> None:
    job = orch.admit(alices()).wait(60)
    assert orch.job_for(ALICE, job.id).id == job.id
    assert orch.job_for(ADMIN, job.id).id == job.id
    with pytest.raises(JobNotFound, match="no prompt with id"):
        orch.job_for(BOB, job.id, what="prompt")
    with pytest.raises(JobNotFound):
        orch.cancel_for(BOB, job.id)
    with pytest.raises(JobNotFound):
        orch.retry_for(BOB, job.id)
    assert [j.id for j in orch.jobs_for(ALICE).jobs] == [job.id]
    assert orch.jobs_for(BOB).jobs == []
    assert [j.id for j in orch.jobs_for(ADMIN, owner="alice").jobs] == [job.id]
    with pytest.raises(AccessDenied):
        orch.jobs_for(BOB, owner="alice")


def test_an_admin_cancels_another_owners_job(orch: Orchestrator) -> None:
    handle = orch.admit(alices(graphs.sleep(5.0, steps=20)))
    wait_until(lambda: handle.get().status == JobStatus.RUNNING, 60, "the job to run")
    assert orch.cancel_for(ADMIN, handle.id).status in (JobStatus.CANCELING,
                                                        JobStatus.CANCELED)
    assert handle.wait(60).status == JobStatus.CANCELED


def test_a_public_output_is_read_by_all_and_deleted_by_its_owner_only(
        orch: Orchestrator) -> None:
    job = orch.admit(alices(visibility=Visibility.PUBLIC)).wait(60)
    (record,) = orch.outputs_of(job.id)
    assert orch.output_for(BOB, record.id).id == record.id
    assert [r.id for r in orch.outputs_for(BOB, owner="alice").outputs] == [record.id]
    with pytest.raises(JobNotFound, match="output"):
        orch.delete_output(BOB, record.id)
    orch.delete_output(ALICE, record.id)
    with pytest.raises(JobNotFound):
        orch.output_for(ALICE, record.id)


def test_a_private_output_is_hidden_from_others_and_deleted_by_an_admin(
        orch: Orchestrator) -> None:
    job = orch.admit(alices()).wait(60)
    (record,) = orch.outputs_of(job.id)
    with pytest.raises(JobNotFound):
        orch.output_for(BOB, record.id)
    assert orch.outputs_for(BOB, owner="alice").outputs == []
    orch.delete_output(ADMIN, record.id)
    assert orch.outputs_of(job.id) == []


def test_admission_refuses_a_malformed_graph_first_and_records_nothing(
        idle: Orchestrator) -> None:
    full = QueueBound(max_queued=0, max_per_owner=0)
    with pytest.raises(WorkflowFormatError, match="graph"):
        idle.admit(alices({"1": {"inputs": {}}}, bound=full))  # shape before the bound
    assert idle.list().jobs == []


def test_admission_refuses_what_the_node_would_refuse_and_records_nothing(
        orch: Orchestrator) -> None:
    graph = graphs.solid_image(16, 16)
    graph["1"]["inputs"]["width"] = -5
    with pytest.raises(GraphRejected, match="width"):
        orch.admit(alices(graph))
    assert orch.list().jobs == []


def test_input_files_named_in_a_graph_pass_the_preflight_and_run(orch: Orchestrator) -> None:
    with pytest.raises(GraphRejected, match="photo.png"):
        orch.admit(alices(LOAD_AND_SAVE))
    png = graphs_png()
    job = orch.admit(alices(LOAD_AND_SAVE, images={"photo.png": png})).wait(60)
    assert job.status == JobStatus.SUCCEEDED
    with orch._blobs.storing(png) as blob:
        sha = blob.sha256
        by_ref = orch.admit(alices(LOAD_AND_SAVE, inputs={"photo.png": sha}))
    assert by_ref.wait(60).status == JobStatus.SUCCEEDED


def graphs_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "#00ff00").save(out, format="PNG")
    return out.getvalue()


def test_the_queue_bound_holds_for_the_service_and_for_each_owner(
        idle: Orchestrator) -> None:
    bound = QueueBound(max_queued=3, max_per_owner=2)
    idle.admit(alices(count=2, bound=bound))
    with pytest.raises(QueueFull) as mine:
        idle.admit(alices(bound=bound))
    assert (mine.value.scope, mine.value.queued, mine.value.limit) == ("owner", 2, 2)
    idle.admit(Admission(graph=graphs.solid_image(16, 16), owner="bob", bound=bound))
    with pytest.raises(QueueFull) as service:
        idle.admit(Admission(graph=graphs.solid_image(16, 16), owner="carol", bound=bound))
    assert (service.value.scope, service.value.queued, service.value.limit) == (
        "service", 3, 3)
    assert len(idle.list().jobs) == 2


def test_follow_ends_after_the_terminal_event(orch: Orchestrator) -> None:
    handle = orch.admit(alices(graphs.sleep(0.3, steps=3)))
    events = collect(orch, handle.id)
    assert isinstance(events[0], Snapshot)
    assert isinstance(events[-1], Finished) and events[-1].status == "succeeded"


def test_follow_resumes_after_a_seen_event_and_ends_a_finished_job_with_a_snapshot(
        orch: Orchestrator) -> None:
    handle = orch.admit(alices())
    events = collect(orch, handle.id)
    seqs = [getattr(e, "seq", 0) for e in events]
    resumed = collect(orch, handle.id, after=seqs[1])
    assert [getattr(e, "seq", 0) for e in resumed] == [s for s in seqs[2:] if s > seqs[1]]
    (last,) = collect(orch, handle.id, after=seqs[-1])
    assert isinstance(last, Snapshot) and last.status == "succeeded"


def test_a_callers_resumed_stream_is_theirs_alone_wherever_it_resumes(
        orch: Orchestrator) -> None:
    """A stream resumed from a held event replays the bus without a snapshot; the caller's
    access is checked all the same, before any event is replayed."""
    handle = orch.admit(alices())
    seqs = [getattr(e, "seq", 0) for e in collect(orch, handle.id)]
    for after in (seqs[1], seqs[-1]):
        with pytest.raises(JobNotFound):
            orch.follow_for(BOB, handle.id, after)
    replay = orch.follow_for(ALICE, handle.id, seqs[1])
    snapshot = orch.follow_for(ADMIN, handle.id, seqs[-1])  # the end seen: a snapshot ends it
    try:
        assert replay.view is None  # no snapshot was read for a replay
        assert snapshot.view is not None and snapshot.view.job.id == handle.id
    finally:
        for following in (replay, snapshot):
            asyncio.run(following.aclose())


def test_follow_of_an_unknown_job_is_not_found(orch: Orchestrator) -> None:
    with pytest.raises(JobNotFound):
        collect(orch, "no-such-job")


def test_another_owners_output_shows_no_image_values_and_serves_the_stripped_copy(
        orch: Orchestrator) -> None:
    job = orch.admit(alices(visibility=Visibility.PUBLIC)).wait(60)
    (record,) = orch.outputs_of(job.id)
    mine = orch.output_file(ALICE, orch.output_for(ALICE, record.id))
    theirs = orch.output_file(BOB, orch.output_for(BOB, record.id))
    assert not mine.public and theirs.public and mine.path != theirs.path
    assert orch.output_thumbnail(record, 32).is_file()


def test_regenerating_another_owners_graph_output_is_refused_and_the_bound_holds(
        orch: Orchestrator) -> None:
    job = orch.admit(alices(graphs.txt2img(steps=1), visibility=Visibility.PUBLIC)).wait(60)
    (record,) = orch.outputs_of(job.id)
    with pytest.raises(InputsNotShared, match="own graph") as refused:
        orch.regenerate_for(BOB, record.id)
    assert refused.value.inputs == ["graph"]
    with pytest.raises(QueueFull):
        orch.regenerate_for(ALICE, record.id, bound=QueueBound(max_queued=0,
                                                               max_per_owner=0))
    again = orch.regenerate_for(ALICE, record.id, 7).wait(60)
    assert again.status == JobStatus.SUCCEEDED and again.spec.owner == "alice"


def test_workflows_are_put_checked_read_and_deleted_through_the_facade(
        tmp_path: Path, comfy_url: str) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    with Orchestrator(data_dir=tmp_path / "data", workflows_dir=folder, nodes=[comfy_url],
                      watch_workflows=False) as orch:
        wait_until(lambda: bool(orch.object_info()), 60, "the node's object_info")
        graph = graphs.solid_image(16, 16)
        graph["1"]["inputs"]["seed"] = "%seed%"
        text = json.dumps(graph)
        report = orch.check_workflow("solid", text, None)
        assert report.ok and report.pool_checked and report.pool_problems == []
        assert orch.put_workflow("solid", text, None) is True
        assert orch.put_workflow("solid", text, None) is False
        assert (folder / "solid.json").is_file()
        assert [w.name for w in orch.workflows(ALICE)] == ["solid"]
        assert orch.workflow(ALICE, "solid").graph == graph
        assert orch.admit(Admission(workflow="solid", owner="alice")).wait(60).status == (
            JobStatus.SUCCEEDED)
        orch.delete_workflow("solid")
        assert not (folder / "solid.json").exists()
        with pytest.raises(WorkflowNotFound):
            orch.workflow(ALICE, "solid")
        bad = orch.check_workflow("broken", "{not json", None)
        assert not bad.ok and "broken.json" in bad.problems[0].text
        assert orch.workflow_name_problem("x.meta") is not None


def test_a_job_costs_the_store_its_writes_and_one_read_of_the_job(
        orch: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single-item job's life on the store: queued, dispatched, rendered, running, and
    its output recorded with its success in one transaction; the subscriber's snapshot
    is the one read of the job. The output is announced before the job's end, and only
    once it is recorded."""
    orch.admit(alices())  # a first job warms the node and the pool
    wait_until(lambda: orch.list().jobs[0].status.terminal, 60, "the first job")
    store = orch._store
    opened, load_jobs = type(store)._tx, store_tables.load_jobs
    whats: list[str] = []
    loads: list[object] = []

    def counted(this: object, what: str, *, write: bool = True) -> object:
        whats.append(what.split(" ", 2)[0] + " " + what.split(" ", 2)[1])
        return opened(this, what, write=write)  # type: ignore[arg-type]

    def loaded(conn: object, job_ids: object) -> object:
        loads.append(job_ids)
        return load_jobs(conn, job_ids)  # type: ignore[arg-type]

    monkeypatch.setattr(type(store), "_tx", counted)
    monkeypatch.setattr(store_tables, "load_jobs", loaded)
    handle = orch.submit(graph=graphs.solid_image(16, 16), owner="alice")
    with handle.events() as sub:
        events = []
        while not isinstance(event := sub.get(timeout=60), Finished):
            events.append(event)
    life, life_loads = list(whats), len(loads)
    assert sorted(w for w in life if w != "reading item") == sorted([  # not the watchdog's
        "creating job", "reading job", "claiming an", "storing the", "marking item",
        "marking item"])
    assert life_loads == 2  # the claim's and the snapshot's
    outputs = [e for e in events if isinstance(e, OutputEvent)]
    assert len(outputs) == 1 and orch.output(outputs[0].output_id).job_id == handle.id
    assert orch.get(handle.id).items[0].output_ids == [outputs[0].output_id]
