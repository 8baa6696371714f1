"""What a newcomer meets first in the panel: the picker opens on a workflow the pool can
run, unrunnable ones are marked with the reason and the pack's URL (and cannot be
submitted), the test pool's note and quick defaults, and the panel's small honesty
fixes (drained pool, model count, seeds, clickable thumbnails, upload limit)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME
from tests.ui.conftest import (
    JOB_TIMEOUT_S,
    SOLID,
    PanelFactory,
    Service,
    run_until,
    serving,
    texts,
)
from ui import pool, state, widgets

SHIPPED = Path(__file__).resolve().parents[2] / "workflows"
PACK_URL = "https://github.com/example/comfyui-blocked-pack"
BLOCKED = {"1": {"class_type": "BlockedPackNode", "inputs": {"seed": "%seed%"}},
           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                        "filename_prefix": "blocked"}}}
BLOCKED_META = {"title": "A blocked one", "kind": "txt2img",
                "node_packs": {"BlockedPackNode": f"blocked-pack ({PACK_URL})"}}


@pytest.fixture
def blocked(service: Service) -> Iterator[str]:
    """A workflow whose node pack the pool lacks, named to sort first ("Aaa" before
    "avatar" and "solid", as "Default_Comfy_Workflow" sorts before "txt2img")."""
    name = "Aaa_blocked"
    service.put_workflow(name, BLOCKED, BLOCKED_META)
    yield name
    service.delete_workflow(name)


def test_generate_opens_on_a_workflow_the_pool_can_run(panel: PanelFactory,
                                                       blocked: str) -> None:
    at = panel()
    picker = at.selectbox(key="gen:workflow")
    assert picker.options[0].startswith("⛔ A blocked one")  # listed, and marked
    assert picker.value != blocked and not at.error


def test_an_unrunnable_workflow_says_why_with_the_packs_url_and_cannot_be_submitted(
        panel: PanelFactory, blocked: str) -> None:
    at = panel()
    at.selectbox(key="gen:workflow").set_value(blocked).run()
    reason = "\n".join(e.value for e in at.error)
    assert f"The pool cannot run {blocked}" in reason and PACK_URL in reason
    assert "BlockedPackNode" in reason
    assert at.button(key=f"gen:{blocked}:submit").disabled


def test_the_workflows_list_marks_an_unrunnable_workflow_with_its_reason(
        panel: PanelFactory, blocked: str) -> None:
    at = panel()
    at.switch_page("views/workflows.py").run()
    shown = texts(at)
    assert f"⛔ **A blocked one** `{blocked}`" in shown
    assert f"{blocked}: the pool cannot run it" in shown and PACK_URL in shown
    assert "✅ **Solid colour** `solid`" in shown


def test_the_test_pool_starts_sampler_workflows_small_and_says_why(
        panel: PanelFactory, service: Service) -> None:
    """The pool's only checkpoint is the test one: txt2img starts at 128 px and 4 steps,
    with the note that its images are noise and how to add GPU boxes."""
    graph, meta = (json.loads((SHIPPED / f"txt2img{suffix}").read_text())
                   for suffix in (".json", ".meta.json"))
    service.put_workflow("txt2img", graph, meta)
    try:
        at = panel()
        assert at.selectbox(key="gen:workflow").value == "txt2img"  # the preferred one
        assert at.radio(key="gen:txt2img:size_mode").value == "Exact size"
        assert at.number_input(key="gen:txt2img:width").value == pool.QUICK_SIDE
        assert at.number_input(key="gen:txt2img:steps").value == pool.QUICK_STEPS
        assert at.selectbox(key="gen:txt2img:model").value == TINY_CHECKPOINT_NAME
        note = "\n".join(i.value for i in at.info)
        assert "noise, by design" in note and "--node" in note
        at.button(key="gen:txt2img:submit").click().run()
        run_until(at, lambda a: "✅ succeeded" in texts(a), JOB_TIMEOUT_S, "the image")
        job = service.client().job(at.session_state[state.SUBMITTED][0])
        assert (job.values["width"], job.values["steps"]) == (128, 4)
        # the solid colour has no sampler: its own defaults stay
        at.selectbox(key="gen:workflow").set_value("solid").run()
        assert at.radio(key="gen:solid:size_mode").value == "Aspect ratio"
    finally:
        service.delete_workflow("txt2img")


def test_a_job_waiting_on_a_drained_pool_says_why_and_nodes_do_not_claim_all_up(
        panel: PanelFactory, service: Service) -> None:
    node = service.client().nodes().nodes[0].name
    service.client().drain_node(node, True)
    try:
        job = service.client().submit({"workflow": "solid", "values": {}}, {})
        at = panel()
        at.session_state[state.SUBMITTED] = [job.id]
        at.run()
        assert any("no node takes work now" in w.value for w in at.warning)
        assert any("1/1 nodes up, 1 draining" in s.value for s in at.success)  # the sidebar
        at.switch_page("views/nodes.py").run()
        assert at.metric[0].value == "0/1"
        assert any("every node is draining or down" in w.value for w in at.warning)
        assert f"🟡 **{node}**" in texts(at)
    finally:
        service.client().drain_node(node, False)
    run_until(at, lambda a: service.client().job(job.id).terminal, JOB_TIMEOUT_S,
              "the job to run once the node is back")


def test_models_count_each_file_once(panel: PanelFactory) -> None:
    at = panel()
    at.switch_page("views/nodes.py").run()
    labels = [e.label for e in at.expander]
    assert "Models (1 files)" in labels, labels  # the tiny checkpoint, under many loaders


def test_the_gallery_shows_the_seed_used_not_the_request_and_opens_from_a_link(
        panel: PanelFactory, service: Service) -> None:
    client = service.client()
    job = client.submit({"workflow": "solid", "values": {"seed": -1}}, {})
    raw = client.submit({"graph": SOLID | {"1": {**SOLID["1"], "inputs": {
        "width": 8, "height": 8, "color": "#000000", "batch_size": 1, "seed": 3}}}}, {})
    run_until(panel(), lambda a: client.job(job.id).terminal and client.job(raw.id).terminal,
              JOB_TIMEOUT_S, "both jobs")
    output = client.output(client.job(job.id).output_ids[0])
    at = panel()
    at.query_params[widgets.OUTPUT_PARAM] = output.id
    at.switch_page("views/gallery.py").run()
    shown = texts(at)
    assert f"seed `{output.seed}`" in shown and output.seed is not None
    assert all("seed" not in j.value for j in at.json)  # no "seed": -1 beside it
    assert "seed None" not in shown
    assert not any("seed" in str(c) for i in at.image for c in i.captions
                   if "raw graph" in str(c))


def test_thumbnails_link_to_their_output_in_the_gallery(panel: PanelFactory,
                                                       service: Service) -> None:
    client = service.client()
    job = client.submit({"workflow": "solid", "values": {}}, {})
    run_until(panel(), lambda a: client.job(job.id).terminal, JOB_TIMEOUT_S, "the image")
    output_id = client.job(job.id).output_ids[0]
    at = panel()
    at.switch_page("views/gallery.py").run()
    links = [str(getattr(i.proto, "link", "")) for i in at.image]
    assert f"gallery?{widgets.OUTPUT_PARAM}={output_id}" in links


def upload_limits(at: AppTest) -> list[int]:
    """The limit in MB of each upload widget the page shows."""
    return [int(widget.proto.max_upload_size_mb) for widget in at.get("file_uploader")]


def test_the_upload_widgets_refuse_what_the_service_would(panel: PanelFactory) -> None:
    """At the shipped defaults the panel's server (``comfy-orch panel``) and its upload
    widgets take what the service takes."""
    from orchestrator.cli.panel_cmd import panel_argv
    from orchestrator.settings import MAX_UPLOAD_BYTES, Settings

    argv = panel_argv("http://127.0.0.1:8288", port=8501)
    limit_mb = int(argv[argv.index("--server.maxUploadSize") + 1])
    assert limit_mb * 2**20 == MAX_UPLOAD_BYTES == Settings().max_upload_bytes
    at = panel()
    at.selectbox(key="gen:workflow").set_value("avatar").run()
    assert upload_limits(at) == [limit_mb]


def test_the_upload_limit_is_the_one_the_service_says(panel: PanelFactory, comfy_url: str,
                                                      tmp_path: Path) -> None:
    """The panel runs without the service's code, so it learns the limit from ``/v1/me``
    of the service it talks to. The limit is lowered here (3 MB, not the shipped 20 MB)
    only to tell the service's answer apart from the default."""
    with serving(comfy_url, tmp_path, max_upload_bytes=3 * 2**20) as small:
        at = panel(api=small.url, token=small.admin)
        at.selectbox(key="gen:workflow").set_value("avatar").run()
        assert upload_limits(at) == [3] and not at.error
