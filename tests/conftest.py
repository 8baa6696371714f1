"""Real ComfyUI servers for the suite: one per session, plus a factory for more.

The ComfyUI install is provisioned by the project itself (`comfy-orch comfyui install`
logic) into ``$COMFY_ORCH_HOME``. When it cannot be provisioned, tests that need a server
fail under ``CI=true`` and are skipped elsewhere, with the reason either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import requests

from orchestrator.errors import OrchestratorError
from orchestrator.provision.install import ComfyInstall, default_home, ensure_installed
from orchestrator.provision.server import LocalComfy, prepare_base_dir

TESTS_DIR = Path(__file__).parent
TEST_NODE_PACK = TESTS_DIR / "comfy_nodes"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

ComfyFactory = Callable[..., LocalComfy]
# Every real ComfyUI this session started, so each test can leave them idle.
_STARTED: list[LocalComfy] = []


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"real ComfyUI unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"real ComfyUI unavailable: {reason}")


@pytest.fixture(scope="session")
def comfy_install() -> ComfyInstall:
    """The provisioned ComfyUI (installed on first use; minutes on a fresh machine)."""
    try:
        return ensure_installed(default_home(), progress=lambda line: print(line, flush=True))
    except OrchestratorError as exc:
        _unavailable(str(exc))
        raise  # unreachable: _unavailable always raises


@pytest.fixture(scope="session")
def tiny_checkpoint(comfy_install: ComfyInstall) -> Path:
    """The random-weight SD1.5 checkpoint, generated once into the cache (never committed)."""
    from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME, write_tiny_checkpoint

    path = default_home() / "test-models" / TINY_CHECKPOINT_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tiny_checkpoint(path, seed=0)
    return path


@pytest.fixture(scope="session")
def comfy_factory(
    comfy_install: ComfyInstall, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComfyFactory]:
    """Start extra real ComfyUI instances; all are stopped by PID at the end of the session.

    ``factory(custom_nodes=[...], checkpoint=True, start=True)`` returns a ``LocalComfy``
    on a free loopback port, with the test node pack and the tiny checkpoint by default.
    """
    started: list[LocalComfy] = []

    def factory(
        *, custom_nodes: Sequence[Path] = (TEST_NODE_PACK,), checkpoint: bool = True,
        start: bool = True,
    ) -> LocalComfy:
        base = prepare_base_dir(comfy_install, tmp_path_factory.mktemp("comfy"), custom_nodes)
        if checkpoint:
            link = base / "models" / "checkpoints" / tiny_checkpoint.name
            link.symlink_to(tiny_checkpoint)
        server = LocalComfy(comfy_install, base)
        started.append(server)
        _STARTED.append(server)
        if start:
            try:
                server.start()
            except OrchestratorError as exc:
                _unavailable(str(exc))
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def comfy_server(comfy_factory: ComfyFactory) -> LocalComfy:
    """The session's shared real ComfyUI (test node pack + tiny checkpoint)."""
    return comfy_factory()


@pytest.fixture(scope="session")
def comfy_url(comfy_server: LocalComfy) -> str:
    return comfy_server.url


@pytest.fixture(autouse=True)
def _leave_comfy_idle() -> Iterator[None]:
    """After each test, empty every running ComfyUI's queue and stop what it runs.

    Servers are shared across tests; a test whose orchestrator closed while a long prompt
    was still on a node (items stay recorded for recovery, the node keeps running) must
    not make the next test wait behind it.
    """
    yield
    for server in _STARTED:
        if server.process is None or server.process.poll() is not None:
            continue
        try:
            requests.post(f"{server.url}/queue", json={"clear": True}, timeout=5)
            requests.post(f"{server.url}/interrupt", timeout=5)
        except requests.RequestException:
            continue  # a test stopped or froze it on purpose; it restarts it itself
