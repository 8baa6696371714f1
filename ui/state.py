"""Every ``st.session_state`` key of the panel, and the typed accessors views use.

Keeping the keys in one module means two views can never disagree on a name, and a test
can set a session up (``at.session_state[state.API_URL] = url``) with the same constants.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.api import ApiClient
from ui.models import Me, Output
from ui.watcher import Watchers

# --- Connection (sidebar) -------------------------------------------------------------------
API_URL = "api_url"  # the service's base URL, e.g. http://127.0.0.1:8288
TOKEN = "api_token"  # a bearer token from `comfy-orch token create`
ME = "me"  # (Connection, Me): who the token stands for, read by the sidebar on every run
# --- Generate -------------------------------------------------------------------------------
LAST_SEED = "last_seed"  # the seed of the newest image generated in this session
PREFILL = "generate_prefill"  # {"workflow", "values", ...} set by "Reuse prompt" in Gallery
SUBMITTED = "submitted_jobs"  # ids of jobs submitted in this session, newest first
BLOCKED = "blocked_workflows"  # (name, version, pool) → why the pool cannot run it, or None
# --- Gallery --------------------------------------------------------------------------------
SELECTED_OUTPUT = "selected_output"  # output id whose detail is open
GALLERY_CURSORS = "gallery_cursors"  # cursors of the gallery pages before the one shown
PREVIEWS = "preview_cache"  # (workflow, version) → preview image bytes
THUMBNAILS = "thumbnail_cache"  # output id → thumbnail bytes (outputs never change)
OUTPUTS = "output_cache"  # output id → its record (kind, mime, key, value...): never changes
MEDIA = "media_cache"  # output id → an audio or video file's bytes, for its player
# --- Jobs -----------------------------------------------------------------------------------
WATCHERS = "job_watchers"  # Watchers: background readers of job event streams
SHOWN_PROGRESS = "shown_progress"  # job id → ui.eta.Shown, so a bar never goes back
JOBS_CURSORS = "jobs_cursors"  # cursors of the pages before the one shown
# --- Messages -------------------------------------------------------------------------------
FLASH = "flash_message"  # (kind, text) shown once on the next run, e.g. after a redirect

DEFAULT_API_URL = "http://127.0.0.1:8288"
ENV_API = "COMFY_ORCH_API"
ENV_TOKEN = "COMFY_ORCH_TOKEN"
THUMBNAIL_CACHE_MAX = 500  # entries; a 256 px PNG thumbnail is some tens of kB
OUTPUT_CACHE_MAX = 2000  # entries; a record is under a kB unless a node reported a lot
MEDIA_CACHE_MAX = 16  # entries; a clip or a sound can be megabytes, held per session
SUBMITTED_MAX = 50


@dataclass(frozen=True)
class Connection:
    """Where the service is and the token to call it with."""

    api_url: str
    token: str


def connection_defaults(argv: Sequence[str], environ: Mapping[str, str]) -> Connection:
    """``--api``/``--token`` after ``streamlit run ui/app.py --``, else ``COMFY_ORCH_API``
    and ``COMFY_ORCH_TOKEN``, else the local default address and no token."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--api", default=None)
    parser.add_argument("--token", default=None)
    args, _ = parser.parse_known_args(list(argv))
    return Connection(args.api or environ.get(ENV_API) or DEFAULT_API_URL,
                      args.token or environ.get(ENV_TOKEN) or "")


def init(defaults: Connection) -> None:
    """Put the defaults into a new session; an existing session keeps what it has."""
    st.session_state.setdefault(API_URL, defaults.api_url)
    st.session_state.setdefault(TOKEN, defaults.token)


def connection() -> Connection:
    return Connection(str(st.session_state.get(API_URL, DEFAULT_API_URL)),
                      str(st.session_state.get(TOKEN, "")))


def client() -> ApiClient:
    """A client for the session's current address and token."""
    conn = connection()
    return ApiClient(conn.api_url, conn.token)


def set_me(me: Me) -> None:
    st.session_state[ME] = (connection(), me)


def me() -> Me | None:
    """Who the current token stands for, as the sidebar last read it (None: not signed in)."""
    found = st.session_state.get(ME)
    if isinstance(found, tuple) and found[0] == connection():
        who: Me = found[1]
        return who
    return None


def is_admin() -> bool:
    """Whether the token may change the service; views leave out what it may not do."""
    who = me()
    return who is not None and who.admin


def watchers() -> Watchers:
    """The session's event-stream readers; replaced (old ones stopped) when the address or
    token changes, so no thread keeps reading with stale credentials."""
    conn = connection()
    current = st.session_state.get(WATCHERS)
    if not isinstance(current, tuple) or current[0] != conn:
        if isinstance(current, tuple):
            current[1].stop_all()
        current = (conn, Watchers(lambda: ApiClient(conn.api_url, conn.token)))
        st.session_state[WATCHERS] = current
    found: Watchers = current[1]
    return found


def remember_job(job_id: str) -> None:
    jobs = [job_id] + [j for j in submitted_jobs() if j != job_id]
    st.session_state[SUBMITTED] = jobs[:SUBMITTED_MAX]


def submitted_jobs() -> list[str]:
    return list(st.session_state.get(SUBMITTED, []))


def last_seed() -> int | None:
    seed = st.session_state.get(LAST_SEED)
    return seed if isinstance(seed, int) else None


def set_last_seed(seed: int) -> None:
    st.session_state[LAST_SEED] = seed


def take_prefill() -> dict[str, Any] | None:
    """What "Reuse prompt" left for Generate, removed so it fills the form only once."""
    found = st.session_state.pop(PREFILL, None)
    return found if isinstance(found, dict) else None


def set_prefill(values: dict[str, Any]) -> None:
    st.session_state[PREFILL] = values


def flash(kind: str, text: str) -> None:
    st.session_state[FLASH] = (kind, text)


def take_flash() -> tuple[str, str] | None:
    found = st.session_state.pop(FLASH, None)
    return found if isinstance(found, tuple) else None


def preview_cache() -> dict[tuple[str, str], bytes]:
    found: dict[tuple[str, str], bytes] = st.session_state.setdefault(PREVIEWS, {})
    return found


def thumbnail_cache() -> dict[str, bytes]:
    found: dict[str, bytes] = _bounded(THUMBNAILS, THUMBNAIL_CACHE_MAX)
    return found


def output_cache() -> dict[str, Output]:
    found: dict[str, Output] = _bounded(OUTPUTS, OUTPUT_CACHE_MAX)
    return found


def media_cache() -> dict[str, bytes]:
    found: dict[str, bytes] = _bounded(MEDIA, MEDIA_CACHE_MAX)
    return found


def _bounded(key: str, most: int) -> dict[str, Any]:
    """The session's cache under ``key``, emptied once it holds more than ``most``."""
    cache: dict[str, Any] = st.session_state.setdefault(key, {})
    if len(cache) > most:
        cache.clear()
    return cache


def blocked_cache() -> dict[tuple[str, str, str], str | None]:
    found: dict[tuple[str, str, str], str | None] = st.session_state.setdefault(BLOCKED, {})
    return found


def shown_progress() -> dict[str, Any]:
    found: dict[str, Any] = st.session_state.setdefault(SHOWN_PROGRESS, {})
    return found
