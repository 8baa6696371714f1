"""Generate: pick a workflow (with its preview image), fill the fields its placeholders ask
for, submit, watch.

The fields come from the workflow (``ui.form.plan_form``): prompts, a style preset, the
size as an aspect ratio and quality tier or an exact width and height, the seed (-1 is
random; "Reuse last seed" keeps a character consistent), the image count, sampler settings
where the graph has them (samplers, schedulers and model files as the pool's nodes list
them), image uploads with a preview, and where the images belong.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import form, pool, state, widgets
from ui.api import ApiClient, ImageFile, PanelError
from ui.form import FieldSpec, FormPlan, Scope, Size
from ui.models import Node, WorkflowDetail, WorkflowSummary

PICKER = "gen:workflow"
SIZE_MODES = ("Aspect ratio", "Exact size")
JS_SAFE_INT = 2**53 - 1  # the browser holds numbers as doubles; larger ints lose digits
SHOWN_JOBS = 3  # cards of this session's latest submissions under the form
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp"]
PREVIEW_WIDTH = 256  # pixels
TUNING_LABEL = "Sampler settings ({})"
PROMPT_HEIGHT = 80  # pixels: three lines, the box grows as the user types
TEST_POOL_NOTE = (
    "This pool's only checkpoint is the random-weight test checkpoint, so its images are "
    "noise, by design: the form starts at {side}×{side} px and {steps} steps, which finish "
    "in seconds on a CPU. For real images add GPU boxes with a real checkpoint on the Nodes "
    "page, or start with `comfy-orch up --node http://GPU-BOX:8188`.")


def key(workflow: str, name: str) -> str:
    """The session-state key of one field, per workflow so switching keeps each's values."""
    return f"gen:{workflow}:{name}"


def render() -> None:
    st.title("Generate")
    widgets.show_flash()
    client = state.client()
    _apply_prefill(state.take_prefill())
    try:
        served = [w for w in client.workflows() if w.serving]
        nodes = client.nodes().nodes
    except PanelError as exc:
        st.error(str(exc))
        return
    if not served:
        st.info("No workflow is served yet: add one on the Workflows page.")
        return
    blocked = widgets.blocked_reasons(client, served, nodes)
    # the result beside the form, so Generate and the live job share the first screen
    form_column, result_column = st.columns([3, 2], gap="large")
    with form_column:
        _workflow_form(client, served, blocked, nodes)
    with result_column:
        _latest_jobs(client)


def _workflow_form(client: ApiClient, served: list[WorkflowSummary],
                   blocked: dict[str, str | None], nodes: list[Node]) -> None:
    chosen = _pick(served, blocked)
    _preview(client, chosen)
    detail, object_info = _load(client, chosen.name)
    if detail is None:
        return
    plan = form.plan_form(detail, object_info)
    quick = pool.only_test_checkpoint(nodes) and pool.quick(plan) != plan
    if quick:
        st.info(TEST_POOL_NOTE.format(side=pool.QUICK_SIDE, steps=pool.QUICK_STEPS),
                icon=":material/science:")
        plan = pool.quick(plan)
    _form(client, detail, plan, blocked=blocked.get(chosen.name), exact_size=quick)


def _apply_prefill(prefill: dict[str, Any] | None) -> None:
    """Write "Reuse prompt" values into the fields' keys before the widgets exist."""
    if not prefill or not prefill.get("workflow"):
        return
    workflow = str(prefill["workflow"])
    st.session_state[PICKER] = workflow
    values = {k: v for k, v in dict(prefill.get("values") or {}).items()
              if not isinstance(v, dict | list)}
    if "width" in values and "height" in values:
        st.session_state[key(workflow, "size_mode")] = SIZE_MODES[1]
    for name, value in values.items():
        st.session_state[key(workflow, name)] = value
    for name in ("character", "conversation", "visibility"):
        if prefill.get(name):
            st.session_state[key(workflow, name)] = prefill[name]
    state.flash("success", f"Filled from an earlier image of {workflow}")


def _pick(served: list[WorkflowSummary], blocked: dict[str, str | None]) -> WorkflowSummary:
    by_name = {w.name: w for w in pool.ordered(served)}
    if st.session_state.get(PICKER) not in by_name:
        st.session_state[PICKER] = pool.default_workflow(served, blocked)
    name = st.selectbox("Workflow", list(by_name), key=PICKER,
                        format_func=lambda n: pool.label(by_name[n], blocked.get(n)))
    return by_name[str(name)]


