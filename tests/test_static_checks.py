"""The style rules hold for the whole tree: ruff (incl. complexity) and mypy --strict.

mypy is started when the session is collected (``tests/early_checks.py``) and only read
here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import early_checks

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "orchestrator", "placeholders", "ui", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(600)
def test_mypy_strict_finds_nothing() -> None:
    code, output = early_checks.result(early_checks.MYPY)
    assert code == 0, output
