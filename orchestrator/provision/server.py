"""Start, watch and stop one local ComfyUI process.

Each instance gets its own base directory (models/, custom_nodes/, input/, output/, temp/,
user/), so several can run side by side on different ports. The process runs in its own
session so that stopping it by PID also takes down anything it spawned. A managed instance
(``die_with_parent``) is also killed by the kernel when the process that started it dies,
even by SIGKILL, so a crashed or killed front end never leaves a server behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from orchestrator.errors import ProvisionError
from orchestrator.provision.install import ComfyInstall
from orchestrator.provision.lifeline import tied_to_parent

BASE_SUBDIRS = ("custom_nodes", "input", "output", "temp", "user", "models/checkpoints")
# ComfyUI needs 10-40 s to import torch on this class of machine; 180 s leaves room for
# a loaded 2-core CI box without hiding a server that will never come up.
DEFAULT_START_TIMEOUT_S = 180.0
STOP_GRACE_S = 10.0
# The node ComfyUI ships in its own custom_nodes/ (SaveImageWebsocket). --base-directory
# hides it, so it is linked into every base dir to behave like a stock install.
STOCK_CUSTOM_NODES = ("websocket_image_save.py",)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def prepare_base_dir(install: ComfyInstall, base: str | os.PathLike[str],
                     custom_nodes: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Create ComfyUI's folders under ``base`` and link custom node packs into it.

    ``custom_nodes/`` must exist before start-up (ComfyUI crashes at prestartup without
    it). Each pack is symlinked under its folder name; a stale link is replaced.
    """
    base = Path(base)
    for sub in BASE_SUBDIRS:
        (base / sub).mkdir(parents=True, exist_ok=True)
    for stock in STOCK_CUSTOM_NODES:
        _link(install.src / "custom_nodes" / stock, base / "custom_nodes" / stock)
    for given in custom_nodes:
        pack = Path(given).resolve()
        if not pack.exists():
            raise ProvisionError(f"custom node folder {pack} does not exist")
        _link(pack, base / "custom_nodes" / pack.name)
    return base


def database_url(base: Path) -> str:
    """ComfyUI's database for the instance on ``base``: a file in its own ``user/`` folder.

    Without the flag every instance of one install shares ``src/user/comfyui.db`` and logs
    "Failed to initialize database" when two start together. A file (not ``:memory:``)
    because releases before 0.30 run alembic migrations that need a real file; every
    supported release has the flag.
    """
    return f"sqlite:///{(base / 'user' / 'comfyui.db').resolve()}"


def _link(source: Path, link: Path) -> None:
    if not source.exists():
        return
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == source.resolve():
            return
        link.unlink()
    link.symlink_to(source)


@dataclass
class LocalComfy:
    """One ComfyUI server process on loopback; a context manager that stops it on exit."""

    install: ComfyInstall
    base_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    preview_method: str = "auto"
    extra_args: Sequence[str] = ()
    log_path: Path | None = None
    # The kernel kills the server when the *thread* that started it ends, so this is only
    # safe from a thread that lives as long as the process: None means "when started from
    # the main thread" (a CLI's servers, a test session's shared servers).
    die_with_parent: bool | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def argv(self) -> list[str]:
        return [
            str(self.install.python), str(self.install.main_py),
            "--cpu", "--listen", self.host, "--port", str(self.port),
            "--base-directory", str(self.base_dir), "--disable-auto-launch",
            "--preview-method", self.preview_method,
            "--database-url", database_url(self.base_dir), *self.extra_args,
        ]

    def launch_argv(self) -> list[str]:
        """``argv()``, behind the death-signal shim when this server dies with its parent."""
        tied = self.die_with_parent
        if tied is None:
            tied = threading.current_thread() is threading.main_thread()
        if not tied:
            return self.argv()
        return tied_to_parent(self.argv(), python=str(self.install.python))

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT_S) -> LocalComfy:
        """Start the process and block until ``/system_stats`` answers.

        Raises ``ProvisionError`` with the tail of the server log when it exits early or
        does not answer in time (the process is stopped then).
        """
        if self.process and self.process.poll() is None:
            return self
        if not self.port:
            self.port = free_port(self.host)
        log_path = self.log_path or self.base_dir / "comfyui.log"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            self.launch_argv(), cwd=self.install.src, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise ProvisionError(
                    f"ComfyUI exited during start-up (exit {code}); log tail:\n{self.log_tail()}"
                )
            if self.is_answering():
                return
            time.sleep(0.25)
        raise ProvisionError(
            f"ComfyUI did not answer at {self.url} within {timeout:.0f}s; "
            f"log tail:\n{self.log_tail()}"
        )

    def is_answering(self) -> bool:
        try:
            return requests.get(f"{self.url}/system_stats", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL after a grace period. Safe to repeat."""
        self._signal_and_reap(signal.SIGTERM, STOP_GRACE_S)

    def kill(self) -> None:
        """SIGKILL at once: the way a crashed GPU box disappears."""
        self._signal_and_reap(signal.SIGKILL, STOP_GRACE_S)

    def restart(self, *, timeout: float = DEFAULT_START_TIMEOUT_S) -> LocalComfy:
        """Stop and start again on the same port (ComfyUI loses its queue and history)."""
        self.stop()
        return self.start(timeout=timeout)

    def _signal_and_reap(self, sig: signal.Signals, grace: float) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalComfy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
