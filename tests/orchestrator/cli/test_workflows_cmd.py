"""`comfy-orch workflows list|check|schema` and `comfy-orch render`: one message per
problem, exit 2 when anything is wrong, never a traceback."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.cli import main
from orchestrator.comfy.core_classes import CORE_CLASSES, CORE_OUTPUT_CLASSES
from orchestrator.metadata import META_SCHEMA
from orchestrator.provision.server import free_port
from orchestrator.workflow import GRAPH_SCHEMA
from tests import graphs

SHIPPED = Path(__file__).resolve().parents[3] / "workflows"
Capture = pytest.CaptureFixture[str]

GOOD = {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "%prompt%, %mood%"}},
        "2": {"class_type": "KSampler", "inputs": {"seed": "%seed%", "steps": "%steps%"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}


def write(folder: Path, name: str, doc: object) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def errors(err: str) -> list[str]:
    return [line.removeprefix("error: ") for line in err.splitlines()]


# --- list -----------------------------------------------------------------------------------


def test_list_shows_each_workflow_its_kind_state_and_title(tmp_path: Path,
                                                            capsys: Capture) -> None:
    write(tmp_path, "good.json", GOOD)
    write(tmp_path, "good.meta.json", {"title": "Good one", "kind": "edit",
                                       "custom_placeholders": [{"find": "mood", "replace": ""}]})
    write(tmp_path, "bad.json", "{")
    code, out, _ = run(capsys, "workflows", "list", "--dir", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["bad", "-", "BROKEN"]
    assert lines[1].startswith(f"    error: {tmp_path}/bad.json, line 1, column 2: not valid JSON")
    assert lines[2].split() == ["good", "edit", "ok", "Good", "one"]


def test_list_of_the_shipped_folder_has_every_workflow_ok(capsys: Capture) -> None:
    code, out, _ = run(capsys, "workflows", "list", "--dir", str(SHIPPED))
    assert code == 0 and "txt2img" in out and "BROKEN" not in out and "warning" not in out


def test_list_of_a_missing_folder_says_so_and_exits_2(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "workflows", "list", "--dir", str(tmp_path / "nope"))
    assert code == 2 and "workflows folder" in err and "does not exist" in err


def test_list_of_an_empty_folder_says_how_to_add_one(tmp_path: Path, capsys: Capture) -> None:
    assert "add NAME.json files exported in API format" in run(
        capsys, "workflows", "list", "--dir", str(tmp_path))[1]


# --- check: files ---------------------------------------------------------------------------


def test_check_of_a_good_workflow_shows_the_placeholder_presence_list(
        tmp_path: Path, capsys: Capture) -> None:
    path = write(tmp_path, "good.json", GOOD)
    write(tmp_path, "good.meta.json", {"custom_placeholders": [{"find": "mood", "replace": ""}]})
    code, out, err = run(capsys, "workflows", "check", str(path))
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"{path}: ok"
    for mark in ("✅ %prompt%", "✅ %seed%", "✅ %steps%", "❌ %vae%", "❌ %char_avatar%",
                 "✅ %mood%"):
        assert mark in out


@pytest.mark.parametrize(("text", "message"), [
    ('{\n "1": {"class_type": "X",, }\n}', "wf.json, line 2, column 26: not valid JSON"),
    ('{"3": {"class_type": "KSampler",\n "inputs": {"steps": %steps%}}}',
     'wf.json, line 2, column 22: placeholder %steps% is not in quotes; wrap it in quotes'),
    ('{"nodes": [], "links": [], "version": 0.4}',
     "wf.json: is a ComfyUI UI export (it has \"nodes\" and \"links\"); export it again in API "
     "format"),
    ('{"7": {"inputs": {}}}', 'wf.json, at $.7: node 7 has no "class_type"'),
    ('{"2": {"class_type": "SaveImage", "inputs": {"images": ["5", 0]}}}',
     "wf.json, at $.2.inputs.images: node 2 (SaveImage) input 'images' links to node 5, which "
     "is not in the workflow"),
    ('{"7": {"class_type": "CLIPTextEncode", "inputs": {"text": "%negativ_prompt%"}},'
     ' "8": {"class_type": "PreviewAny", "inputs": {"source": ["7", 0]}}}',
     'wf.json: node 7 (CLIPTextEncode), input "text": unknown placeholder %negativ_prompt% '
     "(did you mean %negative_prompt%?)"),
])
def test_check_names_file_and_place_of_each_graph_problem_and_exits_2(
        tmp_path: Path, capsys: Capture, text: str, message: str) -> None:
    path = write(tmp_path, "wf.json", text)
    code, out, err = run(capsys, "workflows", "check", str(path))
    assert code == 2 and out.startswith(f"{path}: 1 problem(s)")
    [line] = errors(err)
    assert line.startswith(f"{tmp_path}/{message}")


def test_check_reports_every_metadata_problem_with_its_json_path(
        tmp_path: Path, capsys: Capture) -> None:
    path = write(tmp_path, "wf.json", GOOD)
    write(tmp_path, "wf.meta.json", {"placeholders": {"steps": {"min": "abc"}}, "kind": "x"})
    code, _, err = run(capsys, "workflows", "check", str(path))
    assert code == 2
    assert [line.removeprefix(f"{tmp_path}/") for line in errors(err)] == [
        "wf.meta.json, at $.kind: 'x' is not one of ['txt2img', 'img2img', 'edit', 'video', "
        "'upscale', 'utility']",
        "wf.meta.json, at $.placeholders.steps.min: 'abc' is not of type 'number'"]


def test_check_by_name_reads_the_folder_and_a_meta_file_stands_for_its_workflow(
        tmp_path: Path, capsys: Capture) -> None:
    write(tmp_path, "good.json", GOOD)
    meta = write(tmp_path, "good.meta.json", {"custom_placeholders": [
        {"find": "mood", "replace": ""}]})
    code, out, _ = run(capsys, "workflows", "check", "good", str(meta), "--dir", str(tmp_path))
    assert code == 0 and out.count(f"{tmp_path}/good.json: ok") == 1


def test_check_of_several_files_exits_2_if_one_is_bad(tmp_path: Path, capsys: Capture) -> None:
    write(tmp_path, "good.json", {"1": {"class_type": "X", "inputs": {}}})
    code, out, err = run(capsys, "workflows", "check", "good", "missing", "--dir", str(tmp_path))
    assert code == 2 and f"{tmp_path}/good.json: ok" in out
    assert errors(err) == ["no workflow named 'missing'"]


def test_check_of_every_shipped_workflow_passes(capsys: Capture) -> None:
    code, out, err = run(capsys, "workflows", "check", *map(str, SHIPPED.glob("*.json")))
    assert code == 0 and err == "" and out.count(": ok\n") == 7


# --- check: against a real server -----------------------------------------------------------


def test_check_against_a_node_names_the_installed_checkpoint_and_the_missing_pack(
        tmp_path: Path, comfy_url: str, capsys: Capture) -> None:
    graph: dict[str, Any] = graphs.txt2img(checkpoint="sdxl.safetensors", steps=0)
    graph["20"] = {"class_type": "ETN_SendImageWebSocket", "inputs": {"images": ["8", 0]}}
    path = write(tmp_path, "wf.json", graph)
    code, _, err = run(capsys, "workflows", "check", str(path), "--node", comfy_url)
    assert code == 2
    assert sorted(errors(err)) == sorted([
        f"{path}: node 4 (CheckpointLoaderSimple), input \"ckpt_name\": 'sdxl.safetensors' is "
        f"not installed on this server; installed: {graphs.TINY_CHECKPOINT} (on {comfy_url})",
        f'{path}: node 3 (KSampler), input "steps": 0 is below the minimum 1; use 1 or more '
        f"(on {comfy_url})",
        f"{path}: node 20 (ETN_SendImageWebSocket): node type ETN_SendImageWebSocket is not "
        "installed on this server; install the custom node pack comfyui-tooling-nodes "
        f"(https://github.com/Acly/comfyui-tooling-nodes) on that server (on {comfy_url})",
    ])


def test_check_of_the_shipped_workflows_against_a_real_node_passes(
        comfy_url: str, capsys: Capture) -> None:
    code, out, err = run(capsys, "workflows", "check", *map(str, SHIPPED.glob("*.json")),
                         "--node", comfy_url)
    assert code == 0 and err == ""


def test_check_against_a_node_that_does_not_answer_exits_2(tmp_path: Path,
                                                           capsys: Capture) -> None:
    path = write(tmp_path, "wf.json", GOOD)
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "workflows", "check", str(path), "--node", url)
    assert code == 2 and f"no ComfyUI answered at {url}" in err


# --- schema ---------------------------------------------------------------------------------


def test_schema_prints_the_graph_and_metadata_schemas(capsys: Capture) -> None:
    code, out, _ = run(capsys, "workflows", "schema")
    assert code == 0 and json.loads(out) == {"graph": GRAPH_SCHEMA, "metadata": META_SCHEMA}
    code, out, _ = run(capsys, "workflows", "schema", "--which", "metadata")
    assert code == 0 and json.loads(out) == META_SCHEMA


# --- render ---------------------------------------------------------------------------------


def test_render_prints_typed_api_json_and_the_seed(capsys: Capture) -> None:
    code, out, err = run(capsys, "render", "txt2img", "--dir", str(SHIPPED),
                         "--set", "model=m.safetensors", "--set", "steps=12",
                         "--set", "seed=77", "--set", "prompt=a fox, \"quoted\" %seed%")
    assert code == 0
    graph = json.loads(out)
    assert graph["3"]["inputs"]["steps"] == 12 and graph["3"]["inputs"]["seed"] == 77
    assert graph["6"]["inputs"]["text"] == 'a fox, "quoted" %seed%'
    assert err.splitlines() == ["seed: 77"]


def test_render_of_a_batch_prints_one_graph_and_seed_per_image(capsys: Capture) -> None:
    code, out, err = run(capsys, "render", "txt2img", "--dir", str(SHIPPED), "--count", "3",
                         "--set", "model=m", "--set", "seed=5", "--set", "vae=v")
    assert code == 0 and [g["3"]["inputs"]["seed"] for g in json.loads(out)] == [5, 6, 7]
    assert err.splitlines() == [
        "seeds: 5, 6, 7",
        "warning: a value for %vae% was given but the workflow does not use it"]


def test_render_sends_base64_images_and_names_upload_images(
        tmp_path: Path, capsys: Capture) -> None:
    image = write(tmp_path, "a.png", "not really a png")
    code, out, _ = run(capsys, "render", "avatar_img2img", "--dir", str(SHIPPED),
                       "--set", "model=m", "--image", f"char_avatar={image}")
    assert code == 0
    assert base64.b64decode(json.loads(out)["1"]["inputs"]["image"]) == b"not really a png"
    code, out, err = run(capsys, "render", "edit_main_image", "--dir", str(SHIPPED),
                         "--set", "model=m", "--image", f"main_image={image}")
    hint = json.loads(out)["1"]["inputs"]["image"]
    assert code == 0 and hint.startswith("main_image-") and f"as {hint}" in err


def test_render_expands_macros_from_the_command_line(tmp_path: Path, capsys: Capture) -> None:
    write(tmp_path, "m.json", {"1": {"class_type": "X", "inputs": {"t": "%mood%"}}})
    write(tmp_path, "m.meta.json", {"custom_placeholders": [
        {"find": "mood", "replace": "{{char}} and {{user}} feel {{getvar::feeling}}"}]})
    code, out, _ = run(capsys, "render", "m", "--dir", str(tmp_path), "--char", "Ada",
                       "--user", "Bo", "--var", "feeling=calm")
    assert code == 0 and json.loads(out)["1"]["inputs"]["t"] == "Ada and Bo feel calm"


def test_render_with_a_missing_value_exits_2_naming_node_input_and_placeholder(
        capsys: Capture) -> None:
    code, out, err = run(capsys, "render", "txt2img", "--dir", str(SHIPPED))
    assert code == 2 and out == ""
    assert err.startswith('error: txt2img: node 4 (CheckpointLoaderSimple), input "ckpt_name": '
                          "no value for placeholder %model%")


def test_render_of_an_unknown_workflow_exits_2(capsys: Capture) -> None:
    code, _, err = run(capsys, "render", "nope", "--dir", str(SHIPPED))
    assert code == 2 and err == "error: no workflow named 'nope'\n"


def test_a_set_without_equals_is_a_usage_error(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["render", "txt2img", "--set", "steps"])
    assert info.value.code == 2 and "'steps' is not KEY=VALUE" in capsys.readouterr().err


# --- output nodes, judged without a node -------------------------------------------------------


def test_check_without_a_node_refuses_core_classes_without_an_output_node(
        tmp_path: Path, capsys: Capture) -> None:
    """ComfyUI refuses such a graph ("Prompt has no outputs"); its core classes are known."""
    path = write(tmp_path, "nothing.json", {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}})
    code, out, err = run(capsys, "workflows", "check", str(path))
    assert code == 2 and out.startswith(f"{path}: 1 problem(s)")
    assert errors(err) == [f"{path}: the workflow has no output node, so ComfyUI would refuse "
                           'it ("Prompt has no outputs"); add one such as SaveImage or '
                           "PreviewImage"]


@pytest.mark.parametrize("output", ["SaveImage", "PreviewImage", "SaveAnimatedWEBP"])
def test_check_without_a_node_accepts_a_core_output_node(tmp_path: Path, capsys: Capture,
                                                          output: str) -> None:
    path = write(tmp_path, "fine.json", {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}},
        "2": {"class_type": output, "inputs": {"images": ["1", 0]}}})
    code, out, err = run(capsys, "workflows", "check", str(path))
    assert (code, err) == (0, "") and out.startswith(f"{path}: ok")
    assert "note:" not in out


def test_check_without_a_node_says_a_custom_class_cannot_be_judged(
        tmp_path: Path, capsys: Capture) -> None:
    path = write(tmp_path, "custom.json", {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}},
        "2": {"class_type": "ETN_SendImageWebSocket", "inputs": {"images": ["1", 0]}}})
    code, out, err = run(capsys, "workflows", "check", str(path))
    assert (code, err) == (0, "")
    assert (f"note: {path} has no ComfyUI core output node; whether ETN_SendImageWebSocket "
            "(not core classes) is one only a node can tell: check again with --node URL") in out


def test_the_core_classes_agree_with_a_real_node(comfy_url: str) -> None:
    """Every class the node's own ComfyUI ships is known offline, with its output flag."""
    info = requests.get(f"{comfy_url}/object_info", timeout=60).json()
    stock = {name: bool(spec.get("output_node")) for name, spec in info.items()
             if not str(spec.get("python_module", "")).startswith("custom_nodes.comfy_nodes")}
    assert set(stock) <= CORE_CLASSES, sorted(set(stock) - CORE_CLASSES)
    assert {name for name, output in stock.items() if output} == (
        set(stock) & CORE_OUTPUT_CLASSES)


def test_check_of_a_deeply_nested_file_names_it_instead_of_a_traceback(
        tmp_path: Path, capsys: Capture) -> None:
    path = write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "workflows", "check", str(path))
    assert code == 2
    assert errors(err) == [f"{path}, line 1, column 65: nests arrays and objects deeper than 64 "
                           "levels; an API-format workflow is about 4 deep, so this is not one"]
