"""Every workflow shipped in ``workflows/`` loads, passes every check, and runs for real.

The runs use the session's real ComfyUI (test node pack + tiny checkpoint) at <= 128 px:
base64 images go inline to ETN_LoadImageBase64, upload-mode images go through
``/upload/image`` and the name the server returned.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image

from orchestrator.comfy.client import ComfyClient
from orchestrator.metadata import Kind
from orchestrator.registry import WorkflowRegistry
from orchestrator.rendering import Rendered, fill_uploaded, render_workflow
from orchestrator.validation import check_against_object_info, check_placeholders
from orchestrator.workflow import GRAPH_SCHEMA, Workflow
from placeholders import used_names
from tests.graphs import TINY_CHECKPOINT

SHIPPED = Path(__file__).resolve().parents[2] / "workflows"
NAMES = sorted(p.name.removesuffix(".json") for p in SHIPPED.glob("*.json")
               if not p.name.endswith(".meta.json"))
SAMPLING = {"model": TINY_CHECKPOINT, "steps": 2, "width": 64, "height": 64,
            "prompt": "a red fox", "negative_prompt": "blurry"}
RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)


def png(size: tuple[int, int], colour: tuple[int, int, int] = RED) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def quadrants(side: int = 64) -> bytes:
    """Red, green / blue, white quadrants: a crop shows which part it took."""
    image = Image.new("RGB", (side, side))
    half = side // 2
    for (x, y), colour in {(0, 0): RED, (half, 0): GREEN, (0, half): BLUE,
                           (half, half): WHITE}.items():
        image.paste(colour, (x, y, x + half, y + half))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def registry() -> Iterator[WorkflowRegistry]:
    with WorkflowRegistry(SHIPPED, watch=False) as reg:
        yield reg


@pytest.fixture(scope="module")
def client(comfy_url: str) -> Iterator[ComfyClient]:
    with ComfyClient(comfy_url) as c:
        yield c


@pytest.fixture(scope="module")
def object_info(client: ComfyClient) -> dict[str, Any]:
    return client.object_info()


# --- what ships -------------------------------------------------------------------------------


def test_the_promised_workflows_ship_under_their_names() -> None:
    assert {"txt2img", "Default_Comfy_Workflow", "Char_Avatar_Comfy_Workflow",
            "avatar_img2img", "edit_main_image", "avatar_aspect_crop", "image_crop"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_shipped_workflow_loads_with_metadata_and_no_warnings(
        registry: WorkflowRegistry, name: str) -> None:
    [status] = [s for s in registry.list() if s.name == name]
    assert status.ok and status.warnings == ()
    workflow = registry.get(name)
    assert (SHIPPED / f"{name}.meta.json").is_file()
    assert workflow.meta.title and workflow.meta.description
    jsonschema.validate(workflow.graph, GRAPH_SCHEMA)
    assert check_placeholders(workflow) == []


def test_the_kinds_cover_text_image_edit_and_utility(registry: WorkflowRegistry) -> None:
    kinds = {registry.get(name).meta.kind for name in NAMES}
    assert {Kind.TXT2IMG, Kind.IMG2IMG, Kind.EDIT, Kind.UTILITY} <= kinds


def test_sillytaverns_defaults_use_exactly_sillytaverns_placeholders(
        registry: WorkflowRegistry) -> None:
    common = {"prompt", "negative_prompt", "model", "sampler", "scheduler", "steps", "scale",
              "denoise", "seed"}
    assert used_names(registry.get("Default_Comfy_Workflow").graph) == common | {"width",
                                                                                 "height"}
    assert used_names(registry.get("Char_Avatar_Comfy_Workflow").graph) == common | {
        "char_avatar"}


@pytest.mark.parametrize("name", NAMES)
def test_each_shipped_workflow_passes_the_real_servers_preflight(
        registry: WorkflowRegistry, object_info: dict[str, Any], name: str) -> None:
    workflow = registry.get(name)
    assert check_against_object_info(workflow.graph, object_info) == []


# --- real runs ------------------------------------------------------------------------------


def run(client: ComfyClient, object_info: dict[str, Any], workflow: Workflow,
        values: Mapping[str, object], images: Mapping[str, bytes] | None = None) -> Image.Image:
    """Render, pre-flight, upload what needs uploading, run; return the single output."""
    rendered = render_workflow(workflow, values, rng=random.Random(), images=images or {})
    assert check_against_object_info(rendered.graph, object_info) == []
    result = client.run(_uploaded(client, rendered), timeout=240)
    [output] = [f for f in result.outputs if f.type == "output"]
    return Image.open(io.BytesIO(client.view(output))).convert("RGB")


def _uploaded(client: ComfyClient, rendered: Rendered) -> dict[str, Any]:
    names = {u.placeholder: client.upload_image(u.data, u.filename_hint)
             for u in rendered.uploads}
    return fill_uploaded(rendered, names)


@pytest.mark.parametrize("name", ["txt2img", "Default_Comfy_Workflow"])
def test_text_to_image_runs_on_the_tiny_checkpoint(
        registry: WorkflowRegistry, client: ComfyClient, object_info: dict[str, Any],
        name: str) -> None:
    image = run(client, object_info, registry.get(name), {**SAMPLING, "width": 128})
    assert image.size == (128, 64)


@pytest.mark.parametrize("name", ["Char_Avatar_Comfy_Workflow", "avatar_img2img"])
def test_avatar_image_to_image_runs_with_the_avatar_inline_as_base64(
        registry: WorkflowRegistry, client: ComfyClient, object_info: dict[str, Any],
        name: str) -> None:
    workflow = registry.get(name)
    rendered = render_workflow(workflow, SAMPLING, rng=random.Random(),
                               images={"char_avatar": png((64, 64))})
    assert rendered.uploads == ()
    image = run(client, object_info, workflow, {**SAMPLING, "denoise": 0.5},
                images={"char_avatar": png((64, 64))})
    assert image.size == (64, 64)


def test_edit_uploads_the_main_image_and_runs_on_it(
        registry: WorkflowRegistry, client: ComfyClient, object_info: dict[str, Any]) -> None:
    workflow = registry.get("edit_main_image")
    image = run(client, object_info, workflow, {**SAMPLING, "prompt": "wearing a winter coat",
                                                "height": 128},
                images={"main_image": png((96, 96), BLUE)})
    assert image.size == (64, 128)


def test_avatar_crop_resizes_and_centre_crops_to_an_aspect_ratio(
        registry: WorkflowRegistry, client: ComfyClient, object_info: dict[str, Any]) -> None:
    workflow = registry.get("avatar_aspect_crop")
    image = run(client, object_info, workflow, {"width": 96, "height": 48, "method": "area"},
                images={"char_avatar": quadrants()})
    assert image.size == (96, 48)
    # a square scaled to 96 wide keeps its middle band: red above green at the left/right
    assert image.getpixel((5, 5)) == RED and image.getpixel((90, 42)) == WHITE


def test_image_crop_cuts_the_requested_region(
        registry: WorkflowRegistry, client: ComfyClient, object_info: dict[str, Any]) -> None:
    workflow = registry.get("image_crop")
    image = run(client, object_info, workflow, {"x": 32, "y": 0, "width": 32, "height": 32},
                images={"image": quadrants()})
    assert image.size == (32, 32) and image.getpixel((16, 16)) == GREEN
