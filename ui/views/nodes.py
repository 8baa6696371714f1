"""Nodes: each ComfyUI server of the pool with its health, load and capabilities (node
classes, installed models), the pool's queue; an admin adds, removes and drains nodes (other
tokens do not see those controls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ui import pool, state, widgets
from ui.api import ApiClient, PanelError
from ui.models import Node

HEALTH_ICONS = {"up": "🟢", "down": "🔴", "unknown": "⚪"}
DRAINING_ICON = "🟡"  # up, but takes no new work


def render() -> None:
    st.title("Nodes")
    widgets.show_flash()
    client = state.client()
    try:
        listed = client.nodes()
    except PanelError as exc:
        st.error(str(exc))
        return
    working = len(pool.taking_work(listed.nodes))
    cols = st.columns(3)
    cols[0].metric("Nodes taking work", f"{working}/{len(listed.nodes)}",
                   help="up and not draining")
    cols[1].metric("Images queued", listed.queued)
    cols[2].metric("Running", sum(n.in_flight for n in listed.nodes))
    if listed.nodes and not working:
        st.warning("No node takes work now: every node is draining or down, so queued "
                   "images wait. Resume or add a node.", icon=":material/pause_circle:")
    admin = state.is_admin()
    if not listed.nodes:
        st.info("No ComfyUI node in the pool yet" + (": add one below." if admin else "."))
    for node in listed.nodes:
        _node(client, node, admin=admin)
    if admin:
        _add_form(client)
    else:
        st.caption("Adding, draining and removing nodes needs an admin token.")


def _node(client: ApiClient, node: Node, *, admin: bool) -> None:
    icon = DRAINING_ICON if node.draining and node.health == "up" else HEALTH_ICONS.get(
        node.health, "⚪")
    draining = " · draining" if node.draining else ""
    seen = node.last_seen.strftime("%Y-%m-%d %H:%M:%S UTC") if node.last_seen else "never"
    with st.container(border=True):
        where = f" · {node.url}" if node.url else ""
        st.markdown(f"{icon} **{node.name}**{where} · {node.health}{draining} · "
                    f"{node.in_flight}/{node.max_in_flight} running · "
                    f"ComfyUI {node.comfyui_version or '?'}")
        st.caption(f"{node.classes} node classes · tags: {', '.join(node.tags) or '—'} · "
                   f"last seen {seen}")
        if node.last_error:
            st.error(node.last_error)
        _models(node)
        if admin:
            _actions(client, node)


def _models(node: Node) -> None:
    files = {site: names for site, names in node.models.items() if names}
    if not files:
        st.caption("no model files reported")
        return
    with st.expander(f"Models ({len(pool.model_files(node))} files)"):
        for site, names in sorted(files.items()):
            st.markdown(f"`{site}`: " + ", ".join(names))


def _actions(client: ApiClient, node: Node) -> None:
    cols = st.columns(4)
    label = "Resume" if node.draining else "Drain"
    if cols[0].button(label, key=f"nodes:drain:{node.name}"):
        _act(lambda: client.drain_node(node.name, not node.draining),
             f"{node.name}: {'back to work' if node.draining else 'draining'}")
    confirm = cols[1].checkbox("Confirm removal", key=f"nodes:confirm:{node.name}")
    if cols[2].button("Remove", key=f"nodes:remove:{node.name}", disabled=not confirm):
        _act(lambda: client.remove_node(node.name), f"{node.name} removed")


def _add_form(client: ApiClient) -> None:
    st.subheader("Add a node")
    with st.form("nodes:add", clear_on_submit=True):
        url = st.text_input("URL", placeholder="http://127.0.0.1:8188", key="nodes:url")
        name = st.text_input("Name (default host:port)", key="nodes:name")
        tags = st.text_input("Tags (comma separated)", key="nodes:tags")
        slots = st.number_input("Max in flight", min_value=1, max_value=64, value=None,
                                key="nodes:slots")
        if st.form_submit_button("Add node", key="nodes:add-submit"):
            tag_list = [t.strip() for t in tags.split(",") if t.strip()]
            _act(lambda: client.add_node(url.strip(), name=name.strip(), tags=tag_list,
                                         max_in_flight=None if slots is None else int(slots)),
                 f"added {name.strip() or url.strip()}")


def _act(action: Callable[[], Any], done: str) -> None:
    try:
        action()
    except PanelError as exc:
        st.error(str(exc))
        return
    state.flash("success", done)
    st.rerun()


if __name__ == "__main__":
    render()
