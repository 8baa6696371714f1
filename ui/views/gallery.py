"""Gallery: a thumbnail grid with filters, and each image's detail with the values and seed
that made it; reuse its prompt in Generate, regenerate it with a new or the same seed,
download or delete it.

The grid is one ``GET /v1/outputs`` page: the token's own images and public ones, newest
first, filtered by character, conversation and workflow (and by owner, for an admin's
token, which sees every owner's images).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import streamlit as st

from ui import outputs, state, widgets
from ui.api import ApiClient, PanelError
from ui.models import Output, OutputPage

GENERATE_PAGE = "views/generate.py"
GALLERY_LIMIT = 60
REGENERATED = "gallery:regenerated"  # job id of the last regenerate, shown under the detail
FILTERS = ("Character", "Conversation", "Workflow", "Owner")


@dataclass(frozen=True)
class Filters:
    character: str = ""
    conversation: str = ""
    workflow: str = ""
    owner: str = ""

    def query(self) -> dict[str, str | None]:
        """The filters as ``GET /v1/outputs`` parameters (blank ones left out)."""
        return {k: v or None for k, v in asdict(self).items()}


def render() -> None:
    st.title("Gallery")
    widgets.show_flash()
    client = state.client()
    linked = st.query_params.get(widgets.OUTPUT_PARAM)
    if linked:  # a thumbnail's link: open that output, once
        st.session_state[state.SELECTED_OUTPUT] = linked
        del st.query_params[widgets.OUTPUT_PARAM]
    selected = st.session_state.get(state.SELECTED_OUTPUT)
    if selected:
        _detail(client, str(selected))
    filters = _filters(admin=state.is_admin())
    cursors: list[str] = st.session_state.setdefault(state.GALLERY_CURSORS, [])
    try:
        page = _page(client, filters, cursors[-1] if cursors else None)
    except PanelError as exc:
        st.error(str(exc))
        return
    if not page.outputs:
        st.info("No images match: generate some, or change the filters.")
        return
    st.caption(f"{len(page.outputs)} image(s)")
    outputs.output_grid([(o, _caption(o)) for o in page.outputs], key="gallery", columns=5)
    widgets.pager(cursors, page.next_cursor, key="gallery")


def _caption(out: Output) -> str:
    """The workflow and the seed the image was made with (a raw graph's own seed is in
    the graph, so none is claimed)."""
    seed = "" if out.seed is None else f" · seed {out.seed}"
    return f"{out.workflow or 'raw graph'}{seed}"


def shown_values(out: Output) -> dict[str, object]:
    """The values as asked for, less the seed: a request's -1 ("random") would read as
    the seed, which is shown on its own as the one used."""
    return {k: v for k, v in out.values.items() if k != "seed"}


def _filters(*, admin: bool) -> Filters:
    shown = FILTERS if admin else FILTERS[:-1]  # only an admin sees other owners' images
    cols = st.columns(len(shown))
    return Filters(*(c.text_input(label, key=f"gallery:{label.lower()}",
                                  on_change=_first_page).strip()
                     for c, label in zip(cols, shown, strict=True)))


def _first_page() -> None:
    st.session_state[state.GALLERY_CURSORS] = []


def _page(client: ApiClient, filters: Filters, cursor: str | None) -> OutputPage:
    page = client.outputs(limit=GALLERY_LIMIT, cursor=cursor, **filters.query())
    # A node's UI values (text, numbers: kind "value") are outputs too, but no picture.
    page = page.model_copy(update={"outputs": [o for o in page.outputs if o.kind != "value"]})
    state.output_cache().update((o.id, o) for o in page.outputs)
    return page


def _output(client: ApiClient, output_id: str) -> Output:
    cache = state.output_cache()
    if output_id not in cache:
        cache[output_id] = client.output(output_id)
    return cache[output_id]


def _detail(client: ApiClient, output_id: str) -> None:
    try:
        out = _output(client, output_id)
        data = client.content(output_id)
    except PanelError as exc:
        st.error(str(exc))
        st.session_state.pop(state.SELECTED_OUTPUT, None)
        return
    with st.container(border=True):
        picture, info = st.columns(2)
        with picture:
            outputs.show(out, data)
        with info:
            _facts(out)
            _actions(client, out, data)
    _regenerated(client)


def _facts(out: Output) -> None:
    seed = "" if out.seed is None else f" · seed `{out.seed}`"
    st.markdown(f"**{out.workflow or 'raw graph'}**{seed} · {_measure(out)}{out.visibility}")
    st.caption(f"owner {out.owner} · character {out.character or '—'} · conversation "
               f"{out.conversation or '—'} · job `{out.job_id}` · output `{out.id}`")
    st.json(shown_values(out), expanded=True)


def _measure(out: Output) -> str:
    """The picture's size and the clip's length, where the service could read them."""
    size = f"{out.width}×{out.height} · " if out.width and out.height else ""
    return size + (f"{out.duration:.1f} s · " if out.duration else "")


def _actions(client: ApiClient, out: Output, data: bytes) -> None:
    top, bottom = st.columns(3), st.columns(3)
    if top[0].button("Reuse prompt", key="gallery:reuse", disabled=out.workflow is None):
        _reuse(out)
    if top[1].button("New seed", key="gallery:new-seed", help="regenerate with a new seed"):
        _regenerate(client, out, None)
    if top[2].button("Same seed", key="gallery:same-seed", disabled=out.seed is None,
                     help="regenerate with this image's seed"):
        _regenerate(client, out, out.seed)
    bottom[0].download_button("Download", data, file_name=out.filename, mime=out.mime,
                              key="gallery:download")
    if bottom[1].button("Delete", key="gallery:delete"):
        _delete(client, out)
    if bottom[2].button("Close", key="gallery:close"):
        st.session_state.pop(state.SELECTED_OUTPUT, None)
        st.rerun()


def _reuse(out: Output) -> None:
    state.set_prefill({"workflow": out.workflow, "values": out.values,
                       "character": out.character, "conversation": out.conversation,
                       "visibility": out.visibility})
    if out.seed is not None:
        state.set_last_seed(out.seed)
    st.switch_page(GENERATE_PAGE)


def _regenerate(client: ApiClient, out: Output, seed: int | None) -> None:
    try:
        job = client.regenerate(out.id, seed)
    except PanelError as exc:
        st.error(str(exc))
        return
    state.remember_job(job.id)
    st.session_state[REGENERATED] = job.id


def _regenerated(client: ApiClient) -> None:
    job_id = st.session_state.get(REGENERATED)
    if not job_id:
        return
    try:
        widgets.job_card(client.job(str(job_id)))
    except PanelError as exc:
        st.error(str(exc))


def _delete(client: ApiClient, out: Output) -> None:
    try:
        client.delete_output(out.id)
    except PanelError as exc:
        st.error(f"Could not delete {out.filename}: {exc}")
        return
    st.session_state.pop(state.SELECTED_OUTPUT, None)
    state.output_cache().pop(out.id, None)
    state.flash("success", f"Deleted {out.filename}")
    st.rerun()


if __name__ == "__main__":
    render()
