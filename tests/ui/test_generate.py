"""Generate: fields from the workflow's placeholders, pick lists from the pool, the
preview image, submit, live card, reuse last seed, image uploads."""

from __future__ import annotations

import json
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import (
    JOB_TIMEOUT_S,
    SOLID,
    PanelFactory,
    Service,
    png_bytes,
    run_until,
    texts,
)
from ui import state


def _serve(service: Service, name: str, graph: dict[str, Any], meta: dict[str, Any]) -> None:
    service.put_workflow(name, graph, meta)


def _open(panel: PanelFactory, workflow: str) -> AppTest:
    at = panel()
    at.selectbox(key="gen:workflow").set_value(workflow).run()
    assert not at.exception
    return at


def _finished(at: AppTest) -> bool:
    return "✅ succeeded" in texts(at)


def test_the_form_has_a_field_for_each_placeholder_with_its_declared_default(
        panel: PanelFactory) -> None:
    at = _open(panel, "solid")
    assert at.text_input(key="gen:solid:color").value == "#3366cc"
    assert at.text_input(key="gen:solid:color").label == "Colour"
    assert at.number_input(key="gen:solid:seed").value == -1
    assert list(at.segmented_control(key="gen:solid:aspect").options) == [
        "1:1", "16:9", "9:16", "4:3", "3:4"]
    assert at.segmented_control(key="gen:solid:count").options == ["1", "2", "4", "8"]
    assert at.radio(key="gen:solid:visibility").value == "private"
    assert "One flat colour" in texts(at)
    assert not at.file_uploader


def test_submitting_an_exact_size_makes_a_job_whose_card_follows_it_to_the_end(
        panel: PanelFactory, service: Service) -> None:
    at = _open(panel, "solid")
    at.radio(key="gen:solid:size_mode").set_value("Exact size").run()
    at.number_input(key="gen:solid:width").set_value(64)
    at.number_input(key="gen:solid:height").set_value(128)
    at.text_input(key="gen:solid:color").set_value("#ff8800")
    at.segmented_control(key="gen:solid:count").set_value(2)
    at.text_input(key="gen:solid:character").set_value("ada")
    at.button(key="gen:solid:submit").click().run()
    job_id = at.session_state[state.SUBMITTED][0]
    run_until(at, _finished, JOB_TIMEOUT_S, "the job card to show success")
    job = service.client().job(job_id)
    assert job.values == {"color": "#ff8800", "seed": -1, "width": 64, "height": 128}
    assert (job.count, job.character, job.visibility) == (2, "ada", "private")
    assert len(job.output_ids) == 2
    assert len(at.image) >= 2  # the card's thumbnails


def test_reuse_last_seed_fills_in_the_seed_of_the_newest_image(panel: PanelFactory,
                                                               service: Service) -> None:
    at = _open(panel, "solid")
    at.button(key="gen:solid:submit").click().run()
    run_until(at, _finished, JOB_TIMEOUT_S, "the job to finish")
    seed = service.client().job(at.session_state[state.SUBMITTED][0]).seeds[-1]
    at.button(key="gen:solid:seed:reuse").click().run()
    assert at.number_input(key="gen:solid:seed").value == seed
    at.button(key="gen:solid:seed:random").click().run()
    assert at.number_input(key="gen:solid:seed").value == -1


def test_an_aspect_ratio_and_tier_are_sent_instead_of_a_size(panel: PanelFactory,
                                                              service: Service) -> None:
    at = _open(panel, "solid")
    at.segmented_control(key="gen:solid:aspect").set_value("16:9")
    at.selectbox(key="gen:solid:tier").set_value("512")
    at.button(key="gen:solid:submit").click().run()
    job = service.client().job(at.session_state[state.SUBMITTED][0])
    assert job.values["aspect"] == "16:9" and job.values["tier"] == "512"


def test_an_edit_workflow_takes_an_uploaded_image_with_a_preview(panel: PanelFactory,
                                                                  service: Service) -> None:
    at = _open(panel, "avatar")
    uploader = at.file_uploader(key="gen:avatar:char_avatar")
    uploader.set_value(("face.png", png_bytes(24, 16, "#123456"), "image/png")).run()
    assert any("face.png" in i.captions for i in at.image)
    at.button(key="gen:avatar:submit").click().run()
    assert not at.exception
    run_until(at, _finished, JOB_TIMEOUT_S, "the avatar job to finish")
    job = service.client().job(at.session_state[state.SUBMITTED][0])
    output = service.client().output(job.output_ids[0])
    assert (output.width, output.height) == (24, 16)


def _shows_error(at: AppTest) -> bool:
    return any("characters" in e.value or "color" in e.value for e in at.error)


def test_a_request_the_service_refuses_is_shown_in_its_words(panel: PanelFactory) -> None:
    at = _open(panel, "solid")
    at.radio(key="gen:solid:size_mode").set_value("Exact size").run()
    at.text_input(key="gen:solid:color").set_value("x" * 5000)
    at.button(key="gen:solid:submit").click().run()
    assert not at.exception
    # The node refuses the colour when the image runs: the card shows its words then.
    run_until(at, _shows_error, JOB_TIMEOUT_S, "the refusal on the job card")


def test_sampler_and_scheduler_are_picked_from_the_pools_lists(panel: PanelFactory,
                                                               service: Service) -> None:
    graph = json.loads(json.dumps(SOLID))
    graph["1"]["inputs"]["color"] = "%sampler% %scheduler%"
    _serve(service, "sampled", graph, {"title": "Sampled"})
    at = _open(panel, "sampled")
    sampler = at.selectbox(key="gen:sampled:sampler")
    assert "euler" in sampler.options and "dpmpp_2m" in sampler.options
    assert sampler.value == "euler"  # the built-in default
    assert at.selectbox(key="gen:sampled:scheduler").value == "normal"


def test_the_picker_shows_the_workflows_preview_image(panel: PanelFactory,
                                                      service: Service) -> None:
    (service.workflows / "shown.png").write_bytes(png_bytes(40, 30, "#ff00ff"))
    _serve(service, "shown", SOLID, {"title": "Shown", "preview_image": "shown.png"})
    at = _open(panel, "shown")
    assert any("Shown (preview)" in i.captions for i in at.image)
    at = _open(panel, "solid")
    assert not any("(preview)" in str(i.captions) for i in at.image)
