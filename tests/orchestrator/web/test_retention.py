"""Job retention over HTTP: what REST and v2 report, and expired jobs really going."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests import graphs
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import Api, Service, ServiceFactory

JOB_TIMEOUT_S = 60.0


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _blob_files(service: Service) -> list[Path]:
    return [p for p in (service.settings.data_dir / "blobs").rglob("*") if p.is_file()]


def test_by_default_jobs_are_kept_and_reported_so(api: Api, service: Service) -> None:
    """At the shipped default nothing expires: REST says null, v2 (whose contract wants a
    timestamp) says the end of time, and a sweep deletes nothing."""
    job = api.submit(service.alice, workflow="solid")
    assert job["expires_at"] is None
    v2 = api.post("/api/v2/jobs", token=service.alice,
                  json={"workflow": graphs.solid_image(8, 8, "#010203")})
    assert v2.status_code == 201, v2.text
    assert _time(v2.json()["expires_at"]).year == 9999
    assert api.wait_job(service.alice, job["id"])["expires_at"] is None
    assert service.orch.expire_jobs() == 0
    assert api.get(f"/v1/jobs/{job['id']}", token=service.alice).status_code == 200


def test_a_configured_retention_is_reported_and_enforced(
        service_factory: ServiceFactory) -> None:
    """Given a retention of one second (lifted from the default "keep" only so a test can
    see a deadline pass; the periodic sweep is driven by hand here), a finished job reports
    created + 1 s on REST and v2, and once past it the sweep deletes the job, its output
    record and the output's bytes."""
    short = service_factory(job_retention_s=1.0, retention_sweep_s=3600.0)
    api = short.api
    job = api.submit(short.alice, workflow="solid", values={"color": "#0a0b0c"})
    assert _time(job["expires_at"]) == _time(job["created_at"]) + timedelta(seconds=1)
    v2 = api.post("/api/v2/jobs", token=short.alice,
                  json={"workflow": graphs.solid_image(8, 8, "#0d0e0f")}).json()
    assert _time(v2["expires_at"]) == _time(v2["created_at"]) + timedelta(seconds=1)
    for job_id in (job["id"], v2["id"]):
        assert api.wait_job(short.alice, job_id, JOB_TIMEOUT_S)["status"] == "succeeded"
    output_id = api.job(short.alice, job["id"])["output_ids"][0]
    assert len(_blob_files(short)) == 2
    wait_until(lambda: short.orch.expire_jobs() >= 0 and not _blob_files(short),
               JOB_TIMEOUT_S, "both jobs to pass their retention and go")
    for path in (f"/v1/jobs/{job['id']}", f"/v1/outputs/{output_id}",
                 f"/v1/outputs/{output_id}/content", f"/api/v2/jobs/{v2['id']}"):
        assert api.get(path, token=short.alice).status_code == 404, path
    assert _blob_files(short) == []


def test_the_periodic_sweep_deletes_expired_jobs_on_its_own(
        service_factory: ServiceFactory) -> None:
    """With a one-second retention swept ten times a second (lifted from the defaults, keep
    and five minutes, so the test sees it happen), a finished job disappears by itself."""
    short = service_factory(job_retention_s=1.0, retention_sweep_s=0.1)
    job = short.api.submit(short.alice, workflow="solid", values={"color": "#102030"})
    wait_until(lambda: short.api.get(f"/v1/jobs/{job['id']}",
                                     token=short.alice).status_code == 404,
               JOB_TIMEOUT_S, "the sweep to delete the expired job")
    wait_until(lambda: not _blob_files(short), JOB_TIMEOUT_S, "its output's bytes to go")
