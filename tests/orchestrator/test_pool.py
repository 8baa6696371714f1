"""The pool against real ComfyUI nodes: spread, seeds, failover, restarts, capabilities, cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.errors import SubstitutionError
from orchestrator.events import ProgressEvent
from orchestrator.jobs import ItemStatus, JobStatus
from orchestrator.provision.server import LocalComfy
from orchestrator.service import Orchestrator
from tests import graphs
from tests.conftest import ComfyFactory
from tests.helpers import wait_until

SEEDED_SOLID = {
    "1": {"class_type": "OrchTestSolidImage",
          "inputs": {"width": 16, "height": 16, "color": "#336699", "batch_size": 1,
                     "seed": "%seed%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "seeded"}},
}
SEEDED_SLEEP = {
    "1": {"class_type": "OrchTestSleep",
          "inputs": {"seconds": "%seconds%", "steps": 4, "seed": "%seed%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "nap"}},
}
SLEEP_META = {"title": "Nap", "placeholders": {"seconds": {"type": "float", "default": 0.2}}}


@pytest.fixture()
def workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "seeded.json").write_text(json.dumps(SEEDED_SOLID))
    (folder / "nap.json").write_text(json.dumps(SEEDED_SLEEP))
    (folder / "nap.meta.json").write_text(json.dumps(SLEEP_META))
    return folder


@pytest.fixture(scope="module")
def extra_nodes(comfy_factory: ComfyFactory) -> list[LocalComfy]:
    """Two more real ComfyUI nodes with the test pack (the version's spares, when ready)."""
    return [comfy_factory(), comfy_factory()]


@pytest.fixture()
def orch_factory(tmp_path: Path, workflows: Path) -> Iterator[Callable[..., Orchestrator]]:
    opened: list[Orchestrator] = []

    def make(nodes: list[str], **kwargs: object) -> Orchestrator:
        orch = Orchestrator(data_dir=tmp_path / "data", workflows_dir=workflows, nodes=nodes,
                            **kwargs)  # type: ignore[arg-type]
        opened.append(orch)
        return orch

    yield make
    for orch in opened:
        orch.close()


def test_eight_images_over_three_nodes_get_distinct_seeds_and_outputs(
    comfy_url: str, extra_nodes: list[LocalComfy], orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url, *(s.url for s in extra_nodes)])
    job = orch.submit("nap", {"seconds": 0.3}, count=8).wait(timeout=120)
    assert job.status == JobStatus.SUCCEEDED
    seeds = [item.seed for item in job.items]
    assert len(set(seeds)) == 8 and all(s is not None for s in seeds)
    assert len({item.node for item in job.items}) == 3  # every node got work
    outputs = orch.outputs_of(job.id)
    assert len(outputs) == 8 and {o.seed for o in outputs} == set(seeds)


def test_fixed_seed_counts_up_per_image(comfy_url: str, orch_factory: Callable[..., Orchestrator]
                                        ) -> None:
    orch = orch_factory([comfy_url])
    job = orch.submit("seeded", {"seed": 1000}, count=3).wait(timeout=60)
    assert sorted(i.seed for i in job.items) == [1000, 1001, 1002]


def test_bad_values_are_refused_before_anything_is_recorded(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url])
    with pytest.raises(SubstitutionError, match="seconds"):
        orch.submit("nap", {"seconds": "soon"})
    assert orch.list().jobs == []


def test_node_without_test_pack_never_gets_items_needing_it(
    comfy_url: str, comfy_factory: ComfyFactory, orch_factory: Callable[..., Orchestrator]
) -> None:
    bare = comfy_factory(custom_nodes=())
    orch = orch_factory([bare.url, comfy_url])
    job = orch.submit("seeded", count=4).wait(timeout=60)
    assert job.status == JobStatus.SUCCEEDED
    assert {item.node for item in job.items} == {comfy_url.split("//")[1]}
    # a class no node has fails at once, naming it
    failed = orch.submit(graph={"1": {"class_type": "NoSuchNodeAnywhere", "inputs": {}}}).wait(5)
    assert failed.status == JobStatus.FAILED
    assert failed.items[0].error is not None
    assert failed.items[0].error.message == "no node can run class NoSuchNodeAnywhere"
    bare.stop()


def test_graph_error_fails_the_item_with_node_and_message_without_retry(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url])
    job = orch.submit(graph=graphs.failing("no paint left", seed=41)).wait(timeout=60)
    item = job.items[0]
    assert job.status == JobStatus.FAILED and len(item.attempts) == 1
    assert item.error is not None and item.error.node_id == "2"
    assert item.error.class_type == "OrchTestFail" and "no paint left" in item.error.message
    assert (item.error.exception_type, item.error.exception_message) == (
        "RuntimeError", "no paint left")