def _preview(client: ApiClient, workflow: WorkflowSummary) -> None:
    """The workflow's preview image, fetched once per version of it."""
    if workflow.preview_url is None:
        return
    cache = state.preview_cache()
    cached = (workflow.name, workflow.serving or "")
    if cached not in cache:
        try:
            cache[cached] = client.preview(workflow.name)
        except PanelError as exc:
            st.caption(f"No preview: {exc}")
            return
    st.image(cache[cached], caption=f"{workflow.title or workflow.name} (preview)",
             width=PREVIEW_WIDTH)


def _load(client: ApiClient, name: str) -> tuple[WorkflowDetail | None, dict[str, Any]]:
    try:
        detail = client.workflow(name)
        return detail, client.object_info(form.info_classes(detail))
    except PanelError as exc:
        st.error(str(exc))
        return None, {}


def _form(client: ApiClient, detail: WorkflowDetail, plan: FormPlan, *,
          blocked: str | None = None, exact_size: bool = False) -> None:
    meta = detail.meta or {}
    st.caption(f"{detail.kind or 'txt2img'} · {meta.get('cost_units', 1)} unit(s) per image")
    if detail.description:
        st.markdown(detail.description)
    entries: dict[str, Any] = {}
    entries |= _fields(detail.name, plan.prompts, text_area=True)
    style = _style(detail.name, plan.styles)
    size = _size(detail.name, meta, plan.size, exact=exact_size) if plan.has_size else Size()
    entries |= _seed(client, detail.name, plan.seed)
    count = _count(detail.name)
    # Generate comes before the less used fields, so it is on the first screen; it is drawn
    # into this slot once every field below has its value.
    slot = st.container()
    if plan.tuning:  # folded: with the form's full height, Generate would be off the screen
        with st.expander(TUNING_LABEL.format(", ".join(s.title.lower() for s in plan.tuning))):
            entries |= _fields(detail.name, plan.tuning)
    entries |= _fields(detail.name, plan.other)
    images = _images(detail.name, plan.images)
    scope = _scope(detail.name)
    with slot:
        if blocked:
            st.error(f"The pool cannot run {detail.name}: {blocked}", icon="⛔")
        if st.button("Generate", type="primary", key=key(detail.name, "submit"),
                     disabled=bool(blocked)):
            request = form.job_request(detail.name, entries, size=size, count=count,
                                       scope=scope, style=style)
            _submit(client, request, images)


def _fields(workflow: str, specs: list[FieldSpec], *, text_area: bool = False) -> dict[str, Any]:
    return {spec.name: _field(workflow, spec, text_area) for spec in specs}


def _seeded(k: str, default: Any) -> str:
    """``k`` with its first value set, so widgets never get both a default and a state."""
    st.session_state.setdefault(k, default)
    return k


def _field(workflow: str, spec: FieldSpec, text_area: bool) -> Any:
    k = key(workflow, spec.name)
    helptext = spec.help or None
    if spec.choices:
        options = list(spec.choices)
        first = spec.default if spec.default in options else options[0]
        return st.selectbox(spec.title, options, key=_seeded(k, first), help=helptext)
    if spec.type in ("int", "float"):
        return _number(spec, k)
    if spec.type == "bool":
        return st.checkbox(spec.title, key=_seeded(k, bool(spec.default)), help=helptext)
    default = "" if spec.default is None else str(spec.default)
    if text_area:
        return st.text_area(spec.title, key=_seeded(k, default), help=helptext,
                            height=PROMPT_HEIGHT)
    return st.text_input(spec.title, key=_seeded(k, default), help=helptext)


def _number(spec: FieldSpec, k: str) -> int | float | None:
    if spec.type == "int":
        low = None if spec.minimum is None else max(int(spec.minimum), -JS_SAFE_INT)
        high = None if spec.maximum is None else min(int(spec.maximum), JS_SAFE_INT)
        value = None if spec.default is None else int(spec.default)
        return st.number_input(spec.title, min_value=low, max_value=high, step=1,
                               key=_seeded(k, value), help=spec.help or None)
    value_f = None if spec.default is None else float(spec.default)
    low_f = None if spec.minimum is None else float(spec.minimum)
    high_f = None if spec.maximum is None else float(spec.maximum)
    return st.number_input(spec.title, min_value=low_f, max_value=high_f,
                           key=_seeded(k, value_f), help=spec.help or None)


def _style(workflow: str, styles: list[str]) -> str:
    if not styles:
        return ""
    chosen = st.selectbox("Style preset", ["", *styles], key=_seeded(key(workflow, "style"), ""),
                          format_func=lambda s: s or "none")
    return str(chosen or "")


