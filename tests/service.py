"""A real service for the HTTP tests: an Orchestrator over real ComfyUI nodes, its tokens,
and uvicorn serving the whole app on a free loopback port."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from orchestrator.nodes import NodeConfig
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.tokens import TokenStore
from orchestrator.web import ServerThread, create_app
from orchestrator.web.limits import Clock


@dataclass(kw_only=True)
class RunningService:
    """What ``start_running`` started; ``stop()`` ends all of it (harmless twice)."""

    url: str
    orch: Orchestrator
    tokens: TokenStore
    server: ServerThread
    settings: Settings

    def stop(self) -> None:
        self.server.stop()
        self.orch.close()
        self.tokens.close()


def start_running(data_dir: Path, workflows: Path, nodes: Iterable[str | NodeConfig], *,
                  clock: Clock = time.monotonic, **settings: Any) -> RunningService:
    """The service over ``data_dir`` and ``workflows`` (both made if missing) and ``nodes``.

    ``settings`` override ``Settings`` fields (the shipped defaults otherwise). When the
    server does not start, what was opened is closed before the error is raised.
    """
    workflows.mkdir(parents=True, exist_ok=True)
    config = Settings(data_dir=data_dir, workflows_dir=workflows, port=0, **settings)
    tokens = TokenStore.open(data_dir)
    orch = Orchestrator(data_dir=data_dir, workflows_dir=workflows, nodes=nodes,
                        retention=config.job_retention,
                        retention_sweep_s=config.retention_sweep_s,
                        stall_limits=config.stall_limits)
    server = ServerThread(create_app(orch, tokens, config, clock=clock))
    try:
        url = server.start()
    except BaseException:
        orch.close()
        tokens.close()
        raise
    return RunningService(url=url, orch=orch, tokens=tokens, server=server, settings=config)


P = ParamSpec("P")
S = TypeVar("S", bound=RunningService)


@contextlib.contextmanager
def stopping_all(start: Callable[P, S]) -> Iterator[Callable[P, S]]:
    """``start`` as a factory whose services are all stopped when the block ends."""
    started: list[S] = []

    def factory(*args: P.args, **kwargs: P.kwargs) -> S:
        service = start(*args, **kwargs)
        started.append(service)
        return service

    try:
        yield factory
    finally:
        for service in started:
            service.stop()
