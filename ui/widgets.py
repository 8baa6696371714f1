"""Render functions the views share: the connection sidebar, a job card with live progress
and its outputs (drawn by ``ui.outputs``), and a pager.

Each catches ``PanelError`` where it calls the service and shows its message, so a
failing request costs one red line in its own place instead of the whole page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import streamlit as st

from ui import eta, outputs, pool, state
from ui.api import ApiClient, PanelError
from ui.events import ItemProgress, JobProgress
from ui.models import Item, Job, Node, WorkflowSummary

# Seconds between live updates of a running job's card: its bar's lag, and how late the
# card says a finished job is done. A quick image (2-4 s on a CPU) is judged by the eye
# in quarters of a second; the fragment only reads the job's latest state, held locally.
REFRESH_S = 0.25
GALLERY_PAGE = "views/gallery.py"
OUTPUT_PARAM = "output"
STATUS_ICONS = {"queued": "⏳", "dispatched": "📤", "running": "⚙️", "canceling": "✋",
                "succeeded": "✅", "partially_failed": "⚠️", "failed": "❌",
                "canceled": "🚫", "expired": "⌛"}


def status_label(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '•')} {status.replace('_', ' ')}"


# --- connection sidebar ---------------------------------------------------------------------


def connection_sidebar() -> str | None:
    """Service URL and token inputs plus the connection status; the problem, or None."""
    with st.sidebar:
        st.text_input("Service URL", key=state.API_URL,
                      help="the comfy-orchestrator service, e.g. http://127.0.0.1:8288")
        st.text_input("Token", key=state.TOKEN, type="password",
                      help="a token from 'comfy-orch token create --owner NAME'")
        problem = connection_problem(state.client())
        if problem is None:
            return None
        st.error(problem, icon=":material/power_off:")
        return problem


def connection_problem(client: ApiClient) -> str | None:
    """Why the panel cannot work with ``client`` (unreachable, token refused), or None
    after showing the pool's state."""
    try:
        health = client.health()
        who = client.me()
    except PanelError as exc:
        return str(exc)
    state.set_me(who)
    role = " (admin)" if who.admin else ""
    # A draining node is up but takes no new work: said apart, so "2/2 up" is not read as
    # two nodes ready for the next job.
    draining = f", {health.nodes_draining} draining" if health.nodes_draining else ""
    st.success(f"Connected as {who.owner}{role} · {health.nodes_up}/{health.nodes_total} "
               f"nodes up{draining} · {health.queued} queued", icon=":material/check_circle:")
    return None


def show_flash() -> None:
    """The one-off message a previous run left (e.g. before switching page)."""
    found = state.take_flash()
    if found is not None:
        kind, text = found
        (st.success if kind == "success" else st.error)(text)


def blocked_reasons(client: ApiClient, workflows: Sequence[WorkflowSummary],
                    nodes: Sequence[Node]) -> dict[str, str | None]:
    """Why the pool cannot run each workflow (None: it can), as the service's check says;
    asked once per version of each workflow and state of the pool."""
    cache = state.blocked_cache()
    signature = repr(sorted((n.name, n.health, n.classes, sorted(pool.model_files(n)))
                            for n in nodes))
    reasons: dict[str, str | None] = {}
    for workflow in workflows:
        cached = (workflow.name, workflow.serving or "", signature)
        if cached not in cache:
            cache[cached] = _blocked_reason(client, workflow.name)
        reasons[workflow.name] = cache[cached]
    return reasons


def _blocked_reason(client: ApiClient, name: str) -> str | None:
    try:
        detail = client.workflow(name)
        return pool.blocked_reason(client.check_workflow(name, *pool.check_texts(detail)))
    except PanelError:
        return None  # the page that needs the workflow shows the service's error itself


# --- job card -------------------------------------------------------------------------------


def job_card(job: Job) -> None:
    """A job with its progress; while it runs the card refreshes itself every second."""
    if job.terminal:
        _job_card_body(job.id, live=False)
    else:
        st.fragment(_job_card_body, run_every=REFRESH_S)(job.id, live=True)


