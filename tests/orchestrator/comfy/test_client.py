"""The ComfyUI client against a real server: outputs, progress, failures, rejections."""

from __future__ import annotations

import io
import threading
import uuid

import pytest
from PIL import Image

from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.messages import Message, Progress
from orchestrator.comfy.protocol import PromptPhase
from orchestrator.errors import GraphRejected, JobCancelled, JobFailed, NodeUnreachable
from orchestrator.provision.releases import version_key
from tests import graphs
from tests.helpers import wait_until


@pytest.fixture()
def client(comfy_url: str) -> ComfyClient:
    return ComfyClient(comfy_url)


def png_of(client: ComfyClient, result_file: object) -> Image.Image:
    data = client.view(result_file)  # type: ignore[arg-type]
    return Image.open(io.BytesIO(data))


def test_model_free_graph_returns_png_of_requested_size_and_colour(client: ComfyClient) -> None:
    result = client.run(graphs.solid_image(72, 40, "#00ff00", seed=1))
    assert len(result.outputs) == 1
    image = png_of(client, result.outputs[0])
    assert image.format == "PNG" and image.size == (72, 40)
    assert image.convert("RGB").getpixel((10, 10)) == (0, 255, 0)


def test_our_prompt_id_is_honoured_and_history_is_written(client: ComfyClient) -> None:
    prompt_id = str(uuid.uuid4())  # the one spelling every ComfyUI release accepts
    result = client.run(graphs.solid_image(seed=2), prompt_id=prompt_id)
    assert result.prompt_id == prompt_id
    entry = client.history(prompt_id)
    assert entry is not None and entry.status == "success" and entry.outputs == result.outputs


@pytest.mark.every_comfyui
def test_tiny_checkpoint_txt2img_reports_sampler_progress(client: ComfyClient) -> None:
    seen: list[Message] = []
    result = client.run(graphs.txt2img(seed=int(uuid.uuid4().int % 10**9), steps=4),
                        on_message=seen.append, timeout=120)
    steps = [m for m in seen if isinstance(m, Progress) and m.node == "3"]
    assert [m.value for m in steps] == [1, 2, 3, 4] and all(m.max == 4 for m in steps)
    assert png_of(client, result.outputs[0]).size == (64, 64)


def test_failing_node_raises_job_failed_with_node_and_message(client: ComfyClient) -> None:
    with pytest.raises(JobFailed) as info:
        client.run(graphs.failing("the dog ate it", seed=3))
    err = info.value
    assert (err.node_id, err.class_type) == ("2", "OrchTestFail")
    assert err.exception_message == "the dog ate it"
    assert str(err) == "node 2 (OrchTestFail) failed: RuntimeError: the dog ate it"


def test_validation_400_becomes_per_input_messages(client: ComfyClient) -> None:
    graph = graphs.txt2img(steps=0)
    graph["3"]["inputs"]["cfg"] = 1000.0
    with pytest.raises(GraphRejected) as info:
        client.submit(graph)
    lines = {str(p) for p in info.value.problems}
    assert "node 3 (KSampler) input 'steps': value 0 smaller than min 1" in lines
    assert "node 3 (KSampler) input 'cfg': value 1000.0 bigger than max 100.0" in lines


def test_unknown_class_is_rejected_before_running(client: ComfyClient,
                                                  comfyui_version: str) -> None:
    graph = graphs.solid_image()
    graph["1"]["class_type"] = "NoSuchNode"
    # ComfyUI reworded this refusal in 0.16 (missing_node_type).
    text = ("Node 'NoSuchNode' not found" if version_key(comfyui_version) >= (0, 16)
            else "NoSuchNode does not exist")
    with pytest.raises(GraphRejected, match=text):
        client.submit(graph)


def test_targeted_interrupt_stops_only_that_prompt(client: ComfyClient) -> None:
    prompt_id = str(uuid.uuid4())
    started = threading.Event()

    def interrupt_when_running(msg: Message) -> None:
        if isinstance(msg, Progress) and not started.is_set():
            started.set()
            client.interrupt("some-other-prompt")  # a no-op: not the running one
            client.interrupt(prompt_id)

    with pytest.raises(JobCancelled):
        client.run(graphs.sleep(seconds=20, steps=40, seed=4), prompt_id=prompt_id,
                   on_message=interrupt_when_running, timeout=60)
    assert started.is_set()


def test_pending_prompt_can_be_deleted_from_the_queue(client: ComfyClient) -> None:
    blocker = client.submit(graphs.sleep(seconds=2, steps=4, seed=5))
    pending = client.submit(graphs.solid_image(seed=6))
    assert client.queue().holds(pending.prompt_id)
    client.delete_queued([pending.prompt_id])
    assert not client.queue().holds(pending.prompt_id)
    client.interrupt(blocker.prompt_id)


def test_upload_returns_the_name_comfyui_chose(client: ComfyClient) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    name = f"upload-{uuid.uuid4().hex}.png"
    assert client.upload_image(buf.getvalue(), name) == name
    other = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(other, "PNG")
    assert client.upload_image(other.getvalue(), name) != name  # clash → renamed


def test_unreachable_node_names_the_url() -> None:
    with pytest.raises(NodeUnreachable, match=r"no ComfyUI answered at http://127.0.0.1:9 "):
        ComfyClient("http://127.0.0.1:9").system_stats()


@pytest.mark.every_comfyui
def test_cancel_removes_a_pending_prompt_with_the_nodes_own_means(client: ComfyClient) -> None:
    """Job cancel where the node has it (0.26+), else a queue delete plus a targeted
    interrupt; either way the prompt never runs, and the cancel is remembered."""
    blocker = client.submit(graphs.sleep(seconds=3, steps=6, seed=uuid.uuid4().int % 10**9))
    pending = client.submit(graphs.solid_image(seed=uuid.uuid4().int % 10**9))
    assert client.queue().holds(pending.prompt_id)
    client.cancel(pending.prompt_id)
    assert not client.queue().holds(pending.prompt_id)
    assert client.was_cancelled(pending.prompt_id)
    assert not client.was_cancelled(blocker.prompt_id)
    client.cancel(blocker.prompt_id)
    wait_until(lambda: client.lookup(blocker.prompt_id).phase == PromptPhase.DONE, 30,
               "the running blocker interrupted")
    entry = client.lookup(blocker.prompt_id).entry
    assert entry is not None and entry.interrupted
    assert client.history(pending.prompt_id) is None  # it never ran
