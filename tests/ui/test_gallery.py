"""Gallery: the grid with its filters, an image's detail with values and seed, reuse
prompt, regenerate with a new or the same seed, download, delete."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import JOB_TIMEOUT_S, PanelFactory, Service, run_until, texts, wait_until
from ui import ApiClient, ServiceRefused, state
from ui.models import Job


def _made(client: ApiClient, **request: object) -> Job:
    job = client.submit({"workflow": "solid", "values": {}, **request}, {})
    wait_until(lambda: client.job(job.id).terminal, JOB_TIMEOUT_S, f"job {job.id}")
    done = client.job(job.id)
    assert done.status == "succeeded", done
    return done


@pytest.fixture(scope="module")
def public_job(service: Service) -> Job:
    """One public image of character "nova" in conversation "c1", by alice."""
    return _made(service.client(service.alice), character="nova", conversation="c1",
                 visibility="public", values={"color": "#00aa00", "seed": 1234})


def _gallery(panel: PanelFactory, *, token: str | None = None) -> AppTest:
    return panel(token=token).switch_page("views/gallery.py").run()


def _open(at: AppTest, output_id: str) -> AppTest:
    at.button(key=f"gallery-open-{output_id}").click().run()
    assert not at.exception
    return at


def test_the_grid_shows_the_newest_images_and_filters_by_character(
        panel: PanelFactory, public_job: Job) -> None:
    at = _gallery(panel)
    assert at.button(key=f"gallery-open-{public_job.output_ids[0]}")
    at.text_input(key="gallery:character").set_value("nova").run()
    assert [b.key for b in at.button if b.key and b.key.startswith("gallery-open-")] == [
        f"gallery-open-{public_job.output_ids[0]}"]
    at.text_input(key="gallery:character").set_value("nobody").run()
    assert "No images match" in texts(at)


def test_filters_by_conversation_workflow_and_owner(panel: PanelFactory,
                                                    public_job: Job) -> None:
    tile = f"gallery-open-{public_job.output_ids[0]}"
    at = _gallery(panel)
    at.text_input(key="gallery:conversation").set_value("c1").run()
    assert at.button(key=tile)
    at.text_input(key="gallery:conversation").set_value("")
    at.text_input(key="gallery:owner").set_value("root").run()
    assert tile not in [b.key for b in at.button]
    at.text_input(key="gallery:owner").set_value("alice")
    at.text_input(key="gallery:workflow").set_value("solid").run()
    assert at.button(key=tile)


def test_the_detail_shows_values_and_seed_and_offers_the_file(panel: PanelFactory,
                                                              public_job: Job) -> None:
    at = _open(_gallery(panel), public_job.output_ids[0])
    shown = texts(at)
    assert "seed `1234`" in shown and "64×48" in shown
    assert at.json[0].value and '"#00aa00"' in at.json[0].value
    assert at.get("download_button")


def test_reuse_prompt_fills_generate_with_the_image_values(panel: PanelFactory,
                                                          public_job: Job) -> None:
    at = _open(_gallery(panel), public_job.output_ids[0])
    at.button(key="gallery:reuse").click().run()
    assert at.title[0].value == "Generate"
    assert at.selectbox(key="gen:workflow").value == "solid"
    assert at.text_input(key="gen:solid:color").value == "#00aa00"
    assert at.text_input(key="gen:solid:character").value == "nova"
    # AppTest re-requests the page last given to switch_page(); a browser stays where the
    # app's own st.switch_page went, so follow it there.
    at.switch_page("views/generate.py")
    at.button(key="gen:solid:seed:reuse").click().run()
    assert at.number_input(key="gen:solid:seed").value == 1234


@pytest.mark.parametrize(("button", "same"), [("gallery:same-seed", True),
                                              ("gallery:new-seed", False)])
def test_regenerate_makes_a_new_job_with_the_same_or_a_new_seed(
        panel: PanelFactory, service: Service, public_job: Job, button: str,
        same: bool) -> None:
    at = _open(_gallery(panel), public_job.output_ids[0])
    at.button(key=button).click().run()
    job_id = at.session_state[state.SUBMITTED][0]
    run_until(at, lambda a: service.client().job(job_id).terminal, JOB_TIMEOUT_S,
              "the regenerated job")
    seeds = service.client().job(job_id).seeds
    assert (seeds == [1234]) is same


def test_delete_removes_the_image_from_the_service_and_the_grid(panel: PanelFactory,
                                                                service: Service) -> None:
    job = _made(service.client())
    output_id = job.output_ids[0]
    at = _open(_gallery(panel), output_id)
    at.button(key="gallery:delete").click().run()
    assert not at.exception
    assert any("Deleted" in s.value for s in at.success)
    assert f"gallery-open-{output_id}" not in [b.key for b in at.button]
    with pytest.raises(ServiceRefused):
        service.client().output(output_id)


def test_only_an_admin_filters_by_owner_and_others_see_their_own_and_public_images(
        panel: PanelFactory, service: Service, public_job: Job) -> None:
    private = _made(service.client(), character="nova")  # root's, private
    at = _gallery(panel, token=service.alice)
    assert "gallery:owner" not in [t.key for t in at.text_input]
    at.text_input(key="gallery:character").set_value("nova").run()
    tiles = [b.key for b in at.button if b.key and b.key.startswith("gallery-open-")]
    assert f"gallery-open-{public_job.output_ids[0]}" in tiles
    assert f"gallery-open-{private.output_ids[0]}" not in tiles
