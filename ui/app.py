"""The control panel's entrypoint: ``streamlit run ui/app.py -- --api URL [--token T]``.

It reads where the service is (``--api``/``--token`` after ``--``, else ``COMFY_ORCH_API``
and ``COMFY_ORCH_TOKEN``), draws the shared sidebar, and routes with ``st.navigation``
over an explicit list of pages. The panel talks only to the service's REST API, so it
works the same against a service on another machine. While the service is unreachable or
refuses the token, no page runs: the reason is shown instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

from ui import state, widgets

VIEWS = Path(__file__).parent / "views"
PAGES = (
    ("generate.py", "Generate", ":material/brush:"),
    ("jobs.py", "Jobs", ":material/pending_actions:"),
    ("gallery.py", "Gallery", ":material/photo_library:"),
    ("workflows.py", "Workflows", ":material/account_tree:"),
    ("nodes.py", "Nodes", ":material/dns:"),
)


def pages() -> list[st.Page]:
    """The views in menu order; Generate opens first."""
    return [st.Page(VIEWS / file, title=title, icon=icon, default=n == 0)
            for n, (file, title, icon) in enumerate(PAGES)]


def main() -> None:
    st.set_page_config(page_title="comfy-orchestrator", page_icon="🎨", layout="wide")
    state.init(state.connection_defaults(sys.argv[1:], os.environ))
    page = st.navigation(pages())
    problem = widgets.connection_sidebar()
    if problem is not None:
        st.title(page.title)
        st.error(problem, icon=":material/power_off:")
        return
    page.run()


if __name__ == "__main__":
    main()
