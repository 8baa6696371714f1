"""The entrypoint: navigation over the five views, and the sidebar's connection status."""

from __future__ import annotations

import socket

from tests.ui.conftest import PanelFactory, Service, texts
from ui import state


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_signed_in_panel_shows_the_pool_and_opens_on_generate(panel: PanelFactory) -> None:
    at = panel()
    assert not at.exception
    assert "Connected as root (admin)" in texts(at)
    assert at.title[0].value == "Generate"


def test_the_sidebar_names_the_tokens_owner(panel: PanelFactory, service: Service) -> None:
    shown = texts(panel(token=service.alice))
    assert "Connected as alice ·" in shown


def test_an_unreachable_service_is_a_sentence_not_a_traceback(panel: PanelFactory) -> None:
    url = _closed_port()
    at = panel(api=url)
    assert not at.exception
    shown = texts(at)
    assert f"the service at {url} is unreachable (connection refused)" in shown
    assert "Workflow" not in [s.label for s in at.selectbox]


def test_a_wrong_token_is_refused_in_plain_words(panel: PanelFactory) -> None:
    at = panel(token="co_00000000_not-a-real-secret")
    assert not at.exception
    assert "the token was refused by the service" in texts(at)


def test_a_malformed_address_says_how_to_write_one(panel: PanelFactory) -> None:
    at = panel(api="127.0.0.1:8288")
    assert not at.exception
    assert "must start with http:// or https://" in texts(at)


def test_changing_the_address_in_the_sidebar_reconnects(panel: PanelFactory,
                                                        service: Service) -> None:
    at = panel(api=_closed_port())
    at.sidebar.text_input(key=state.API_URL).set_value(service.url).run()
    assert "Connected" in texts(at)
