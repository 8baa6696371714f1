"""The real comfy-sdk 0.5.0 against our service and a real ComfyUI node.

Each test drives the SDK exactly as its users do (``COMFY_BASE_URL`` plus a token); every
response it receives is checked against the spec (see ``conftest.py``).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from comfy_low.errors import ApiError
from comfy_sdk import (
    Comfy,
    IdempotencyKeyReuse,
    InvalidWorkflow,
    NotFound,
    Output,
    OutputReady,
    Progress,
    StatusChange,
    Unauthorized,
    WorkflowFormatUi,
)
from PIL import Image

from tests.helpers import wait_until
from tests.orchestrator.web.v2 import graphs
from tests.orchestrator.web.v2.conftest import (
    SdkFactory,
    ServiceFactory,
    V2Service,
    fresh_seed,
    png_bytes,
)

Raw = Callable[..., httpx.Response]
JOB_TIMEOUT = 60.0


def pixel(data: bytes) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as image:
        found = image.convert("RGB").getpixel((0, 0))
        assert isinstance(found, tuple)
        return found


@pytest.mark.every_comfyui
def test_run_returns_the_succeeded_job_with_its_image(sdk: Comfy) -> None:
    job = sdk.run(sdk.workflows.from_json(graphs.solid("#00ff00")), timeout=JOB_TIMEOUT)

    assert job.status == "succeeded"
    [output] = job.outputs
    assert (output.type, output.content_type, output.node_id) == ("image", "image/png", "2")
    assert pixel(output.to_bytes()) == (0, 255, 0)
    assert output.to_bytes(range=(0, 7)) == b"\x89PNG\r\n\x1a\n"


def test_submit_then_wait_reports_times_metrics_and_progress(sdk: Comfy, v2: V2Service,
                                                            raw: Raw) -> None:
    job = sdk.submit(sdk.workflows.from_json(graphs.nap(0.3, 3)), metadata={"case": "wait"})
    assert job.status in ("queued", "running")
    job.wait(timeout=JOB_TIMEOUT)

    body = raw(v2, "GET", f"/api/v2/jobs/{job.id}", token=v2.alice).json()
    assert body["status"] == "succeeded" and body["metadata"] == {"case": "wait"}
    assert body["started_at"] and body["completed_at"] and body["queue_position"] is None
    assert body["progress"]["value"] == 1.0 and body["progress"]["nodes_total"] == 2
    # The node sleeps 300 ms; our start stamp is taken when execution_start is read, a few
    # ms after the node started, so the recorded span may be slightly shorter.
    assert body["metrics"]["execution_ms"] >= 250
    assert body["outputs"][0]["hash"].startswith("blake3:")
    assert body["urls"]["self"] == f"{v2.url}/api/v2/jobs/{job.id}"


@pytest.mark.every_comfyui
def test_events_yield_progress_and_outputs_before_the_terminal_status(sdk: Comfy) -> None:
    job = sdk.submit(sdk.workflows.from_json(graphs.nap(0.6, 6)))

    seen = list(job.events())

    kinds = [type(e).__name__ for e in seen]
    assert isinstance(seen[-1], StatusChange) and seen[-1].status == "succeeded"
    assert any(isinstance(e, Progress) for e in seen), kinds
    values = [e.value for e in seen if isinstance(e, Progress)]
    assert values == sorted(values) and max(values) <= 1.0
    outputs = [e for e in seen if isinstance(e, OutputReady)]
    assert len(outputs) == 1 and kinds.index("OutputReady") < len(kinds) - 1
    assert isinstance(outputs[0].output, Output)
    assert outputs[0].output.to_bytes().startswith(b"\x89PNG")


def test_events_after_the_end_still_send_every_output_then_the_status(sdk: Comfy) -> None:
    job = sdk.run(sdk.workflows.from_json(graphs.solid("#0000ff")), timeout=JOB_TIMEOUT)

    late = list(job.events())

    assert [type(e).__name__ for e in late][-2:] == ["OutputReady", "StatusChange"]
    [ready] = [e for e in late if isinstance(e, OutputReady)]
    assert ready.output.id == job.outputs[0].id


def test_a_second_upload_of_the_same_bytes_returns_the_same_asset(sdk: Comfy, v2: V2Service,
                                                                  raw: Raw) -> None:
    data = png_bytes("#123456")
    first = sdk.assets.from_bytes(data, filename="dedup.png")
    first.commit()
    second = sdk.assets.from_bytes(data, filename="dedup.png")
    second.commit()

    assert first.created_new is True and second.id == first.id
    again = raw(v2, "POST", "/api/v2/assets", token=v2.alice,
                files={"file": ("dedup.png", data, "image/png")},
                data={"content_type": "image/png", "file_path": "dedup.png"})
    assert again.status_code == 200 and again.json()["id"] == first.id
    assert again.json()["created_new"] is False
    assert raw(v2, "HEAD", f"/api/v2/assets/by-hash/{first.hash}", token=v2.bob).status_code == 404


def test_an_edit_graph_loads_an_upload_named_by_its_plain_file_name(sdk: Comfy) -> None:
    sdk.assets.from_bytes(png_bytes("#ff0000"), filename="v2-plain.png").commit()

    job = sdk.run(sdk.workflows.from_json(graphs.invert("v2-plain.png")), timeout=JOB_TIMEOUT)

    assert pixel(job.outputs[0].to_bytes()) == (0, 255, 255)


def test_an_edit_graph_loads_an_upload_given_as_an_asset_handle(sdk: Comfy) -> None:
    asset = sdk.assets.from_bytes(png_bytes("#00ff00"), filename="v2-handle.png")
    workflow = sdk.workflows.from_json(graphs.invert("placeholder.png"))
    workflow.set_input("1", "image", asset)

    job = sdk.run(workflow, timeout=JOB_TIMEOUT)

    assert pixel(job.outputs[0].to_bytes()) == (255, 0, 255)
    assert job.get_workflow().format == "api"


@pytest.mark.every_comfyui
def test_canceling_a_running_job_ends_it_canceled(sdk: Comfy) -> None:
    job = sdk.submit(sdk.workflows.from_json(graphs.nap(60, 600)))
    wait_until(lambda: job.refresh().status == "running", JOB_TIMEOUT, "the job to run")

    job.cancel()

    assert job.status in ("canceling", "canceled")
    assert job.wait(timeout=JOB_TIMEOUT).status == "canceled"


@pytest.mark.every_comfyui
def test_canceling_a_queued_job_ends_it_at_once(sdk: Comfy) -> None:
    busy = sdk.submit(sdk.workflows.from_json(graphs.nap(60, 600)))
    waiting = sdk.submit(sdk.workflows.from_json(graphs.solid()))
    assert waiting.refresh().status == "queued"

    assert waiting.cancel().status == "canceled"
    busy.cancel()
    assert busy.wait(timeout=JOB_TIMEOUT).status == "canceled"


def test_list_jobs_follows_next_cursor_through_every_page(sdk: Comfy, v2: V2Service,
                                                          raw: Raw) -> None:
    label = {"batch": f"paging-{fresh_seed()}"}
    ids = [sdk.submit(sdk.workflows.from_json(graphs.solid()), metadata=label).id
           for _ in range(3)]

    listed = list(sdk.list_jobs(metadata=label, limit=2))

    assert [s.id for s in listed] == ids[::-1]
    first = raw(v2, "GET", "/api/v2/jobs", token=v2.alice,
                params={"limit": 2, "metadata[batch]": label["batch"]}).json()
    assert len(first["jobs"]) == 2 and first["next_cursor"]
    for job_id in ids:
        sdk.jobs.get(job_id).wait(timeout=JOB_TIMEOUT)


def test_a_reused_idempotency_key_is_refused(sdk: Comfy) -> None:
    key = f"key-{fresh_seed()}"
    sdk.submit(sdk.workflows.from_json(graphs.solid()), idempotency_key=key)

    with pytest.raises(IdempotencyKeyReuse):
        sdk.submit(sdk.workflows.from_json(graphs.solid()), idempotency_key=key)


def test_a_key_of_a_refused_submit_is_free_again(sdk: Comfy) -> None:
    key = f"key-{fresh_seed()}"
    with pytest.raises(InvalidWorkflow):
        sdk.submit(sdk.workflows.from_json(graphs.solid(width=99_999)), idempotency_key=key)

    job = sdk.submit(sdk.workflows.from_json(graphs.solid()), idempotency_key=key)

    assert job.wait(timeout=JOB_TIMEOUT).status == "succeeded"


def test_a_ui_export_is_refused_as_workflow_format_ui(sdk: Comfy) -> None:
    export = {"nodes": [{"id": 1, "type": "SaveImage"}], "links": [], "version": 0.4}

    with pytest.raises(WorkflowFormatUi):
        sdk.submit(sdk.workflows.from_json(export))


def test_an_out_of_range_input_is_invalid_workflow_naming_the_node(sdk: Comfy) -> None:
    with pytest.raises(InvalidWorkflow) as caught:
        sdk.submit(sdk.workflows.from_json(graphs.solid(width=99_999)))

    assert "node 1 (OrchTestSolidImage)" in str(caught.value)
    details = caught.value.details or {}
    assert details["node_errors"]["1"][0]["field"] == "width"


def test_an_unknown_asset_reference_is_missing_asset(v2: V2Service, raw: Raw) -> None:
    graph = graphs.invert({"__type": "core/ASSET", "info": {"id": "no-such-asset"}})

    answer = raw(v2, "POST", "/api/v2/jobs", token=v2.alice, json={"workflow": graph})

    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "missing_asset")


def test_anothers_public_output_named_in_a_graph_is_missing_asset(v2: V2Service,
                                                                    raw: Raw) -> None:
    """A public output reads as its copy without the embedded graph; naming it in a graph
    would put its stored bytes, graph included, into another owner's job."""
    made = raw(v2, "POST", "/v1/jobs", token=v2.alice,
               json={"graph": graphs.solid("#0000ff"), "visibility": "public"})
    assert made.status_code == 202, made.text
    job_id = made.json()["id"]
    wait_until(lambda: raw(v2, "GET", f"/api/v2/jobs/{job_id}", token=v2.alice
                           ).json()["status"] == "succeeded", JOB_TIMEOUT, "the job to end")
    output = raw(v2, "GET", f"/api/v2/jobs/{job_id}", token=v2.alice).json()["outputs"][0]
    reference = {"__type": "core/ASSET", "info": {"id": output["id"]}}

    readable = raw(v2, "GET", f"/api/v2/assets/{output['id']}", token=v2.bob)
    named = raw(v2, "POST", "/api/v2/jobs", token=v2.bob,
                json={"workflow": graphs.invert(reference)})
    own = raw(v2, "POST", "/api/v2/jobs", token=v2.alice,
              json={"workflow": graphs.invert(reference)})

    assert readable.status_code == 200
    assert (named.status_code, named.json()["error"]["code"]) == (422, "missing_asset")
    assert own.status_code == 201, own.text


