"""Running the app under uvicorn: in the foreground (``serve``) or on a thread (tests, ``up``).

Both bind the listening socket themselves first, so port 0 works (the OS picks a free
port) and the real address is known before the first request.
"""

from __future__ import annotations

import contextlib
import logging.config
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

from orchestrator.errors import ConfigError
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.tokens import TokenStore
from orchestrator.web.app import create_app
from orchestrator.web.logs import log_config

# Timeouts (seconds)
START_TIMEOUT_S = 10.0  # uvicorn starts in well under a second; more means it is stuck
# Open event streams would hold a graceful shutdown forever; cut them off after this.
GRACEFUL_SHUTDOWN_S = 2
POLL_S = 0.01


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); ``ConfigError`` when
    the address is taken or not ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it on Linux: without it a kept-alive client's small
        # request can wait ~40 ms for a delayed ACK (Nagle), which dwarfs a trivial job.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another "
                          "--port or stop what uses it") from exc
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: FastAPI, log_level: str, *, own_logging: bool = False) -> uvicorn.Server:
    # Every line goes through a filter that redacts tokens: the gateway's paths carry them.
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                            log_config=log_config(own_root=own_logging),
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    return uvicorn.Server(config)


class ServerThread:
    """uvicorn serving ``app`` on a background thread; a context manager.

    ``start()`` returns once the server accepts connections (``url`` is then set);
    ``stop()`` shuts it down and joins the thread, harmless twice.
    """

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        # A program that configured no logging of its own (``comfy-orch up``) gets ours,
        # so its warnings pass the token filter too; tests and hosts keep theirs.
        self.server = _server(app, log_level, own_logging=not logging.getLogger().handlers)
        self.host, self.port = host, port
        self.url = ""
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        sock = bind(self.host, self.port)
        self.url = _url(sock)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                        name=f"uvicorn {self.url}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the web server on {self.url} did not start within "
                                  f"{timeout:.0f} s; see the log above")
            time.sleep(POLL_S)
        return self.url

    def stop(self, timeout: float = START_TIMEOUT_S + GRACEFUL_SHUTDOWN_S) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self.server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            self.server.force_exit = True
            thread.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@contextlib.contextmanager
def service(settings: Settings) -> Iterator[tuple[Orchestrator, TokenStore]]:
    """The orchestrator ``settings`` describe and its token store (the same database),
    closed on leaving."""
    workflows = settings.workflows_folder
    if settings.workflows_dir is None:
        workflows.mkdir(parents=True, exist_ok=True)  # the default folder may be new
    with Orchestrator(
            data_dir=settings.data_dir, workflows_dir=workflows, nodes=settings.nodes,
            retention=settings.job_retention,
            retention_sweep_s=settings.retention_sweep_s, db=settings.db,
            stall_limits=settings.stall_limits) as orch:
        yield orch, orch.token_store()


def serve(settings: Settings, *, announce: Callable[[str], None] = print,
          log_level: str = "info") -> None:
    """Serve in the foreground until Ctrl-C (uvicorn handles the signal), then close."""
    logging.config.dictConfig(log_config(own_root=True))  # before anything can log
    sock = bind(settings.host, settings.port)
    with sock, service(settings) as (orch, tokens):
        url = _url(sock)
        announce(f"comfy-orchestrator serving on {url} (API docs: {url}/docs)")
        _warn_setup(orch, tokens, settings.workflows_folder, announce)
        _server(create_app(orch, tokens, settings), log_level,
                own_logging=True).run(sockets=[sock])


def _warn_setup(orch: Orchestrator, tokens: TokenStore, workflows: Path,
                announce: Callable[[str], None]) -> None:
    if not orch.nodes():
        announce("no ComfyUI node configured: add one with --node URL or POST /v1/nodes")
    if not tokens.list():
        announce("no API token yet: create one with 'comfy-orch token create --owner NAME "
                 "--admin'")
    announce(f"workflows folder: {workflows}")
