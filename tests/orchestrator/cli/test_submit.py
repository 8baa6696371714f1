"""`comfy-orch submit FILE --node URL --out DIR` against a real ComfyUI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.cli import main
from orchestrator.errors import ConfigError
from tests import graphs


def write(tmp_path: Path, graph: object, name: str = "wf.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(graph))
    return path


@pytest.mark.every_comfyui
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


@pytest.mark.parametrize("count", ["9", "0"])
def test_a_count_out_of_range_is_one_line_and_exit_2(tmp_path: Path, count: str) -> None:
    """Run as a real process: no traceback, one line naming the flag and the range."""
    wf = write(tmp_path, graphs.solid_image())
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "submit", str(wf), "--count", count,
         "--node", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: --count {count}: give 1 to 8 images per job"


def test_a_missing_file_says_no_such_file_and_what_to_give(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "nope.json", "--node", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nope.json: no such file; give the path of an API-format")
    assert "no workflow named" not in err


def test_outputs_of_two_runs_never_collide_and_seeds_are_printed(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "wfs"
    folder.mkdir()
    graph = graphs.solid_image(8, 8, "#102030")
    graph["1"]["inputs"]["seed"] = "%seed%"
    (folder / "swatch.json").write_text(json.dumps(graph))
    argv = ["submit", "swatch", "--dir", str(folder), "--node", comfy_url, "--count", "2",
            "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data")]
    written: list[str] = []
    for _ in range(2):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        written += out.splitlines()
        assert err.count(": seed ") == 2
    assert len(set(written)) == 4 and all(Path(p).exists() for p in written)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        Path(p).name for p in written)


def test_an_existing_output_name_is_kept_unless_forced(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli.submit_cmd import _finish
    from orchestrator.service import Orchestrator

    wf = write(tmp_path, graphs.solid_image(8, 8, "#00ff00", seed=3))
    out = tmp_path / "out"
    assert main(["submit", str(wf), "--node", comfy_url, "--out", str(out),
                 "--data", str(tmp_path / "data")]) == 0
    path = Path(capsys.readouterr().out.strip())
    path.write_bytes(b"mine")
    with Orchestrator(data_dir=tmp_path / "data", nodes=(), start=False) as orch:
        job = orch.get(orch.list().jobs[0].id)
        with pytest.raises(ConfigError, match="--force"):
            _finish(orch, job, out)
        assert path.read_bytes() == b"mine"
        assert _finish(orch, job, out, force=True) == 0
    assert path.read_bytes() != b"mine"


def test_a_rejected_graph_is_reported_once(
    comfy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(tmp_path, graphs.txt2img(steps=0))
    assert main(["submit", str(wf), "--node", comfy_url, "--data", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err.count("value 0 smaller than min 1") == 1
