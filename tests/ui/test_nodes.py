"""Nodes: health, load and capabilities of each ComfyUI server; add, drain, remove."""

from __future__ import annotations

import socket

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import PanelFactory, Service, texts


def _page(panel: PanelFactory, token: str | None = None) -> AppTest:
    return panel(token=token).switch_page("views/nodes.py").run()


def _free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_each_node_shows_health_load_and_capabilities(panel: PanelFactory,
                                                      service: Service) -> None:
    at = _page(panel)
    node = service.orch.nodes()[0]
    shown = texts(at)
    assert f"🟢 **{node.name}** · {node.url} · up" in shown
    assert f"{node.classes} node classes" in shown
    assert at.metric[0].value == "1/1"
    assert "tiny-sd15.safetensors" in shown


def test_an_admin_drains_and_resumes_a_node(panel: PanelFactory, service: Service) -> None:
    name = service.orch.nodes()[0].name
    at = _page(panel)
    at.button(key=f"nodes:drain:{name}").click().run()
    assert service.orch.nodes()[0].draining
    assert "draining" in texts(at)
    at.button(key=f"nodes:drain:{name}").click().run()
    assert not service.orch.nodes()[0].draining


def test_an_admin_adds_a_node_that_is_down_and_removes_it(panel: PanelFactory,
                                                          service: Service) -> None:
    url = _free_url()
    at = _page(panel)
    at.text_input(key="nodes:url").set_value(url)
    at.text_input(key="nodes:name").set_value("spare")
    at.button(key="nodes:add-submit").click().run()
    assert "🔴 **spare**" in texts(at)
    at.checkbox(key="nodes:confirm:spare").check().run()
    at.button(key="nodes:remove:spare").click().run()
    assert "spare" not in [n.name for n in service.orch.nodes()]
    assert "**spare**" not in texts(at)


def test_other_tokens_see_the_pool_without_admin_controls(panel: PanelFactory,
                                                          service: Service) -> None:
    node = service.orch.nodes()[0]
    name = node.name
    at = _page(panel, token=service.alice)
    assert f"**{name}** · up" in texts(at)
    assert node.url not in texts(at)  # addresses are for admins only
    assert not [b.key for b in at.button if b.key and b.key.startswith("nodes:")]
    assert len(at.checkbox) == 0 and "nodes:url" not in [t.key for t in at.text_input]
    assert "Adding, draining and removing nodes needs an admin token." in texts(at)