def _job_card_body(job_id: str, *, live: bool) -> None:
    client = state.client()
    try:
        job = client.job(job_id)
    except PanelError as exc:
        st.error(str(exc))
        return
    progress = None if job.terminal else state.watchers().watch(job_id).progress()
    with st.container(border=True):
        _job_header(job, progress)
        if job.status == "queued":
            _queue_line(client, job)
        for item in job.items:
            _item_line(item, progress.item(item.index) if progress else None)
        _job_actions(client, job)
        if job.output_ids:
            outputs.job_outputs(client, job, key=f"job-{job.id}", open_page=GALLERY_PAGE)
    if live and job.terminal:
        st.rerun()  # the next full run draws this card without a refresh timer


def _job_header(job: Job, progress: JobProgress | None) -> None:
    name = job.workflow or "raw graph"
    st.markdown(f"**{name}** · {status_label(job.status)} · {job.count} image(s) · "
                f"`{job.id}`")
    if job.terminal:
        fraction = 1.0 if job.status == "succeeded" else 0.0
        st.progress(fraction, text=f"{round(fraction * 100)} %")
        return
    # the stream is fresher while it runs; the job's own answer covers the start
    reported = min(max(job.progress, progress.fraction if progress else 0.0), 1.0)
    elapsed = (datetime.now(UTC) - job.created_at).total_seconds()
    shown = state.shown_progress()
    now = shown[job.id] = eta.shown(shown.get(job.id), reported, elapsed)
    st.progress(now.fraction, text=f"{round(now.fraction * 100)} %{eta.eta_text(now)}")


def _queue_line(client: ApiClient, job: Job) -> None:
    try:
        nodes = client.nodes().nodes
    except PanelError:
        nodes = []
    if nodes and not pool.taking_work(nodes):
        st.warning("Waiting: no node takes work now (every node is draining or down); "
                   "resume or add one on the Nodes page", icon=":material/pause_circle:")
    ahead = [i.queue_position for i in job.items if i.queue_position is not None]
    if ahead:
        st.caption(f"Waiting for a free node · {min(ahead)} image(s) ahead in the queue")


def _item_line(item: Item, live: ItemProgress | None) -> None:
    parts = [f"Image {item.index + 1}: {status_label(item.status)}"]
    if item.queue_position is not None:
        parts.append(f"{item.queue_position} ahead")
    if item.eta_s is not None:
        parts.append(f"done in about {round(item.eta_s)} s")
    if item.seed is not None:
        parts.append(f"seed {item.seed}")
    server = item.node or (live.server if live else None)
    if server:
        parts.append(f"on {server}")
    if live is not None and not item.status.startswith(("succ", "fail", "cancel")):
        parts += _live_parts(live)
    if live is not None and live.preview:
        line, preview = st.columns([5, 1])
        preview.image(live.preview, caption="preview", width=96)
    else:
        line = st.container()
    line.caption(" · ".join(parts))
    for earlier in item.earlier_attempts:
        line.warning(f"retried after {earlier.node}: {earlier.error}")
    if item.error is not None:
        line.error(item.error.message)


def _live_parts(live: ItemProgress) -> list[str]:
    parts = []
    if live.class_type:
        parts.append(f"node {live.node_id} ({live.class_type})")
    if live.step is not None and live.steps:
        parts.append(f"step {live.step}/{live.steps}")
    parts.append(f"{round(live.fraction * 100)} %")
    return parts


def _job_actions(client: ApiClient, job: Job) -> None:
    cols = st.columns(4)
    if not job.terminal and cols[0].button("Cancel", key=f"cancel-{job.id}"):
        _act(lambda: client.cancel(job.id), "cancel asked")
    if job.retryable and cols[1].button("Retry", key=f"retry-{job.id}"):
        _act(lambda: client.retry(job.id), "queued again")


def _act(action: Callable[[], Job], done: str) -> None:
    try:
        job = action()
    except PanelError as exc:
        st.error(str(exc))
        return
    state.flash("success", f"Job {job.id}: {done}")
    st.rerun()


# --- paging ---------------------------------------------------------------------------------


def pager(cursors: list[str], next_cursor: str | None, *, key: str) -> None:
    """Newer/Older buttons over a cursor-paged list; ``cursors`` is the stack of pages
    already passed (kept by the caller in session state)."""
    cols = st.columns(2)
    if cursors and cols[0].button("Newer", key=f"{key}:newer"):
        cursors.pop()
        st.rerun()
    if next_cursor and cols[1].button("Older", key=f"{key}:older"):
        cursors.append(next_cursor)
        st.rerun()
