"""Workflows: the service's hot-reloaded list with each workflow's status and errors; a
workflow's placeholder presence list (✅ used / ❌ not used) and a JSON editor with validate
and save; and authoring by dropping ``NAME.json`` (plus ``NAME.meta.json``), with the
service's validation report (its nodes' check included) shown before anything is saved.
Saving and deleting need an admin token; other tokens see the reports only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

from ui import authoring, pool, state, widgets
from ui.api import ApiClient, PanelError, ServiceRefused
from ui.models import Presence, WorkflowCheck, WorkflowSummary

DROP_COUNTER = "wf:drop-counter"  # bumped after a save, so the uploader starts empty
EDITED = "wf:edit"
ADMIN_ONLY = "Saving and deleting workflows needs an admin token."


def render() -> None:
    st.title("Workflows")
    widgets.show_flash()
    client = state.client()
    try:
        listed = client.workflows()
        nodes = client.nodes().nodes
    except PanelError as exc:
        st.error(str(exc))
        return
    served, drop = st.tabs(["Served workflows", "Add by file drop"])
    with served:
        _list(listed, widgets.blocked_reasons(client, [w for w in listed if w.serving], nodes))
        if listed:
            _editor(client, listed)
    with drop:
        _drop(client)


def _list(listed: list[WorkflowSummary], blocked: dict[str, str | None]) -> None:
    if not listed:
        st.info("The workflows folder is empty: drop a workflow file in the next tab.")
    for wf in pool.ordered(listed):
        reason = blocked.get(wf.name)
        mark = "❌" if not wf.ok else (pool.BLOCKED if reason else "✅")
        serving = f"serving `{wf.serving}`" if wf.serving else "not serving"
        st.markdown(f"{mark} **{wf.title or wf.name}** `{wf.name}` · {wf.kind or '—'} · "
                    f"{serving} · {len(wf.placeholders)} placeholder(s)")
        if reason:
            st.warning(f"{wf.name}: the pool cannot run it: {reason}", icon=pool.BLOCKED)
        if wf.error:
            st.error(f"{wf.name}: {wf.error}")
        for warning in wf.warnings:
            st.warning(f"{wf.name}: {warning}")


def _editor(client: ApiClient, listed: list[WorkflowSummary]) -> None:
    st.subheader("Edit")
    name = str(st.selectbox("Workflow", [w.name for w in listed], key=EDITED))
    try:
        detail = client.workflow(name)
    except PanelError as exc:
        st.error(str(exc))
        return
    if detail.presence:
        presence_table(detail.presence)
    graph_key, meta_key = f"wf:{name}:graph", f"wf:{name}:meta"
    st.session_state.setdefault(graph_key, _pretty(detail.graph))
    st.session_state.setdefault(meta_key, _pretty(detail.meta))
    graph_text = st.text_area("Graph (API-format JSON)", key=graph_key, height=300)
    meta_text = st.text_area("Metadata (NAME.meta.json, optional)", key=meta_key, height=200)
    texts = (graph_text, meta_text.strip() or None)
    cols = st.columns(3)
    if cols[0].button("Validate", key=f"wf:{name}:validate"):
        _checked(client, name, *texts, show=True)
    if not state.is_admin():
        cols[1].caption(ADMIN_ONLY)
        return
    if cols[1].button("Save", key=f"wf:{name}:save", type="primary"):
        _save(client, _checked(client, name, *texts), *texts)
    if cols[2].button("Delete", key=f"wf:{name}:delete"):
        _delete(client, name)


def _pretty(doc: dict[str, Any] | None) -> str:
    return "" if doc is None else json.dumps(doc, indent=2)


def _checked(client: ApiClient, name: str, graph_text: str, meta_text: str | None, *,
             show: bool = False) -> WorkflowCheck | None:
    """The service's report on the texts (shown when ``show``), or None after an error."""
    try:
        check = client.check_workflow(name, graph_text, meta_text)
    except PanelError as exc:
        st.error(str(exc))
        return None
    if show or not check.ok:
        report(check)
    return check


