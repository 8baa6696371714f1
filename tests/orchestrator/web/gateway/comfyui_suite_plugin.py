"""A pytest plugin that points ComfyUI's own ``tests/execution`` suite at a running server.

Loaded with ``-p`` into a pytest run inside an installed ComfyUI tree
(``test_comfyui_suite.py`` does that), the suite's own code unchanged. The suite builds
every address as ``f"{listen}:{port}"`` and starts a server of its own per test class with
``subprocess.Popen(["python", "main.py", ...])``. This plugin instead:

- sets ``listen``/``port`` so that address is ``COMFY_SUITE_ADDRESS`` (``host:port`` of a
  node, or ``host:port/comfyui/<token>`` of our gateway: a path after the port works in
  every URL the suite builds);
- answers the suite's ``python main.py`` with a process that has already exited, as the
  server it wanted is the one at that address (any other command runs as usual);
- runs each test class once, in its first server configuration (classic caching): the
  suite's other configurations (``--cache-lru``, ``--cache-none``) are flags of a server
  it would start itself, and the node behind the address runs with the flags its
  operator gave it, so they would only run the same tests again against the same server;
- puts the ComfyUI environment's packages (torch, numpy, its own modules) ahead of the
  orchestrator's, which supply pytest and websocket-client;
- writes each test's outcome to ``COMFY_SUITE_RESULTS`` as it is known (``id outcome``
  per line), so a run stopped part way still tells what it saw.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from typing import Any

import pytest

ADDRESS_ENV = "COMFY_SUITE_ADDRESS"  # host:port[/path] the suite talks to
SITE_ENV = "COMFY_SUITE_SITE"  # the ComfyUI environment's site-packages
RESULTS_ENV = "COMFY_SUITE_RESULTS"  # where outcomes are written, one test a line
SERVER_FIXTURES = ("server", "_server")  # the suite's class-scoped server fixtures
_real_popen = subprocess.Popen


class _Started:
    """The server the suite asked for, standing for the one already at the address."""

    pid = 0
    returncode = 0

    def __init__(self, args: Any) -> None:
        self.args = args

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def kill(self) -> None:
        """Nothing to stop: the server at the address belongs to whoever started it."""

    terminate = kill


def _popen(args: Any, *rest: Any, **kwargs: Any) -> Any:
    if isinstance(args, list | tuple) and list(args[:2]) == ["python", "main.py"]:
        return _Started(args)
    return _real_popen(args, *rest, **kwargs)


def _comfy_packages_first(site_dir: str) -> None:
    before = list(sys.path)
    site.addsitedir(site_dir)  # also reads its .pth files (the shared torch)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before


def pytest_configure(config: pytest.Config) -> None:
    address = os.environ[ADDRESS_ENV]
    host, _, port = address.partition(":")
    config.option.listen, config.option.port = host, port
    _comfy_packages_first(os.environ[SITE_ENV])
    subprocess.Popen = _popen  # type: ignore[assignment, misc]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first: list[pytest.Item] = []
    other: list[pytest.Item] = []
    for item in items:
        indices = getattr(getattr(item, "callspec", None), "indices", {})
        again = any(indices.get(name, 0) > 0 for name in SERVER_FIXTURES)
        (other if again else first).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = first


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        outcome = "passed" if report.passed else report.outcome
        with open(os.environ[RESULTS_ENV], "a", encoding="utf-8") as results:
            results.write(f"{report.nodeid} {outcome}\n")
