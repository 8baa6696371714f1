"""ComfyUI's own execution suite passes through the gateway as it passes directly.

The suite (``tests/execution`` of the installed ComfyUI tree, with its node pack
``testing_nodes``) runs twice in this test, unchanged, through ``comfyui_suite_plugin``:
once against one of our real nodes, once against our gateway in front of that same node
(``127.0.0.1:PORT/comfyui/<token>``). Every test that passes directly must pass through
the gateway, except those ``comfyui_suite_exceptions.BY_DESIGN`` lists with a reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.provision.install import ComfyInstall
from orchestrator.provision.server import LocalComfy
from tests.conftest import ComfyFactory
from tests.orchestrator.web.conftest import Service, start_service
from tests.orchestrator.web.gateway import comfyui_suite_plugin as plugin
from tests.orchestrator.web.gateway.comfyui_suite_exceptions import BY_DESIGN

# The plugin is loaded as a top-level module: the ComfyUI tree has a ``tests`` package too.
PLUGIN_DIR = Path(plugin.__file__).parent
PLUGIN = Path(plugin.__file__).stem
# Minutes one test of the suite may take before it counts as failed: a gateway that never
# sends the message a suite client waits for would otherwise hang the run (the suite's
# sockets have no timeout of their own).
SUITE_TEST_TIMEOUT_S = 120
SUITE_RUN_TIMEOUT_S = 2400  # one whole run of the suite, either way


def _suite_pack(install: ComfyInstall) -> Path:
    return install.src / "tests" / "execution" / "testing_nodes" / "testing-pack"


@pytest.fixture(scope="module")
def suite_nodes(comfy_install: ComfyInstall,
                comfy_factory: ComfyFactory) -> tuple[LocalComfy, LocalComfy]:
    """Two real nodes with the suite's node pack (and nothing of ours) loaded, started side
    by side (a start is mostly waiting on imports): the gateway's, and one for the direct
    run, so both runs go at once without sharing a queue or a cache (each run would
    otherwise see the other's prompts)."""
    nodes = [comfy_factory(custom_nodes=[_suite_pack(comfy_install)], checkpoint=False,
                           start=False) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for started in [pool.submit(node.start) for node in nodes]:
            started.exception()  # a failed start is started again below, with its error
    for node in nodes:
        if not node.is_answering():
            node.start()  # surfaces the start-up error with the log
    return nodes[0], nodes[1]


@pytest.fixture(scope="module")
def suite_node(suite_nodes: tuple[LocalComfy, LocalComfy]) -> LocalComfy:
    return suite_nodes[0]


@pytest.fixture(scope="module")
def direct_node(suite_nodes: tuple[LocalComfy, LocalComfy]) -> LocalComfy:
    return suite_nodes[1]


@pytest.fixture(scope="module")
def suite_service(suite_node: LocalComfy, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Service]:
    service = start_service(tmp_path_factory.mktemp("suite-service"), suite_node.url)
    try:
        yield service
    finally:
        service.stop()


def _site_packages(install: ComfyInstall) -> Path:
    found = sorted((install.venv / "lib").glob("python3*/site-packages"))
    assert found, f"no site-packages in {install.venv}"
    return found[-1]


def run_suite(install: ComfyInstall, address: str, out: Path) -> dict[str, str]:
    """Run the suite against ``address``; ``{test id: outcome}`` of every test it ran."""
    return run_suites(install, {address: out})[address]


def run_suites(install: ComfyInstall, runs: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Run the suite against each address at once (``{address: output folder}``); each
    address's ``{test id: outcome}``. Side by side, two runs take little more than one:
    most of a run is spent waiting on sockets, not computing."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {address: pool.submit(_run_suite, install, address, out)
                   for address, out in runs.items()}
        return {address: future.result() for address, future in futures.items()}


def _run_suite(install: ComfyInstall, address: str, out: Path) -> dict[str, str]:
    import subprocess

    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.txt"
    env = {**os.environ, plugin.ADDRESS_ENV: address, plugin.RESULTS_ENV: str(results),
           plugin.SITE_ENV: str(_site_packages(install)), "PYTHONPATH": str(PLUGIN_DIR),
           "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [sys.executable, "-m", "pytest", "tests/execution", "-p", PLUGIN,
            "-p", "no:cacheprovider", "--output_dir", str(out / "samples"),
            f"--timeout={SUITE_TEST_TIMEOUT_S}", "-q",
            # The suite's own switch for machines of varying speed: its wall-clock bounds
            # (a cached run "under 0.1 s") measure the machine, and our tests never depend
            # on wall-clock speed; both runs skip them alike.
            "--skip-timing-checks"]
    with (out / "log.txt").open("wb") as log:
        try:
            subprocess.run(argv, cwd=install.src, env=env, stdout=log,
                           stderr=subprocess.STDOUT, timeout=SUITE_RUN_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            pass  # what it ran is in the results; the rest counts as not passed
    return outcomes(results)


def outcomes(results: Path) -> dict[str, str]:
    """``{file::Class::test[param]: passed|failed|skipped}``; a test whose setup or
    teardown failed counts as failed."""
    found: dict[str, str] = {}
    lines = results.read_text(encoding="utf-8").splitlines() if results.exists() else []
    for line in lines:
        test_id, _, outcome = line.rpartition(" ")
        test_id = test_id.removeprefix("tests/execution/")
        if found.get(test_id, "passed") == "passed":
            found[test_id] = outcome
    return found


def _passed(found: dict[str, str]) -> set[str]:
    return {test_id for test_id, outcome in found.items() if outcome == "passed"}


@pytest.mark.every_comfyui
@pytest.mark.timeout(2 * SUITE_RUN_TIMEOUT_S + 300)
def test_comfyuis_execution_suite_passes_through_the_gateway_as_directly(
        comfy_install: ComfyInstall, direct_node: LocalComfy, suite_service: Service,
        tmp_path: Path) -> None:
    direct_address = direct_node.url.removeprefix("http://")
    gateway_address = (suite_service.url.removeprefix("http://")
                       + f"/comfyui/{suite_service.alice}")
    found = run_suites(comfy_install, {direct_address: tmp_path / "direct",
                                       gateway_address: tmp_path / "gateway"})
    direct, gateway = found[direct_address], found[gateway_address]

    lost = sorted(_passed(direct) - _passed(gateway) - set(BY_DESIGN))
    print(f"\nComfyUI {comfy_install.version} execution suite: {len(_passed(direct))} of "
          f"{len(direct)} pass directly, {len(_passed(gateway))} of {len(gateway)} through "
          f"the gateway; {len(lost)} lost: {lost}")
    assert len(_passed(direct)) > 0, (tmp_path / "direct" / "log.txt").read_text()[-3000:]
    assert not lost, f"pass directly but not through the gateway: {lost}"