def test_reserved_fields_are_refused(v2: V2Service, raw: Raw) -> None:
    answer = raw(v2, "POST", "/api/v2/jobs", token=v2.alice,
                 json={"workflow": graphs.solid(), "webhook_url": "http://127.0.0.1/"})

    assert answer.status_code == 422 and "webhook_url" in answer.json()["error"]["message"]


def test_a_full_queue_answers_429_queue_full_with_retry_after(v2_factory: ServiceFactory,
                                                              sdk_for: SdkFactory) -> None:
    small = v2_factory(max_queued=1)
    client = sdk_for(small, small.alice)
    busy = client.submit(client.workflows.from_json(graphs.nap(60, 600)))
    wait_until(lambda: busy.refresh().status == "running", JOB_TIMEOUT, "the job to run")
    waiting = client.submit(client.workflows.from_json(graphs.solid()))

    with pytest.raises(ApiError) as caught:
        client._low.post_jobs(graphs.solid())

    assert (caught.value.http_status, caught.value.code) == (429, "queue_full")
    assert caught.value.retry_after and caught.value.retry_after > 0
    waiting.cancel()
    busy.cancel()


def test_a_wrong_token_is_401_and_others_jobs_are_not_found(sdk_for: SdkFactory,
                                                            v2: V2Service) -> None:
    job = sdk_for(v2, v2.alice).submit(sdk_for(v2, v2.alice).workflows.from_json(graphs.solid()))

    with pytest.raises(Unauthorized):
        sdk_for(v2, "co_00000000_wrong").jobs.get(job.id)
    with pytest.raises(NotFound):
        sdk_for(v2, v2.bob).jobs.get(job.id)