def _drop(client: ApiClient) -> None:
    counter = int(st.session_state.get(DROP_COUNTER, 0))
    files = st.file_uploader("Drop NAME.json (API format) and, optionally, NAME.meta.json",
                             type=["json"], accept_multiple_files=True,
                             key=f"wf:drop:{counter}")
    if not files:
        return
    try:
        drop = authoring.split_drop((f.name, f.getvalue().decode("utf-8")) for f in files)
    except (ValueError, UnicodeDecodeError) as exc:
        st.error(str(exc))
        return
    name = st.text_input("Save as", value=drop.name, key=f"wf:drop:{counter}:name").strip()
    if not name:
        st.error("Type the name to save the workflow as.")
        return
    check = _checked(client, name, drop.graph_text, drop.meta_text, show=True)
    if not state.is_admin():
        st.caption(ADMIN_ONLY)
        return
    if st.button("Save workflow", key=f"wf:drop:{counter}:save", type="primary",
                 disabled=check is None or not check.ok):
        _save(client, check, drop.graph_text, drop.meta_text,
              after=lambda: st.session_state.update({DROP_COUNTER: counter + 1}))


def report(check: WorkflowCheck) -> None:
    """The service's report: every problem, or ✅ with warnings, what the pool's nodes
    would reject, and the presence list."""
    if check.problems:
        st.error(f"{check.name}: {len(check.problems)} problem(s); not saved", icon="❌")
        for problem in check.problems:
            st.markdown(f"- ❌ {problem.text}")
        return
    st.success(f"{check.name} is valid and ready to save", icon="✅")
    for warning in check.warnings:
        st.warning(warning)
    _pool(check)
    presence_table(check.presence)


def _pool(check: WorkflowCheck) -> None:
    if not check.pool_checked:
        st.info("No node has answered yet, so what the pool can run was not checked.")
        return
    if not check.pool_problems:
        return
    st.warning(f"The pool's nodes cannot run it yet ({len(check.pool_problems)} problem(s)); "
               "it can be saved, and runs once a node can.")
    st.markdown("\n".join(f"- ❌ {problem.text}" for problem in check.pool_problems))


PRESENCE_LEGEND = ("✅ used · ▫️ built-in, not used (nothing to do) · ❌ declared in the "
                   "metadata but not used · ⚠️ used but not declared")


def presence_table(rows: list[Presence]) -> None:
    """SillyTavern's presence list: each known placeholder marked used or not, with a
    legend, so an unused built-in does not read as an error."""
    st.markdown("**Placeholders**")
    lines = [f"{row.mark} `%{row.name}%` ({row.origin})"
             + (f" at {', '.join(row.sites)}" if row.sites else "") for row in rows]
    st.markdown("  \n".join(lines))
    st.caption(PRESENCE_LEGEND)


def _save(client: ApiClient, check: WorkflowCheck | None, graph_text: str,
          meta_text: str | None, *, after: Callable[[], None] | None = None) -> None:
    if check is None or not check.ok:
        return  # _checked has shown why
    try:
        # The service has just parsed these texts, so they are JSON.
        saved = client.put_workflow(check.name, json.loads(graph_text),
                                    None if meta_text is None else json.loads(meta_text))
    except ServiceRefused as exc:
        _refused(exc)
        return
    except PanelError as exc:
        st.error(str(exc))
        return
    if after is not None:
        after()
    state.flash("success", f"Saved {saved.name}: " + ("serving" if saved.ok else
                                                      f"not serving ({saved.error})"))
    st.rerun()


def _refused(exc: ServiceRefused) -> None:
    st.error(f"The service did not save it: {exc}", icon="❌")
    for problem in exc.details.get("problems", []):
        where = problem.get("path") or problem.get("node_id") or problem.get("source") or ""
        st.markdown(f"- ❌ {where} {problem.get('message', '')}")


def _delete(client: ApiClient, name: str) -> None:
    try:
        client.delete_workflow(name)
    except PanelError as exc:
        st.error(str(exc))
        return
    for suffix in ("graph", "meta"):
        st.session_state.pop(f"wf:{name}:{suffix}", None)
    st.session_state.pop(EDITED, None)
    state.flash("success", f"Deleted {name}")
    st.rerun()


if __name__ == "__main__":
    render()
