"""Pre-flight checks find what ComfyUI would reject, each problem naming node and input.

The pure tests feed ``/object_info`` excerpts in each of ComfyUI's three input-spec shapes;
the ``comfy_url`` tests check real graphs against a real server's ``/object_info``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.comfy.client import ComfyClient
from orchestrator.errors import GraphRejected
from orchestrator.validation import (
    InputSpec,
    Problem,
    ProblemCode,
    check_against_object_info,
    check_placeholders,
    raise_for_problems,
)
from orchestrator.workflow import Graph, load_workflow
from placeholders import UploadRequest
from tests import graphs

INFO: dict[str, Any] = {
    "CheckpointLoaderSimple": {
        "input": {"required": {"ckpt_name": [["base.safetensors", "dream.safetensors"], {}]}},
        "output": ["MODEL", "CLIP", "VAE"], "output_node": False},
    "KSamplerLite": {
        "input": {"required": {
            "model": ["MODEL"],
            "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
            "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}],
            "sampler_name": [["euler", "euler_ancestral", "dpmpp_2m"]]},
            "optional": {"add_noise": ["BOOLEAN", {"default": True}]}},
        "output": ["LATENT"], "output_node": False},
    "ScaleToPixels": {
        "input": {"required": {
            "upscale_method": ["COMBO", {"options": ["nearest-exact", "bilinear", "lanczos"]}],
            "megapixels": ["FLOAT", {"min": 0.01, "max": 16.0}]}},
        "output": ["IMAGE"], "output_node": False},
    "LoadImageOutput": {
        "input": {"required": {"image": ["COMBO", {"image_upload": True,
                                                   "remote": {"route": "/internal/files"}}]}},
        "output": ["IMAGE", "MASK"], "output_node": False},
    "LoadImage": {
        "input": {"required": {"image": [["cat.png"], {"image_upload": True}]}},
        "output": ["IMAGE", "MASK"], "output_node": False},
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
        "output": [], "output_node": True},
}


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def check(*nodes: dict[str, Any]) -> list[Problem]:
    graph = {str(i + 1): n for i, n in enumerate(nodes)}
    return check_against_object_info(graph, INFO)


def messages(*nodes: dict[str, Any]) -> list[str]:
    return [str(p) for p in check(*nodes)]


SAVE = node("SaveImage", images=["1", 0], filename_prefix="x")


# --- the three input-spec shapes -----------------------------------------------------------


def test_input_specs_read_all_three_shapes() -> None:
    assert InputSpec.parse(["INT", {"min": 1}]) == InputSpec("INT", {"min": 1})
    assert InputSpec.parse([["a", "b"]]).values == ("a", "b")
    assert InputSpec.parse(["COMBO", {"options": ["x"]}]).values == ("x",)
    assert InputSpec.parse(["COMBO", {"remote": {}}]).values is None
    assert InputSpec.parse(["IMAGE"]).kind == "IMAGE"


def test_a_valid_graph_has_no_problems() -> None:
    assert check(node("ScaleToPixels", upscale_method="lanczos", megapixels=1.0), SAVE) == []


# --- each problem and its message ----------------------------------------------------------


def test_an_unknown_node_type_says_a_custom_node_pack_is_missing() -> None:
    assert messages(node("ETN_LoadImageBase64", image="x"), SAVE) == [
        "node 1 (ETN_LoadImageBase64): node type ETN_LoadImageBase64 is not installed on this "
        "server; install the custom node pack comfyui-tooling-nodes "
        "(https://github.com/Acly/comfyui-tooling-nodes) on that server"]


def test_a_misspelt_node_type_gets_a_did_you_mean_and_metadata_can_name_a_pack() -> None:
    graph = {"1": node("SaveImag", images=["1", 0]), "2": node("Mine")}
    typo, mine = check_against_object_info(graph, INFO, node_packs={"Mine": "my-pack"})
    assert typo.code is mine.code is ProblemCode.UNKNOWN_CLASS
    assert "(did you mean SaveImage?)" in str(typo) and "ComfyUI Manager" in str(typo)
    assert str(mine).endswith("install the custom node pack my-pack on that server")


def test_a_missing_required_input_names_it_and_gives_comfyuis_default() -> None:
    [message] = messages(node("ScaleToPixels", upscale_method="lanczos"), SAVE)
    assert message == ('node 1 (ScaleToPixels), input "megapixels": required input is missing; '
                       "add it")


def test_a_missing_link_input_says_what_to_link() -> None:
    problems = check(node("KSamplerLite", steps=20, cfg=7.0, sampler_name="euler"))
    assert [str(p) for p in problems if p.input_name == "model"] == [
        'node 1 (KSamplerLite), input "model": required input is missing; link it to a node '
        "that outputs MODEL"]


def test_values_outside_min_and_max_are_named_with_the_limit() -> None:
    low = node("ScaleToPixels", upscale_method="lanczos", megapixels=0.0)
    high = node("ScaleToPixels", upscale_method="lanczos", megapixels=99)
    found = check(low, high, SAVE)
    assert [(p.code, p.received) for p in found] == [
        (ProblemCode.TOO_SMALL, 0.0), (ProblemCode.TOO_BIG, 99)]
    assert str(found[0]).endswith("0.0 is below the minimum 0.01; use 0.01 or more")
    assert str(found[1]).endswith("99 is above the maximum 16.0; use 16.0 or less")


def test_a_checkpoint_not_installed_suggests_the_installed_ones_closest_first() -> None:
    [message] = messages(node("ScaleToPixels", upscale_method="lanczos", megapixels=1.0), SAVE,
                         node("CheckpointLoaderSimple", ckpt_name="dreem.safetensors"))
    assert message == (
        'node 3 (CheckpointLoaderSimple), input "ckpt_name": \'dreem.safetensors\' is not '
        "installed on this server; installed: dream.safetensors, base.safetensors")


def test_a_new_style_combo_value_is_checked_against_its_options() -> None:
    [problem] = check(node("ScaleToPixels", upscale_method="cubic", megapixels=1.0), SAVE)
    assert problem.code is ProblemCode.NOT_IN_LIST and "installed: " in problem.message


def test_a_remote_combo_without_values_accepts_anything() -> None:
    assert check(node("LoadImageOutput", image="whatever.png [output]"), SAVE) == []


def test_an_image_not_uploaded_says_to_upload_it() -> None:
    [message] = messages(node("LoadImage", image="dog.png"), SAVE)
    assert message.endswith("'dog.png' is not in the server's input folder; upload it to the "
                            "server first (or give the name /upload/image returned)")


def test_a_number_input_given_text_is_a_type_problem() -> None:
    [problem] = [p for p in check(node("KSamplerLite", model=["2", 0], steps="20", cfg=7,
                                       sampler_name="euler"),
                                  node("CheckpointLoaderSimple", ckpt_name="base.safetensors"))
                 if p.code is ProblemCode.WRONG_TYPE]
    assert str(problem) == ("node 1 (KSamplerLite), input \"steps\": expects a whole number, "
                            "got '20'")


def test_a_boolean_given_as_text_is_caught_because_comfyui_reads_false_as_true() -> None:
    graph = {"1": node("CheckpointLoaderSimple", ckpt_name="base.safetensors"),
             "2": node("KSamplerLite", model=["1", 0], steps=4, cfg=7.0, sampler_name="euler",
                       add_noise="false")}
    [problem] = [p for p in check_against_object_info(graph, INFO)
                 if p.code is ProblemCode.WRONG_TYPE]
    assert problem.message == "expects true or false, got 'false'"


def test_a_literal_where_a_link_is_needed_says_which_output_type() -> None:
    [message] = messages(node("SaveImage", images="pic.png", filename_prefix="x"))
    assert message == ('node 1 (SaveImage), input "images": expects a link from a node that '
                       "outputs IMAGE, got the value 'pic.png'")


def test_a_link_of_the_wrong_type_names_both_ends() -> None:
    graph = {"1": node("CheckpointLoaderSimple", ckpt_name="base.safetensors"),
             "2": node("SaveImage", images=["1", 0], filename_prefix="x")}
    [problem] = check_against_object_info(graph, INFO)
    assert problem.code is ProblemCode.LINK_TYPE
    assert str(problem) == ('node 2 (SaveImage), input "images": expects IMAGE but node 1 '
                            "(CheckpointLoaderSimple) output 0 is MODEL; link a matching output")


def test_a_link_to_an_output_index_that_does_not_exist_is_named() -> None:
    graph = {"1": node("ScaleToPixels", upscale_method="lanczos", megapixels=1.0),
             "2": node("SaveImage", images=["1", 3], filename_prefix="x")}
    [problem] = check_against_object_info(graph, INFO)
    assert problem.code is ProblemCode.BAD_LINK and "which has only 1 output(s)" in str(problem)


def test_no_output_node_is_a_graph_level_problem() -> None:
    [problem] = check(node("ScaleToPixels", upscale_method="lanczos", megapixels=1.0))
    assert problem.code is ProblemCode.NO_OUTPUT and problem.node_id is None
    assert str(problem).startswith("the workflow has no output node")


def test_no_output_is_not_claimed_when_an_unknown_node_might_be_the_output() -> None:
    assert [p.code for p in check(node("MysterySave", x=1))] == [ProblemCode.UNKNOWN_CLASS]


def test_placeholders_and_upload_markers_are_left_for_render_time() -> None:
    marker = UploadRequest("main_image", b"png", "main_image-1.png")
    graph = {"1": node("LoadImage", image=marker),
             "2": node("CheckpointLoaderSimple", ckpt_name="%model%"),
             "3": node("ScaleToPixels", upscale_method="%method%", megapixels="%mp%"),
             "4": node("SaveImage", images=["3", 0], filename_prefix="%model%-%seed%")}
    assert check_against_object_info(graph, INFO) == []


def test_every_problem_is_found_in_one_pass() -> None:
    found = check(node("ScaleToPixels", upscale_method="cubic", megapixels=99),
                  node("Nope"), node("CheckpointLoaderSimple"))
    assert [p.code for p in found] == [ProblemCode.NOT_IN_LIST, ProblemCode.TOO_BIG,
                                       ProblemCode.UNKNOWN_CLASS, ProblemCode.MISSING_INPUT]


def test_problems_raise_graph_rejected_with_one_line_each() -> None:
    found = check(node("ScaleToPixels", upscale_method="cubic", megapixels=99))
    with pytest.raises(GraphRejected) as info:
        raise_for_problems(found, source="wf.json", node_url="http://127.0.0.1:1")
    lines = str(info.value).splitlines()
    assert lines[0] == ("wf.json cannot run on http://127.0.0.1:1: the workflow has no output "
                        "node, so ComfyUI would run nothing; add one such as SaveImage or "
                        "PreviewImage")
    assert len(lines) == 3 and info.value.problems[0].input_name == "upscale_method"
    raise_for_problems([], source="wf.json")  # nothing to report: no raise


# --- placeholders ----------------------------------------------------------------------------


def wf(graph: Graph, meta: dict[str, Any] | None = None) -> Any:
    return load_workflow("wf", json.dumps(graph), None if meta is None else json.dumps(meta))


def test_an_unknown_placeholder_gets_a_did_you_mean() -> None:
    graph = {"7": node("CLIPTextEncode", text="%negativ_prompt%"), "9": node("SaveImage")}
    [problem] = check_placeholders(wf(graph))
    assert str(problem) == ('node 7 (CLIPTextEncode), input "text": unknown placeholder '
                            "%negativ_prompt% (did you mean %negative_prompt%?)")
    assert problem.code is ProblemCode.UNKNOWN_PLACEHOLDER


def test_an_unknown_placeholder_without_a_near_name_says_how_to_declare_it() -> None:
    [problem] = check_placeholders(wf({"1": node("X", a="photo of %zqxj%")}))
    assert problem.message == ("unknown placeholder %zqxj% (declare it in the metadata's "
                               "placeholders or custom_placeholders)")


def test_declared_custom_and_comfyui_date_placeholders_are_known() -> None:
    graph = {"1": node("X", a="%mood%", b="%x%", c="%year%-%month%", d="%prompt%")}
    meta = {"placeholders": {"x": {"type": "int", "default": 1}},
            "custom_placeholders": [{"find": "%mood%", "replace": "calm"}]}
    assert check_placeholders(wf(graph, meta)) == []


# --- against a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def object_info(comfy_url: str) -> dict[str, Any]:
    with ComfyClient(comfy_url) as client:
        return client.object_info()


def test_the_tiny_txt2img_graph_passes_a_real_servers_preflight(object_info: Any) -> None:
    assert check_against_object_info(graphs.txt2img(), object_info) == []


def test_a_real_server_names_its_installed_checkpoint(object_info: Any) -> None:
    graph = graphs.txt2img(checkpoint="sd_xl_base_1.0.safetensors")
    [problem] = check_against_object_info(graph, object_info)
    assert problem.code is ProblemCode.NOT_IN_LIST and problem.node_id == "4"
    assert problem.message.endswith(f"installed: {graphs.TINY_CHECKPOINT}")


def test_a_real_server_reports_range_sampler_and_missing_pack(object_info: Any) -> None:
    graph = graphs.txt2img(steps=0)
    graph["3"]["inputs"]["sampler_name"] = "eulr"
    graph["20"] = node("SomePackNode", x=1)
    found = {(p.node_id, p.code) for p in check_against_object_info(graph, object_info)}
    assert found == {("3", ProblemCode.TOO_SMALL), ("3", ProblemCode.NOT_IN_LIST),
                     ("20", ProblemCode.UNKNOWN_CLASS)}


def test_a_real_servers_new_style_combo_is_checked(object_info: Any) -> None:
    graph = {"1": node("OrchTestSolidImage", width=8, height=8, color="#000", batch_size=1,
                       seed=0),
             "2": node("ImageScaleToTotalPixels", image=["1", 0], upscale_method="cubic",
                       megapixels=0.01),
             "3": node("SaveImage", images=["2", 0], filename_prefix="x")}
    required = object_info["ImageScaleToTotalPixels"]["input"]["required"]
    if "resolution_steps" in required:  # a required input since ComfyUI 0.30
        graph["2"]["inputs"]["resolution_steps"] = required["resolution_steps"][1]["default"]
    [problem] = check_against_object_info(graph, object_info)
    assert problem.input_name == "upscale_method" and "lanczos" in problem.message


# --- purity -----------------------------------------------------------------------------------

IO_MODULES = {"requests", "websocket", "watchdog", "sqlite3", "socket", "subprocess",
              "threading", "orchestrator.registry", "orchestrator.comfy.client"}


@pytest.mark.parametrize("module", ["metadata", "validation", "rendering", "workflow"])
def test_the_workflow_core_modules_import_no_io_module(module: str) -> None:
    source = Path(__file__).resolve().parents[2] / "orchestrator" / f"{module}.py"
    imported = set()
    for stmt in ast.walk(ast.parse(source.read_text())):
        if isinstance(stmt, ast.Import):
            imported |= {alias.name for alias in stmt.names}
        elif isinstance(stmt, ast.ImportFrom) and stmt.module:
            imported.add(stmt.module)
    assert not {name for name in imported
                if name in IO_MODULES or name.split(".")[0] in IO_MODULES}


# --- output nodes without a server --------------------------------------------------------------


def test_without_a_server_core_classes_alone_are_judged_for_an_output_node() -> None:
    from orchestrator.validation import check_outputs_offline, unjudged_classes

    no_output = {"1": node("EmptyImage", width=8, height=8),
                 "2": node("ImageInvert", image=["1", 0])}
    [problem] = check_outputs_offline(no_output)
    assert problem.code == ProblemCode.NO_OUTPUT and "Prompt has no outputs" in problem.message
    assert unjudged_classes(no_output) == []
    saved = {**no_output, "3": node("SaveAnimatedWEBP", images=["2", 0])}
    assert check_outputs_offline(saved) == [] and unjudged_classes(saved) == []
    custom = {**no_output, "3": node("ETN_SendImageWebSocket", images=["2", 0])}
    assert check_outputs_offline(custom) == []
    assert unjudged_classes(custom) == ["ETN_SendImageWebSocket"]
