"""The REST client against a real service: answers parsed into models, and every failure
turned into one sentence of the right kind."""

from __future__ import annotations

import socket

import pytest

from tests.ui.conftest import JOB_TIMEOUT_S, Service, png_bytes, wait_until
from ui import ApiClient, ServiceRefused, ServiceUnreachable, TokenRefused, UnexpectedAnswer


def test_a_job_round_trip_reads_back_typed(service: Service) -> None:
    client = service.client()
    job = client.submit({"workflow": "solid", "values": {"color": "#010203"}}, {})
    wait_until(lambda: client.job(job.id).terminal, JOB_TIMEOUT_S, "the job")
    done = client.job(job.id)
    output = client.output(done.output_ids[0])
    assert (done.status, output.width, output.height) == ("succeeded", 64, 48)
    assert client.content(output.id).startswith(b"\x89PNG")
    assert client.thumbnail(output.id, 32)


def test_a_multipart_submit_sends_images_under_their_placeholder(service: Service) -> None:
    client = service.client()
    job = client.submit({"workflow": "avatar", "values": {}, "count": 1},
                        {"char_avatar": ("a.png", png_bytes(10, 6), "image/png")})
    wait_until(lambda: client.job(job.id).terminal, JOB_TIMEOUT_S, "the job")
    output = client.output(client.job(job.id).output_ids[0])
    assert (output.width, output.height) == (10, 6)


def test_a_closed_port_is_unreachable_in_plain_words() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(ServiceUnreachable, match="is unreachable \\(connection refused\\)"):
        ApiClient(url, "t").health()


def test_a_revoked_or_made_up_token_is_refused(service: Service) -> None:
    with pytest.raises(TokenRefused, match="the token was refused"):
        ApiClient(service.url, "co_12345678_nope").me()


def test_me_says_whose_token_it_is(service: Service) -> None:
    assert (service.client().me().owner, service.client().me().admin) == ("root", True)
    assert (service.client(service.alice).me().owner,
            service.client(service.alice).me().admin) == ("alice", False)


def test_outputs_are_listed_with_filters(service: Service) -> None:
    client = service.client(service.alice)
    job = client.submit({"workflow": "solid", "values": {}, "character": "lister"}, {})
    wait_until(lambda: client.job(job.id).terminal, JOB_TIMEOUT_S, "the job")
    page = client.outputs(character="lister", job=job.id, limit=5)
    assert [o.id for o in page.outputs] == client.job(job.id).output_ids
    assert client.outputs(character="lister", workflow="slow").outputs == []


def test_a_check_reports_without_storing(service: Service) -> None:
    check = service.client(service.alice).check_workflow("unsaved", '{"1": ')
    assert not check.ok and "line 1" in check.problems[0].text
    assert not (service.workflows / "unsaved.json").exists()


def test_object_info_keeps_the_classes_asked_for(service: Service) -> None:
    info = service.client().object_info(["KSampler", "Nope"])
    assert list(info) == ["KSampler"]
    assert service.client().object_info([]) == {}


def test_a_workflow_without_a_preview_is_a_404(service: Service) -> None:
    with pytest.raises(ServiceRefused) as caught:
        service.client().preview("solid")
    assert caught.value.status == 404


def test_a_refusal_keeps_status_code_and_details(service: Service) -> None:
    with pytest.raises(ServiceRefused) as caught:
        service.client().put_workflow("bad", {"1": {"inputs": {}}}, None)
    assert caught.value.status == 422 and caught.value.code == "invalid_workflow"
    assert caught.value.details["problems"]


def test_an_admin_route_names_the_missing_right(service: Service) -> None:
    with pytest.raises(ServiceRefused, match="needs an admin token"):
        service.client(service.alice).drain_node("x", True)


def test_something_that_is_not_the_service_is_an_unexpected_answer(comfy_url: str) -> None:
    with pytest.raises((UnexpectedAnswer, ServiceRefused)):
        ApiClient(comfy_url, "t").health()
