"""Every shell and Python snippet of README.md and workflows/README.md, as written, against
a real ``comfy-orch up`` (a managed CPU ComfyUI with the test checkpoint).

The snippets are read from the files, not copied here: a README edit that breaks a
snippet breaks this test. The block marked ``readme-test: up`` is the one this test runs
itself (its ``comfy-orch up``; a venv and an install are the test run's own); blocks
marked ``readme-test: skip`` say why they are not run. Each other ``bash`` block runs in a
fresh ``bash -eo pipefail`` after the ``export`` lines ``up`` printed, as a reader pastes
them; each ``python`` block runs in the same environment. Both run in a folder that holds
the checkout's ``workflows/`` and ``docs/``, so files they write stay out of the checkout.

``up`` runs on its default ports (8288 for the service, 8501 for the panel), since the
snippets name them; the test fails with that reason when one is taken.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
READMES = (REPO / "README.md", REPO / "workflows" / "README.md")
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<mark>\w+)[^>]*-->\n)?```(?P<lang>\w*)\n"
                   r"(?P<code>.*?)\n```", re.S)
RUNNABLE = ("bash", "python")
DEFAULT_PORTS = (8288, 8501)
UP_TIMEOUT_S = 600.0  # a first run installs ComfyUI (minutes); later ones start it (~40 s)
SNIPPET_TIMEOUT_S = 300.0  # the slowest block makes a few 128 px images on a loaded CPU


@dataclass(frozen=True)
class Snippet:
    source: str  # file:line, for the failure message
    lang: str
    code: str
    mark: str


def snippets(path: Path) -> list[Snippet]:
    text = path.read_text()
    return [Snippet(f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}",
                    m["lang"], m["code"], m["mark"] or "") for m in BLOCK.finditer(text)]


def runnable() -> list[Snippet]:
    return [s for path in READMES for s in snippets(path)
            if s.lang in RUNNABLE and s.mark not in ("up", "skip")]


def up_command() -> list[str]:
    """The README's ``comfy-orch up`` (the last command of the block marked ``up``)."""
    (block,) = [s for s in snippets(READMES[0]) if s.mark == "up"]
    command = shlex.split(block.code.split("&&")[-1])
    assert Path(command[0]).name == "comfy-orch", block
    return [str(REPO / ".venv" / "bin" / "comfy-orch"), *command[1:]]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@dataclass(frozen=True)
class Up:
    workdir: Path
    env: dict[str, str]
    exports: str  # the lines ``up`` printed to paste


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    busy = [p for p in DEFAULT_PORTS if not _port_free(p)]
    if busy:
        pytest.fail(f"port(s) {busy} on 127.0.0.1 are taken; the README's snippets name "
                    "them, so stop what listens there first", pytrace=False)
    root = tmp_path_factory.mktemp("readme")
    workdir = root / "work"
    workdir.mkdir()
    for name in ("workflows", "docs"):
        (workdir / name).symlink_to(REPO / name)
    env = {**os.environ, "COMFY_ORCH_DATA_DIR": str(root / "data"),
           "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("COMFY_BASE_URL", "COMFY_API_KEY", "TOKEN", "COMFYUI_URL"):
        env.pop(name, None)
    proc = subprocess.Popen(up_command(), cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield Up(workdir, env, _exports(proc))
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a reader stops it
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def _exports(proc: subprocess.Popen[str]) -> str:
    """The ``export`` lines ``up`` prints, read until it says it is ready."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + UP_TIMEOUT_S
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("Ctrl-C stops everything") or time.monotonic() > deadline:
            break
    exports = [line.strip() for line in seen if line.strip().startswith("export ")]
    assert exports, "`comfy-orch up` printed no export lines:\n" + "".join(seen)
    return "\n".join(exports)


def _run(up: Up, snippet: Snippet) -> subprocess.CompletedProcess[str]:
    if snippet.lang == "bash":
        argv = ["bash", "-eo", "pipefail", "-c", f"{up.exports}\n{snippet.code}"]
        env = up.env
    else:
        exported = subprocess.run(["bash", "-c", f"{up.exports}\nenv -0"], env=up.env,
                                  capture_output=True, text=True, check=True, timeout=30)
        env = dict(item.split("=", 1) for item in exported.stdout.split("\0") if "=" in item)
        argv = [sys.executable, "-c", snippet.code]
    return subprocess.run(argv, cwd=up.workdir, env=env, capture_output=True, text=True,
                          timeout=SNIPPET_TIMEOUT_S)


def test_the_readmes_have_the_snippets_this_test_runs() -> None:
    """The parser finds the blocks (a format change must not pass by running nothing)."""
    langs = [s.lang for s in runnable()]
    assert langs.count("python") >= 2 and langs.count("bash") >= 4
    assert any("comfy-orch token create" in s.code for s in runnable())


@pytest.mark.timeout(UP_TIMEOUT_S + 8 * SNIPPET_TIMEOUT_S)
def test_every_snippet_runs_as_written_against_comfy_orch_up(up: Up) -> None:
    for snippet in runnable():
        done = _run(up, snippet)
        assert done.returncode == 0, (
            f"{snippet.source} ({snippet.lang}) exited {done.returncode}\n--- code\n"
            f"{snippet.code}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n"
            f"{done.stderr[-3000:]}")
        assert "Traceback" not in done.stderr, snippet.source
    workdir = up.workdir
    assert len(list((workdir / "images").glob("*.png"))) == 3  # submit: 1 + 2 images
    assert (workdir / "out.png").stat().st_size > 0  # the SDK's image
