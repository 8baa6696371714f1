"""Workflows: the service's hot-reloaded list with each workflow's status and errors; a
workflow's placeholder presence list (✅ used / ❌ not used) and a JSON editor with validate
and save; and authoring by dropping ``NAME.json`` (plus ``NAME.meta.json``), with the
validation report shown before anything is saved."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

from ui import authoring, state, widgets
from ui.api import ApiClient, PanelError, ServiceRefused
from ui.authoring import Check
from ui.models import WorkflowSummary

DROP_COUNTER = "wf:drop-counter"  # bumped after a save, so the uploader starts empty
EDITED = "wf:edit"


def render() -> None:
    st.title("Workflows")
    widgets.show_flash()
    client = state.client()
    try:
        listed = client.workflows()
    except PanelError as exc:
        st.error(str(exc))
        return
    served, drop = st.tabs(["Served workflows", "Add by file drop"])
    with served:
        _list(listed)
        if listed:
            _editor(client, listed)
    with drop:
        _drop(client)


def _list(listed: list[WorkflowSummary]) -> None:
    if not listed:
        st.info("The workflows folder is empty: drop a workflow file in the next tab.")
    for wf in listed:
        mark = "✅" if wf.ok else "❌"
        serving = f"serving `{wf.serving}`" if wf.serving else "not serving"
        st.markdown(f"{mark} **{wf.title or wf.name}** `{wf.name}` · {wf.kind or '—'} · "
                    f"{serving} · {len(wf.placeholders)} placeholder(s)")
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
    if detail.graph is not None:
        presence_table(authoring.presence_list(detail.graph, detail.meta))
    graph_key, meta_key = f"wf:{name}:graph", f"wf:{name}:meta"
    st.session_state.setdefault(graph_key, _pretty(detail.graph))
    st.session_state.setdefault(meta_key, _pretty(detail.meta))
    graph_text = st.text_area("Graph (API-format JSON)", key=graph_key, height=300)
    meta_text = st.text_area("Metadata (NAME.meta.json, optional)", key=meta_key, height=200)
    cols = st.columns(3)
    check = authoring.check_texts(name, graph_text, meta_text.strip() or None)
    if cols[0].button("Validate", key=f"wf:{name}:validate"):
        report(check)
    if cols[1].button("Save", key=f"wf:{name}:save", type="primary"):
        _save(client, check)
    if cols[2].button("Delete", key=f"wf:{name}:delete"):
        _delete(client, name)


def _pretty(doc: dict[str, Any] | None) -> str:
    return "" if doc is None else json.dumps(doc, indent=2)


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
    name = st.text_input("Save as", value=drop.name, key=f"wf:drop:{counter}:name")
    check = authoring.check_texts(name.strip(), drop.graph_text, drop.meta_text)
    report(check)
    if st.button("Save workflow", key=f"wf:drop:{counter}:save", type="primary",
                 disabled=not check.ok):
        _save(client, check, after=lambda: st.session_state.update({DROP_COUNTER: counter + 1}))


def report(check: Check) -> None:
    """The validation report: every problem, or ✅ with warnings and the presence list."""
    if check.problems:
        st.error(f"{check.name}: {len(check.problems)} problem(s); not saved", icon="❌")
        for problem in check.problems:
            st.markdown(f"- ❌ {problem}")
        return
    st.success(f"{check.name} is valid and ready to save", icon="✅")
    for warning in check.warnings:
        st.warning(warning)
    presence_table(check.presence)


def presence_table(rows: list[authoring.Presence]) -> None:
    """SillyTavern's presence list: each known placeholder with ✅ used or ❌ not used."""
    st.markdown("**Placeholders**")
    lines = [f"{row.mark} `%{row.name}%` ({row.origin})"
             + (f" at {', '.join(row.sites)}" if row.sites else "") for row in rows]
    st.markdown("  \n".join(lines))


def _save(client: ApiClient, check: Check, *,
          after: Callable[[], None] | None = None) -> None:
    if not check.ok or check.graph is None:
        report(check)
        return
    try:
        saved = client.put_workflow(check.name, check.graph, check.meta)
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
