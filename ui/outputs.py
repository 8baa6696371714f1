"""A job's outputs as the panel draws them: each by its kind, as the service's record says.

A job's ``output_ids`` name pictures, sounds, clips, other files and the values a node
reported in its UI result (kind ``value``: text, numbers, objects). Each kind gets its own
element: an image its thumbnail, audio and video a player, another file its name, and a
value its key and what it holds, read from the record itself (a value has no picture, so a
thumbnail of it could only fail).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import streamlit as st

from ui import state
from ui.api import ApiClient, PanelError
from ui.models import Job, Output

THUMB_SIZE = 256  # pixels, longest side
GALLERY_LINK = "gallery?output={}"  # the Gallery page opened on one output
LISTED = 200  # records asked for in one page when a job's outputs are read
VALUE = "value"
PLAYED = frozenset({"audio", "video"})


def value_text(value: Any) -> str:
    """What a node reported, as text: a string as it is, a list of strings one per line,
    anything else as compact JSON. ComfyUI's UI results are lists (one entry per batch
    item), so a list of one is shown as its entry: ``["hello"]`` reads ``hello``."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def value_line(out: Output, *, numbered: bool = False) -> str:
    """``key: value``, with the item's number when the job made several."""
    where = f" (image {out.index + 1})" if numbered else ""
    return f"{out.key or out.filename}{where}: {value_text(out.value)}"


def file_captions(outputs: Sequence[Output]) -> list[tuple[Output, str]]:
    """Each file output with its kind and number among its kind ("image 2", "audio 1")."""
    counts: dict[str, int] = {}
    captioned = []
    for out in outputs:
        counts[out.kind] = counts.get(out.kind, 0) + 1
        captioned.append((out, f"{out.kind} {counts[out.kind]}"))
    return captioned


# --- reading the records --------------------------------------------------------------------


def records(client: ApiClient, job: Job) -> list[Output]:
    """The records of the job's outputs in its order, each read once per session: one
    listing of the job's outputs, then one by one whatever it did not hold."""
    cache = state.output_cache()
    if any(o not in cache for o in job.output_ids):
        page = client.outputs(job=job.id, limit=LISTED)
        cache.update((o.id, o) for o in page.outputs)
    for output_id in job.output_ids:
        if output_id not in cache:
            cache[output_id] = client.output(output_id)
    return [cache[o] for o in job.output_ids]


def thumbnail(client: ApiClient, output_id: str) -> bytes:
    """The output's thumbnail, fetched once per session (outputs never change)."""
    cache = state.thumbnail_cache()
    if output_id not in cache:
        cache[output_id] = client.thumbnail(output_id, THUMB_SIZE)
    return cache[output_id]


def media(client: ApiClient, output_id: str) -> bytes:
    """An audio or video output's bytes for its player, fetched once per session."""
    cache = state.media_cache()
    if output_id not in cache:
        cache[output_id] = client.content(output_id)
    return cache[output_id]


# --- drawing --------------------------------------------------------------------------------


def job_outputs(client: ApiClient, job: Job, *, key: str, open_page: str | None) -> None:
    """The job's values as ``key: value`` lines, then its files in a grid."""
    try:
        found = records(client, job)
    except PanelError as exc:
        st.error(f"The job's outputs could not be read: {exc}")
        return
    for out in found:
        if out.kind == VALUE:
            st.text(value_line(out, numbered=job.count > 1))
    files = [o for o in found if o.kind != VALUE]
    if files:
        output_grid(file_captions(files), key=key, open_page=open_page, columns=4)


def output_grid(tiles: Sequence[tuple[Output, str]], *, key: str,
                open_page: str | None = None, columns: int = 4) -> None:
    """Each file output drawn by its kind, with its caption; "Open" selects the output
    (and goes to ``open_page``)."""
    client = state.client()
    cols = st.columns(columns)
    for n, (out, caption) in enumerate(tiles):
        with cols[n % columns]:
            try:
                _tile(client, out, caption)
            except PanelError as exc:
                st.caption(f"{caption}: {exc}")
            if st.button("Open", key=f"{key}-open-{out.id}"):
                st.session_state[state.SELECTED_OUTPUT] = out.id
                if open_page:
                    st.switch_page(open_page)
                st.rerun()


def _tile(client: ApiClient, out: Output, caption: str) -> None:
    if out.kind == "image":
        st.image(thumbnail(client, out.id), caption=caption, link=GALLERY_LINK.format(out.id))
    elif out.kind in PLAYED:
        _player(out, media(client, out.id))
        st.caption(caption)
    else:
        st.caption(f"{caption}: {out.filename}")


def show(out: Output, data: bytes) -> None:
    """One output at full size: the picture, a player, the value, or the file's name."""
    if out.kind == "image":
        st.image(data, caption=out.filename)
    elif out.kind in PLAYED:
        _player(out, data)
        st.caption(out.filename)
    elif out.kind == VALUE:
        st.text(value_line(out))
    else:
        st.caption(f"{out.filename} · {out.mime} · {out.size_bytes} bytes")


def _player(out: Output, data: bytes) -> None:
    if out.kind == "audio":
        st.audio(data, format=out.mime)
    else:
        st.video(data, format=out.mime)