def _size(workflow: str, meta: dict[str, Any], specs: list[FieldSpec], *,
          exact: bool = False) -> Size:
    mode = st.radio("Size", SIZE_MODES, horizontal=True,
                    key=_seeded(key(workflow, "size_mode"), SIZE_MODES[1 if exact else 0]))
    if mode == SIZE_MODES[0]:
        aspect = st.segmented_control("Aspect ratio", form.ASPECTS,
                                      key=_seeded(key(workflow, "aspect"), form.ASPECTS[0]))
        tier = st.selectbox("Quality tier", form.TIER_NAMES,
                            key=_seeded(key(workflow, "tier"), form.DEFAULT_TIER))
        return Size(aspect=str(aspect or form.ASPECTS[0]), tier=str(tier))
    step = int(meta.get("snap", 64))
    sides = [_side(workflow, spec, step, col) for spec, col in zip(specs, st.columns(2),
                                                                    strict=True)]
    return Size(width=sides[0], height=sides[1])


def _side(workflow: str, spec: FieldSpec, step: int, col: Any) -> int:
    low = int(spec.minimum or 1)
    default = int(spec.default) if spec.default is not None else 512
    value = col.number_input(spec.title, min_value=low, max_value=int(spec.maximum or 16384),
                             step=step, key=_seeded(key(workflow, spec.name), default))
    return int(value)


def _seed(client: ApiClient, workflow: str, spec: FieldSpec | None) -> dict[str, Any]:
    if spec is None:
        return {}
    k = _seeded(key(workflow, "seed"), form.RANDOM_SEED)
    cols = st.columns([3, 1, 1], vertical_alignment="bottom")
    seed = cols[0].number_input("Seed (-1 = random)", min_value=form.RANDOM_SEED,
                                max_value=JS_SAFE_INT, step=1, key=k)
    cols[1].button("Reuse last seed", key=k + ":reuse", on_click=_reuse_seed, args=(client, k))
    cols[2].button("Random", key=k + ":random", on_click=_set, args=(k, form.RANDOM_SEED))
    return {"seed": int(seed)}


def _reuse_seed(client: ApiClient, k: str) -> None:
    """Button callback: the seed of this session's newest image, read from the service."""
    for job_id in state.submitted_jobs():
        try:
            seeds = client.job(job_id).seeds
        except PanelError as exc:
            state.flash("error", str(exc))
            return
        if seeds:
            state.set_last_seed(seeds[-1])
            break
    seed = state.last_seed()
    if seed is None:
        state.flash("error", "No image generated in this session yet; its seed is reused")
        return
    st.session_state[k] = seed


def _set(k: str, value: Any) -> None:
    st.session_state[k] = value


def _count(workflow: str) -> int:
    count = st.segmented_control("Images", form.COUNTS, key=_seeded(key(workflow, "count"), 1))
    return int(count or 1)


def _upload_mb() -> int | None:
    """The service's limit on an input image (it refuses larger ones), as ``/v1/me`` said."""
    who = state.me()
    return None if who is None else who.upload_mb


def _images(workflow: str, specs: list[FieldSpec]) -> dict[str, ImageFile]:
    files: dict[str, ImageFile] = {}
    for spec in specs:
        upload = st.file_uploader(spec.title, type=IMAGE_TYPES, key=key(workflow, spec.name),
                                  help=spec.help or None, max_upload_size=_upload_mb())
        if upload is not None:
            data = upload.getvalue()
            st.image(data, caption=upload.name, width=192)
            files[spec.name] = (upload.name, data, upload.type or "image/png")
    return files


def _scope(workflow: str) -> Scope:
    cols = st.columns(3)
    character = cols[0].text_input("Character", key=key(workflow, "character"))
    conversation = cols[1].text_input("Conversation", key=key(workflow, "conversation"))
    visibility = cols[2].radio("Visibility", ["private", "public"], horizontal=True,
                               key=_seeded(key(workflow, "visibility"), "private"))
    return Scope(character, conversation, str(visibility))


def _submit(client: ApiClient, request: dict[str, Any], images: dict[str, ImageFile]) -> None:
    try:
        job = client.submit(request, images)
    except PanelError as exc:
        st.error(str(exc))
        return
    state.remember_job(job.id)
    st.success(f"Job {job.id} queued with {job.count} image(s)")


def _latest_jobs(client: ApiClient) -> None:
    recent = state.submitted_jobs()[:SHOWN_JOBS]
    if not recent:
        return
    st.subheader("Latest jobs")
    for job_id in recent:
        try:
            job = client.job(job_id)
        except PanelError as exc:
            st.error(str(exc))
            continue
        widgets.job_card(job)


if __name__ == "__main__":
    render()