@pytest.mark.every_comfyui
def test_cancel_of_running_item_interrupts_only_that_prompt(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url])
    slow = orch.submit("nap", {"seconds": 30})
    other = orch.submit("nap", {"seconds": 0.3})
    wait_until(lambda: slow.get().items[0].status == ItemStatus.RUNNING, 30, "slow item running")
    started = time.monotonic()
    assert orch.cancel(slow.id).status in (JobStatus.CANCELING, JobStatus.CANCELED)
    assert slow.wait(timeout=30).status == JobStatus.CANCELED
    assert time.monotonic() - started < 10  # interrupted, not waited out
    assert other.wait(timeout=60).status == JobStatus.SUCCEEDED


def test_cancel_of_queued_job_never_dispatches(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url])
    blockers = [orch.submit("nap", {"seconds": 1.0}) for _ in range(3)]
    queued = orch.submit("seeded", priority=-5)
    job = orch.cancel(queued.id)
    assert job.status == JobStatus.CANCELED and job.items[0].attempts == []
    for b in blockers:
        assert b.wait(timeout=60).status == JobStatus.SUCCEEDED


@pytest.mark.every_comfyui
def test_events_arrive_in_order_and_late_subscriber_gets_state_first(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url])
    handle = orch.submit("nap", {"seconds": 0.4}, count=2)
    with handle.events() as sub:
        events = list(sub)
    kinds = [event.type for event in events]  # type: ignore[attr-defined]
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert all(e.nodes_total == 2 for e in progress)  # from the graph, not nodes seen
    assert [e.fraction for e in progress] == sorted(e.fraction for e in progress)
    assert kinds[0] in ("snapshot", "queued") and kinds[-1] == "finished"
    assert kinds.count("output") == 2 and "progress" in kinds and "started" in kinds
    with handle.events() as late:
        first = late.get(timeout=5)
    assert first is not None and first.type == "snapshot"  # type: ignore[attr-defined]
    assert first.status == "succeeded" and len(first.outputs) == 2  # type: ignore[attr-defined]


def test_regenerate_reuses_values_with_new_or_same_seed(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url])
    first = orch.submit("seeded", {"seed": 77}).wait(timeout=60)
    output_id = first.items[0].output_ids[0]
    same = orch.regenerate(output_id, seed=77).wait(timeout=60)
    fresh = orch.regenerate(output_id).wait(timeout=60)
    assert same.items[0].seed == 77 and fresh.items[0].seed != 77
    assert orch.output(same.items[0].output_ids[0]).sha256 == orch.output(output_id).sha256


def test_raw_graph_naming_an_uploaded_image_gets_it_staged_on_the_node(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 12), (200, 10, 30)).save(buf, "PNG")
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "my photo.png"}},
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                          "filename_prefix": "staged"}}}
    orch = orch_factory([comfy_url])
    job = orch.submit(graph=graph, images={"my photo.png": buf.getvalue()}).wait(timeout=60)
    assert job.status == JobStatus.SUCCEEDED, job.items[0].error
    with Image.open(io.BytesIO(orch.output_bytes(job.items[0].output_ids[0]))) as image:
        assert image.size == (24, 12)
        pixel = image.convert("RGB").getpixel((0, 0))
        assert all(abs(a - b) <= 1 for a, b in zip(pixel, (55, 245, 225), strict=True))


def _png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (10, 6), color).save(buf, "PNG")
    return buf.getvalue()


