"""ComfyUI's HTTP answers are read into typed values and actionable errors."""

import pytest

from orchestrator.comfy.protocol import (
    OutputFile,
    QueueState,
    UiValue,
    graph_rejection,
    outputs_from_ui,
    parse_history,
    parse_queue,
    parse_submit_response,
    prompt_body,
    values_from_ui,
)
from orchestrator.errors import GraphRejected, NodeProtocolError

MIN_ERROR = {
    "error": {"type": "prompt_outputs_failed_validation",
              "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
    "node_errors": {"3": {"class_type": "KSampler", "dependent_outputs": ["9"], "errors": [{
        "type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1",
        "details": "steps",
        "extra_info": {"input_name": "steps", "received_value": 0,
                       "input_config": ["INT", {"default": 20, "min": 1, "max": 10000}]},
    }]}},
}


def test_prompt_body_always_sends_client_id_and_our_prompt_id() -> None:
    body = prompt_body({"1": {}}, client_id="c", prompt_id="p")
    assert body == {"prompt": {"1": {}}, "client_id": "c", "prompt_id": "p"}


def test_a_400_becomes_per_input_problems() -> None:
    with pytest.raises(GraphRejected) as info:
        parse_submit_response(400, MIN_ERROR, url="http://n")
    problem = info.value.problems[0]
    assert (problem.node_id, problem.class_type, problem.input_name) == ("3", "KSampler", "steps")
    assert str(problem) == "node 3 (KSampler) input 'steps': value 0 smaller than min 1"
    assert info.value.code == "prompt_outputs_failed_validation"


def test_graph_level_400_keeps_details() -> None:
    body = {"error": {"type": "invalid_prompt",
                      "message": "Cannot execute because node Nope does not exist.",
                      "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}}
    err = graph_rejection(body)
    assert "Nope does not exist" in str(err) and "#1" in str(err) and not err.problems


def test_200_with_node_errors_is_still_a_rejection() -> None:
    body = {"prompt_id": "p", "number": 1, "node_errors": MIN_ERROR["node_errors"]}
    with pytest.raises(GraphRejected):
        parse_submit_response(200, body, url="http://n")


def test_non_comfy_answer_is_a_protocol_error() -> None:
    with pytest.raises(NodeProtocolError):
        parse_submit_response(502, "<html>bad gateway</html>", url="http://n")


def test_outputs_cover_images_gifs_video_and_audio() -> None:
    ui = {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]},
          "10": {"gifs": [{"filename": "b.mp4", "subfolder": "v", "type": "output"}]},
          "11": {"audio": [{"filename": "c.flac", "type": "output"}], "text": ["hi"]},
          "12": {"images": [{"filename": "d.webp", "type": "output"}], "animated": [True]}}
    files = outputs_from_ui(ui)
    assert [f.kind for f in files] == ["images", "gifs", "audio", "images"]
    assert files[1] == OutputFile("10", "b.mp4", "v", "output", "gifs", False)
    assert files[3].animated


def test_history_unknown_prompt_is_none_and_error_is_extracted() -> None:
    assert parse_history("p", {}, url="u") is None
    entry = parse_history("p", {"p": {"outputs": {}, "status": {
        "status_str": "error", "completed": False,
        "messages": [["execution_start", {}], ["execution_error", {"node_id": "2"}]]}}}, url="u")
    assert entry is not None and entry.error == {"node_id": "2"} and entry.status == "error"


def test_ui_values_are_every_non_file_key_in_the_nodes_order() -> None:
    image = {"filename": "a.png", "subfolder": "", "type": "output"}
    ui = {"9": {"images": [image], "animated": [False], "text": ["hi"], "score": [0.5]},
          "3": {"detail": [{"words": 2}], "model_file": [dict(image, filename="m.glb")]},
          "4": "not a ui dict"}
    assert values_from_ui(ui) == [UiValue("9", "text", ["hi"]), UiValue("9", "score", [0.5]),
                                  UiValue("3", "detail", [{"words": 2}])]
    entry = parse_history("p", {"p": {"outputs": ui, "status": {}}}, url="u")
    assert entry is not None and entry.values == tuple(values_from_ui(ui))


def test_queue_lists_running_and_pending_ids() -> None:
    body = {"queue_running": [[1, "a", {}, {}, []]], "queue_pending": [[2, "b", {}, {}, []]]}
    state = parse_queue(body, url="u")
    assert state == QueueState(("a",), ("b",)) and state.holds("b") and not state.holds("c")


def test_queue_read_first_decides_before_history() -> None:
    from orchestrator.comfy.protocol import HistoryEntry, PromptPhase, state_from_reads

    queue = QueueState(running=("r",), pending=("p",))
    entry = HistoryEntry("d", "success", True, ())
    assert state_from_reads("r", queue, None).phase == PromptPhase.RUNNING
    assert state_from_reads("p", queue, None).phase == PromptPhase.PENDING
    done = state_from_reads("d", queue, entry)
    assert done.phase == PromptPhase.DONE and done.entry is entry
    assert not state_from_reads("x", queue, None).known


def test_a_jobs_answer_reads_as_a_phase_and_a_finished_one_as_its_history() -> None:
    from orchestrator.comfy.protocol import PromptPhase, parse_job

    assert parse_job("a", 404, {"error": "Job not found"}, url="http://n").phase == \
        PromptPhase.ABSENT
    assert parse_job("a", 200, {"id": "a", "status": "in_progress"}, url="http://n").phase == \
        PromptPhase.RUNNING
    interrupted = parse_job("a", 200, {
        "id": "a", "status": "cancelled",
        "outputs": {"9": {"images": [{"filename": "x.png", "subfolder": "", "type": "output"}]}},
        "execution_status": {"status_str": "error", "completed": False, "messages": [
            ["execution_interrupted", {"prompt_id": "a", "node_id": "3"}]]}}, url="http://n")
    assert interrupted.phase == PromptPhase.DONE and interrupted.entry is not None
    assert interrupted.entry.interrupted and interrupted.entry.outputs[0].filename == "x.png"
    with pytest.raises(NodeProtocolError, match="/api/jobs/a answered 200"):
        parse_job("a", 200, {"status": "sleeping"}, url="http://n")


def test_comfyuis_invalid_prompt_id_becomes_prompt_id_rejected() -> None:
    from orchestrator.errors import PromptIdRejected

    body = {"error": {"type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID",
                      "details": "prompt_id must be a UUID string in canonical lowercase "
                                 "hyphenated form; omit it to let the server generate one",
                      "extra_info": {}}, "node_errors": {}}
    with pytest.raises(PromptIdRejected) as info:
        parse_submit_response(400, body, url="http://n", prompt_id="job-1")
    assert info.value.prompt_id == "job-1" and info.value.code == "invalid_prompt_id"
    assert str(info.value).startswith("prompt id 'job-1' refused by ComfyUI at http://n")