def test_an_admin_reads_lists_follows_and_cancels_another_owners_job(
        sdk_for: SdkFactory, v2: V2Service, raw: Raw) -> None:
    """The one access rule of /v1 and the gateway holds on v2: an admin token sees and
    acts on every owner's jobs, while another owner still reads them as missing."""
    root = v2.tokens.create("root", admin=True)
    alice, admin, bob = sdk_for(v2, v2.alice), sdk_for(v2, root), sdk_for(v2, v2.bob)
    label = {"batch": f"admin-{fresh_seed()}"}
    graph = graphs.nap(60, 600)
    job = alice.submit(alice.workflows.from_json(graph), metadata=label)

    seen = admin.jobs.get(job.id)
    listed = [s.id for s in admin.list_jobs(metadata=label)]
    workflow = raw(v2, "GET", f"/api/v2/jobs/{job.id}/workflow", token=root)
    canceled = seen.cancel()
    ending = list(seen.events())

    assert seen.id == job.id and listed == [job.id]
    assert workflow.status_code == 200 and workflow.json()["workflow"] == graph
    assert canceled.status in ("canceling", "canceled")
    assert isinstance(ending[-1], StatusChange) and ending[-1].status == "canceled"
    assert job.wait(timeout=JOB_TIMEOUT).status == "canceled"
    with pytest.raises(NotFound):
        bob.jobs.get(job.id)
    assert list(bob.list_jobs(metadata=label)) == []
    refused = raw(v2, "POST", f"/api/v2/jobs/{job.id}/cancel", token=v2.bob)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found")


def test_an_admin_downloads_the_outputs_of_another_owners_job(sdk_for: SdkFactory,
                                                              v2: V2Service) -> None:
    """Seeing a job includes its outputs: the URLs an admin is given answer it, as /v1
    serves an admin any output (the copy without the embedded graph, as anyone but the
    owner gets); another owner still gets not_found."""
    root = v2.tokens.create("root", admin=True)
    alice = sdk_for(v2, v2.alice)
    done = alice.run(alice.workflows.from_json(graphs.solid("#00ff00")), timeout=JOB_TIMEOUT)

    seen = sdk_for(v2, root).jobs.get(done.id)
    data = seen.outputs[0].to_bytes()

    assert pixel(data) == (0, 255, 0)
    assert b"prompt" in done.outputs[0].to_bytes() and b"prompt" not in data
    with pytest.raises(NotFound):
        sdk_for(v2, v2.bob).assets.get(done.outputs[0].id)


def test_health_needs_no_token(v2: V2Service, raw: Raw) -> None:
    body = raw(v2, "GET", "/api/v2/health").json()

    assert body["status"] == "ok" and body["nodes_total"] == 1