def test_regenerate_passes_its_image_by_reference_never_reading_or_hashing_it_again(
    comfy_url: str, workflows: Path, orch_factory: Callable[..., Orchestrator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hashlib

    photo = {"1": {"class_type": "LoadImage", "inputs": {"image": "%photo%"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "photo"}}}
    (workflows / "photo.json").write_text(json.dumps(photo))
    (workflows / "photo.meta.json").write_text(
        json.dumps({"placeholders": {"photo": {"type": "image"}}}))
    data = _png((10, 200, 30))
    orch = orch_factory([comfy_url])
    first = orch.submit("photo", images={"photo": data}).wait(timeout=60)
    assert first.status == JobStatus.SUCCEEDED, first.items[0].error
    hashed: list[int] = []
    sha256 = hashlib.sha256

    def counting(value: bytes = b"", **kwargs: bool) -> hashlib._Hash:
        if bytes(value) == data:
            hashed.append(1)
        return sha256(value, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", counting)
    again = orch.regenerate(first.items[0].output_ids[0]).wait(timeout=60)

    assert again.status == JobStatus.SUCCEEDED, again.items[0].error
    assert again.spec.images == first.spec.images  # the same blob, by its sha256
    assert hashed == []  # neither at submit nor for the upload's name at dispatch


def test_an_image_passed_by_a_reference_to_no_stored_blob_records_nothing(
    orch_factory: Callable[..., Orchestrator],
) -> None:
    from orchestrator.errors import NotFound
    from orchestrator.service import StoredImage

    orch = orch_factory([])
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "gone.png"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    with pytest.raises(NotFound, match="gone.png"):
        orch.submit(graph=graph, images={"gone.png": StoredImage("0" * 64)})
    assert orch.list().jobs == []


def test_preflight_names_node_and_input_against_the_pools_object_info(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    from orchestrator.errors import GraphRejected

    orch = orch_factory([comfy_url])
    graph = graphs.txt2img(steps=0)
    with pytest.raises(GraphRejected) as info:
        orch.preflight(graph)
    assert any(p.node_id == "3" and p.input_name == "steps" for p in info.value.problems)
    assert "OrchTestSleep" in orch.object_info()
    assert orch.object_info() is orch.object_info()  # merged once, until nodes change


def test_sampler_previews_arrive_as_decoded_images(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    import io

    from PIL import Image

    from orchestrator.events import PreviewEvent

    orch = orch_factory([comfy_url])
    handle = orch.submit(graph=graphs.txt2img(seed=int(time.time()) % 100_000, steps=4))
    with handle.events() as sub:
        previews = [e for e in sub if isinstance(e, PreviewEvent)]
    assert handle.wait(timeout=5).status == JobStatus.SUCCEEDED
    assert previews, "ComfyUI runs with --preview-method auto: KSampler steps send previews"
    with Image.open(io.BytesIO(previews[-1].image)) as image:
        assert image.width > 0 and previews[-1].mime.startswith("image/")


def test_stuck_node_is_treated_as_failed_and_the_item_moves(
    extra_nodes: list[LocalComfy], orch_factory: Callable[..., Orchestrator]
) -> None:
    import os
    import signal

    stuck, healthy = extra_nodes
    orch = orch_factory([stuck.url], idle_timeout=3.0)
    handle = orch.submit("nap", {"seconds": 4.0})
    wait_until(lambda: handle.get().items[0].status == ItemStatus.RUNNING, 60, "running")
    assert stuck.pid is not None
    os.kill(stuck.pid, signal.SIGSTOP)  # alive but silent: the way a wedged GPU box looks
    try:
        orch.add_node(healthy.url)
        job = handle.wait(timeout=90)
    finally:
        os.kill(stuck.pid, signal.SIGCONT)
    item = job.items[0]
    assert job.status == JobStatus.SUCCEEDED and item.node == f"{healthy.host}:{healthy.port}"
    assert item.attempts[0].error is not None and "no event" in item.attempts[0].error


def test_async_events_end_with_the_terminal_event(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    import asyncio

    orch = orch_factory([comfy_url])
    handle = orch.submit("nap", {"seconds": 1.0})  # still running when the stream opens

    async def collect() -> list[str]:
        return [event.type async for event in orch.aevents(handle.id)]  # type: ignore[attr-defined]

    kinds = asyncio.run(collect())
    assert kinds[0] == "snapshot" and "output" in kinds and kinds[-1] == "finished"


def test_malformed_raw_graph_and_bad_values_store_nothing(
    comfy_url: str, orch_factory: Callable[..., Orchestrator], tmp_path: Path
) -> None:
    from orchestrator.errors import WorkflowFormatError

    orch = orch_factory([comfy_url])
    with pytest.raises(WorkflowFormatError, match='node 1 has no "class_type"'):
        orch.submit(graph={"1": {"inputs": {}}})
    with pytest.raises(SubstitutionError):
        orch.submit("nap", {"seconds": "soon"}, images={"unused": b"\x89PNG not stored"})
    blobs = tmp_path / "data" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    assert orch.list().jobs == [] and orch.queued_count() == 0


@pytest.mark.every_comfyui
def test_gallery_and_progress_through_the_public_api(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    orch = orch_factory([comfy_url])
    public = orch.submit("seeded", character="ada", visibility="public").wait(timeout=60)
    orch.submit("seeded", character="ada", conversation="c1", owner="bob").wait(timeout=60)
    assert [o.job_id for o in orch.gallery(character="ada").outputs] == [public.id]
    assert len(orch.gallery(conversation="c1", owner="bob").outputs) == 1
    assert orch.gallery(conversation="c1", owner="eve").outputs == []
    assert orch.progress(public.id) == 1.0


def test_extra_data_reaches_comfyui_with_every_prompt(
    comfy_url: str, orch_factory: Callable[..., Orchestrator]
) -> None:
    """ComfyUI's SaveImage writes extra_data's extra_pnginfo into the PNG it saves."""
    import io

    from PIL import Image

    orch = orch_factory([comfy_url])
    job = orch.submit(graph=graphs.solid_image(8, 8, seed=int(time.time())),
                      extra_data={"extra_pnginfo": {"note": "from the pool"}}).wait(60)
    data = orch.output_bytes(job.items[0].output_ids[0])
    with Image.open(io.BytesIO(data)) as image:
        assert json.loads(image.info["note"]) == "from the pool"
