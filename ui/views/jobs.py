"""Jobs: every job the token may see, newest first (an admin's token may narrow them to one
owner), each with live progress while it runs (percent, the ComfyUI node executing, the
node server, the latest preview), its place in the queue, and cancel or retry."""

from __future__ import annotations

import streamlit as st

from ui import state, widgets
from ui.api import PanelError
from ui.models import JobPage

STATUSES = ("", "queued", "running", "canceling", "succeeded", "partially_failed", "failed",
            "canceled", "expired")
PAGE_SIZE = 10


def render() -> None:
    st.title("Jobs")
    widgets.show_flash()
    filters = _filters(admin=state.is_admin())
    cursors: list[str] = st.session_state.setdefault(state.JOBS_CURSORS, [])
    page = _page(filters, cursors[-1] if cursors else None)
    if page is None:
        return
    if not page.jobs:
        st.info("No jobs yet: start one on the Generate page.")
    for job in page.jobs:
        widgets.job_card(job)
    widgets.pager(cursors, page.next_cursor, key="jobs")


def _filters(*, admin: bool) -> dict[str, str | None]:
    """The listing's filters as query parameters (blank ones None); owner for admins."""
    cols = st.columns(3 if admin else 2)
    status = cols[0].selectbox("Status", STATUSES, format_func=lambda s: s or "any",
                               key="jobs:status", on_change=_first_page)
    workflow = cols[1].text_input("Workflow", key="jobs:workflow", on_change=_first_page)
    owner = cols[2].text_input("Owner", key="jobs:owner", on_change=_first_page) if (
        admin) else ""
    return {"status": str(status or "") or None, "workflow": workflow.strip() or None,
            "owner": owner.strip() or None}


def _first_page() -> None:
    st.session_state[state.JOBS_CURSORS] = []


def _page(filters: dict[str, str | None], cursor: str | None) -> JobPage | None:
    try:
        return state.client().jobs(limit=PAGE_SIZE, cursor=cursor, **filters)
    except PanelError as exc:
        st.error(str(exc))
        return None


if __name__ == "__main__":
    render()
