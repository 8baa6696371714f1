"""The style rules hold for the whole tree: ruff (incl. complexity) and mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "orchestrator", "placeholders", "ui", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(600)
def test_mypy_strict_finds_nothing() -> None:
    done = run("mypy")  # packages and strictness come from pyproject.toml
    assert done.returncode == 0, done.stdout + done.stderr
