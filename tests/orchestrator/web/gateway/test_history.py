"""Jobs as ComfyUI history entries and queue items (pure)."""

from __future__ import annotations

from orchestrator.jobs import Item, ItemStatus, Job, JobSpec
from orchestrator.outputs import OutputKind, OutputRecord
from orchestrator.web.gateway.history import (
    NUMBER_KEY,
    history_entry,
    parse_output_filename,
    queue_body,
    select_history,
    split_failure,
    ui_outputs,
)

GRAPH = {"1": {"class_type": "LoadImage", "inputs": {}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}


def _job(job_id: str, status: ItemStatus, number: int = 7) -> Job:
    return Job(id=job_id, spec=JobSpec(graph=GRAPH, metadata={NUMBER_KEY: str(number)}),
               items=[Item(id=f"{job_id}-i", job_id=job_id, index=0, status=status)])


def _record(kind: OutputKind = OutputKind.IMAGE, animated: bool = False) -> OutputRecord:
    return OutputRecord(id="ab" * 16, sha256="0" * 64, mime="image/png", size_bytes=1,
                        kind=kind, animated=animated, filename="ComfyUI_00001_.png",
                        node_id="2", node="n", job_id="p", item_id="i", index=0, owner="o")


def test_history_entry_has_comfyuis_shape() -> None:
    entry = history_entry(_job("p", ItemStatus.SUCCEEDED), [_record()], {"SaveImage"})

    assert entry["prompt"][:2] == [7, "p"] and entry["prompt"][4] == ["2"]
    assert entry["outputs"] == {"2": {"images": [
        {"filename": "ab" * 16 + ".png", "subfolder": "", "type": "output"}]}}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"]
    assert entry["meta"]["2"]["node_id"] == "2"


def test_a_failed_or_canceled_job_is_an_error_entry() -> None:
    failed = history_entry(_job("p", ItemStatus.FAILED), [], set())
    canceled = history_entry(_job("p", ItemStatus.CANCELED), [], set())

    assert failed["status"]["messages"][-1][0] == "execution_error"
    assert canceled["status"]["messages"][-1][0] == "execution_interrupted"
    assert failed["status"]["status_str"] == canceled["status"]["status_str"] == "error"


def test_video_outputs_are_marked_animated() -> None:
    assert ui_outputs([_record(OutputKind.VIDEO)])["2"]["animated"] == [True]
    assert "animated" not in ui_outputs([_record()])["2"]


def test_queue_splits_running_from_pending_by_number() -> None:
    jobs = [_job("b", ItemStatus.QUEUED, 9), _job("a", ItemStatus.DISPATCHED, 8),
            _job("r", ItemStatus.RUNNING, 1), _job("done", ItemStatus.SUCCEEDED)]

    body = queue_body(jobs, {"SaveImage"})

    assert [i[1] for i in body["queue_running"]] == ["r"]
    assert [i[1] for i in body["queue_pending"]] == ["a", "b"]


def test_select_history_pages_like_comfyui() -> None:
    entries = [(str(i), i) for i in range(5)]

    assert list(select_history(entries, None, None)) == ["0", "1", "2", "3", "4"]
    assert list(select_history(entries, 2, None)) == ["3", "4"]
    assert list(select_history(entries, 2, 1)) == ["1", "2"]
    assert list(select_history(entries, 10, None)) == list(dict(entries))


def test_output_names_and_failure_sentences() -> None:
    assert parse_output_filename("ab" * 16 + ".png") == ("ab" * 16, ".png")
    assert parse_output_filename("../ab.png") is None
    assert split_failure("node 2 (X) failed: RuntimeError: boom") == ("RuntimeError", "boom")
    assert split_failure("no node can run class Y") == ("", "no node can run class Y")
