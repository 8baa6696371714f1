"""Checks of the whole tree that need CPU, not ComfyUI, started as soon as the session knows
it will run them.

mypy over the tree takes ~40 s of one core; most of the suite waits on ComfyUI nodes, so
the check runs alongside it at the lowest priority (it takes only CPU others leave) and
its test reads the result. A session that never reaches the test stops the process by its
PID.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600.0
MYPY = ("mypy",)  # packages and strictness come from pyproject.toml
MYPY_TEST = "test_mypy_strict_finds_nothing"  # in tests/test_static_checks.py


class EarlyCheck:
    """One ``python -m ARGV...`` run over the tree, started now, answered when asked."""

    def __init__(self, argv: Sequence[str]) -> None:
        self._out: IO[bytes] = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", *argv], cwd=ROOT,
            stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def result(self) -> tuple[int, str]:
        """(exit code, output), waiting for the run to end."""
        try:
            code = self.process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        self._out.seek(0)
        return code, self._out.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._out.close()


_STARTED: dict[tuple[str, ...], EarlyCheck] = {}


def start(argv: Sequence[str]) -> None:
    """Start ``python -m ARGV...`` unless it already runs."""
    if tuple(argv) not in _STARTED:
        _STARTED[tuple(argv)] = EarlyCheck(argv)


def result(argv: Sequence[str]) -> tuple[int, str]:
    """The result of ``python -m ARGV...`` (started now if the session did not start it)."""
    start(argv)
    return _STARTED[tuple(argv)].result()


def stop_all() -> None:
    for check in _STARTED.values():
        check.stop()
    _STARTED.clear()
