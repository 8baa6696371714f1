"""`comfy-orch submit FILE --node URL --out DIR` against a real ComfyUI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.cli import main
from tests import graphs


def write(tmp_path: Path, graph: object, name: str = "wf.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(graph))
    return path


def test_submit_writes_outputs_and_prints_their_paths(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(tmp_path, graphs.solid_image(32, 16, "#0000ff", seed=11))
    code = main(["submit", str(wf), "--node", comfy_url, "--out", str(tmp_path / "out"),
                 "--data", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert code == 0
    paths = [Path(line) for line in out.splitlines()]
    assert len(paths) == 1 and paths[0].parent == tmp_path / "out"
    with Image.open(paths[0]) as image:
        assert image.size == (32, 16)
    assert "wf 1/1 100%" in err and "wf 1/1 done" in err  # plain progress lines, not a tty


def test_failing_graph_exits_1_with_node_and_message(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(tmp_path, graphs.failing("out of paint", seed=12))
    assert main(["submit", str(wf), "--node", comfy_url, "--out", str(tmp_path),
                 "--data", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert "error: node 2 (OrchTestFail) failed: RuntimeError: out of paint" in err
    assert "Traceback" not in err


def test_rejected_graph_exits_2_with_per_input_lines(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(tmp_path, graphs.txt2img(steps=0))
    assert main(["submit", str(wf), "--node", comfy_url, "--data", str(tmp_path / "d")]) == 2
    assert "node 3 (KSampler) input 'steps': value 0 smaller than min 1" in capsys.readouterr().err


def test_unreachable_node_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    """Run as a real process: exit code and stderr exactly as a user sees them."""
    wf = write(tmp_path, graphs.solid_image())
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "submit", str(wf), "--node", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: no ComfyUI answered at http://127.0.0.1:9 (connection refused); "
        "start one or configure another node"
    )


def test_bad_file_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"3": {"class_type": "KSampler", "inputs": {"steps": %steps%}}}')
    assert main(["submit", str(bad), "--node", "http://127.0.0.1:9"]) == 2
    assert f"error: {bad}, line 1" in capsys.readouterr().err


def test_registry_workflow_with_values_and_count_runs_through_the_pool(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "wfs"
    folder.mkdir()
    graph = graphs.solid_image(8, 8, "%color%")
    graph["1"]["inputs"]["seed"] = "%seed%"
    (folder / "swatch.json").write_text(json.dumps(graph))
    code = main(["submit", "swatch", "--dir", str(folder), "--node", comfy_url,
                 "--set", "color=#123456", "--set", "seed=5", "--count", "2",
                 "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert code == 0, err
    pixels = []
    for line in out.splitlines():
        with Image.open(line) as image:
            pixels.append(image.convert("RGB").getpixel((0, 0)))
    assert pixels == [(0x12, 0x34, 0x56)] * 2
    assert "swatch 1/2" in err and "swatch 2/2" in err


def test_unknown_placeholder_value_problem_exits_2(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = graphs.solid_image()
    graph["1"]["inputs"]["color"] = "%colr%"
    wf = write(tmp_path, graph)
    assert main(["submit", str(wf), "--node", comfy_url, "--data", str(tmp_path / "d")]) == 2
    assert "%colr%" in capsys.readouterr().err


def test_ctrl_c_cancels_the_job_cleanly(comfy_url: str, tmp_path: Path) -> None:
    """A real process gets SIGINT mid-run: exit 130, the job recorded as canceled."""
    import signal

    from orchestrator.service import Orchestrator

    graph = {"1": {"class_type": "OrchTestSleep",
                   "inputs": {"seconds": 60.0, "steps": 60, "seed": 99}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "long"}}}
    wf = write(tmp_path, graph, "long.json")
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "submit", str(wf), "--node", comfy_url,
         "--data", str(data)], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # progress lines: the sleep node is running
        if "OrchTestSleep" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    tail = proc.stderr.read()
    proc.stderr.close()
    assert "canceled" in tail and "Traceback" not in tail
    with Orchestrator(data_dir=data, start=False) as orch:
        assert orch.list().jobs[0].status.value == "canceled"
