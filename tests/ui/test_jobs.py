"""Jobs: live progress of a running job (percent, graph node, node server), cancel, retry,
filters and pages."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import JOB_TIMEOUT_S, PanelFactory, Service, run_until, texts


def _jobs_page(panel: PanelFactory) -> AppTest:
    at = panel()
    return at.switch_page("views/jobs.py").run()


def test_a_running_job_shows_its_step_node_and_server_and_can_be_canceled(
        panel: PanelFactory, service: Service) -> None:
    job = service.client().submit({"workflow": "slow", "values": {"seconds": 60}}, {})
    at = _jobs_page(panel)
    run_until(at, lambda a: "OrchTestSleep" in texts(a), JOB_TIMEOUT_S,
              "the card to show the node that runs")
    shown = texts(at)
    assert "node 2 (OrchTestSleep)" in shown and "step " in shown
    assert f"on {service.orch.nodes()[0].name}" in shown
    assert job.id in shown
    at.button(key=f"cancel-{job.id}").click().run()
    run_until(at, lambda a: service.client().job(job.id).terminal, JOB_TIMEOUT_S,
              "the job to end")
    assert service.client().job(job.id).status == "canceled"
    at.run()
    assert at.button(key=f"retry-{job.id}")


def test_retry_queues_a_canceled_job_again(panel: PanelFactory, service: Service) -> None:
    client = service.client()
    job = client.submit({"workflow": "slow", "values": {"seconds": 60}}, {})
    client.cancel(job.id)
    run_until(panel(), lambda a: client.job(job.id).terminal, JOB_TIMEOUT_S, "the cancel")
    at = _jobs_page(panel)
    at.button(key=f"retry-{job.id}").click().run()
    assert not at.exception
    assert client.job(job.id).status in ("queued", "running")
    client.cancel(job.id)


def test_the_status_filter_lists_only_matching_jobs(panel: PanelFactory,
                                                    service: Service) -> None:
    done = service.client().submit({"workflow": "solid", "values": {}}, {})
    run_until(panel(), lambda a: service.client().job(done.id).terminal, JOB_TIMEOUT_S,
              "a finished job")
    at = _jobs_page(panel)
    at.selectbox(key="jobs:status").set_value("canceled").run()
    assert done.id not in texts(at)
    at.selectbox(key="jobs:status").set_value("succeeded").run()
    assert done.id in texts(at)


def test_older_jobs_are_a_page_away(panel: PanelFactory, service: Service) -> None:
    for _ in range(11):
        service.client().submit({"workflow": "solid", "values": {}}, {})
    at = _jobs_page(panel)
    at.button(key="jobs:older").click().run()
    assert not at.exception
    assert at.button(key="jobs:newer")


def test_a_queued_job_shows_how_many_images_are_ahead(panel: PanelFactory,
                                                      service: Service) -> None:
    client = service.client()
    name = service.orch.nodes()[0].name
    client.drain_node(name, True)
    try:
        first = client.submit({"workflow": "solid", "values": {}, "count": 2}, {})
        second = client.submit({"workflow": "solid", "values": {}}, {})
        at = _jobs_page(panel)
        shown = texts(at)
        assert "Image 1: ⏳ queued · 0 ahead" in shown or "· 0 ahead" in shown
        ahead = client.job(second.id).items[0].queue_position
        assert ahead is not None and ahead >= 2
        assert f"{ahead} image(s) ahead in the queue" in shown
        client.cancel(first.id)
        client.cancel(second.id)
    finally:
        client.drain_node(name, False)


def test_an_admin_lists_one_owners_jobs(panel: PanelFactory, service: Service) -> None:
    mine = service.client(service.alice).submit({"workflow": "solid", "values": {}}, {})
    at = _jobs_page(panel)
    at.text_input(key="jobs:owner").set_value("root").run()
    assert mine.id not in texts(at)
    at.text_input(key="jobs:owner").set_value("alice").run()
    assert mine.id in texts(at)
    alice = panel(token=service.alice).switch_page("views/jobs.py").run()
    assert "jobs:owner" not in [t.key for t in alice.text_input]
