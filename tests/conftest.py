"""Real ComfyUI servers for the suite: one shared server per ComfyUI version, plus a factory.

Which ComfyUI the suite runs against
------------------------------------
* Every test that uses ``comfy_url``, ``comfy_server``, ``comfy_factory`` or ``comfy_install``
  runs against **one version for the whole run**: ``$COMFY_ORCH_TEST_COMFYUI`` (default
  ``0.30.0``, the newest supported release). Ask the ``comfyui_version`` fixture (a string
  such as ``"0.16.3"``) when a test pins one version's behaviour, e.g.
  ``if version_key(comfyui_version) >= (0, 26): ...`` (``orchestrator.provision.releases``),
  instead of assuming a version.
* The **contract subset** runs against every version of the matrix. Mark such a test (or a
  class, or a module with ``pytestmark``)::

      @pytest.mark.every_comfyui
      def test_submit_reaches_comfyui(comfy_url: str) -> None: ...

  ``pytest_generate_tests`` below parametrizes its ``comfyui_version`` (ids such as
  ``test_submit_reaches_comfyui[0.16.3]``; ``path::test_name`` still selects them all), and
  every ComfyUI fixture the test uses, directly or through module fixtures such as the web
  tests' ``service``, follows that version. The matrix is ``$COMFY_ORCH_TEST_MATRIX`` (comma
  separated versions, or ``all``); by default every supported version under ``CI=true`` and
  only the run's version elsewhere (a laptop need not hold three servers at once).

How servers live
----------------
Installs and the shared server of each version are kept by one session-wide ``ComfyFleet``:
started lazily the first time a test needs that version, and stopped by PID at the end of
the session. Servers made by ``comfy_factory`` are stopped when the factory's version is
left (the parametrization moves to another version) or at the end of the session. A server
of the usual make (test node pack, tiny checkpoint) comes from the version's spares, started
in the background once the version is first used (``Spares``). When a
version cannot be provisioned or started, its tests fail under ``CI=true`` and are skipped
elsewhere, with the reason either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from orchestrator.errors import OrchestratorError
from orchestrator.provision.install import ComfyInstall, default_home, ensure_installed
from orchestrator.provision.releases import DEFAULT_VERSION, RELEASES, SUPPORTED_VERSIONS
from orchestrator.provision.server import (
    DEFAULT_START_TIMEOUT_S,
    LocalComfy,
    prepare_base_dir,
)
from tests import early_checks

TESTS_DIR = Path(__file__).parent
TEST_NODE_PACK = TESTS_DIR / "comfy_nodes"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MATRIX_MARK = "every_comfyui"

ComfyFactory = Callable[..., LocalComfy]


def _checked(versions: Sequence[str], source: str) -> list[str]:
    unknown = [v for v in versions if v not in RELEASES]
    if unknown:
        raise pytest.UsageError(f"{source}: unsupported ComfyUI version(s) {', '.join(unknown)}; "
                                f"supported: {', '.join(SUPPORTED_VERSIONS)}")
    return list(versions)


def run_version() -> str:
    """The ComfyUI version of this run (``$COMFY_ORCH_TEST_COMFYUI``, default 0.30.0)."""
    version = os.environ.get("COMFY_ORCH_TEST_COMFYUI", "").strip() or DEFAULT_VERSION
    return _checked([version], "COMFY_ORCH_TEST_COMFYUI")[0]


def matrix_versions() -> list[str]:
    """The versions an ``every_comfyui`` test runs against."""
    raw = os.environ.get("COMFY_ORCH_TEST_MATRIX", "").strip()
    if raw == "all" or (not raw and IN_CI):
        return list(SUPPORTED_VERSIONS)
    if not raw:
        return [run_version()]
    return _checked([v.strip() for v in raw.split(",") if v.strip()], "COMFY_ORCH_TEST_MATRIX")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MATRIX_MARK}: run this test against every ComfyUI version of the matrix "
                   "(see tests/conftest.py)")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start mypy now when the session will run its check (see ``tests/early_checks.py``)."""
    if any(item.name == early_checks.MYPY_TEST for item in session.items):
        early_checks.start(early_checks.MYPY)


def pytest_sessionfinish(session: pytest.Session) -> None:
    early_checks.stop_all()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(MATRIX_MARK) is None:
        return
    if "comfyui_version" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} is marked {MATRIX_MARK} but "
                                "uses no ComfyUI fixture (comfy_url, comfy_factory, ...)")
    # Module scope: pytest groups a module's tests by version, and module fixtures built
    # on a server (services, extra nodes) are rebuilt for each version, not per test.
    metafunc.parametrize("comfyui_version", matrix_versions(), indirect=True, scope="module",
                         ids=lambda version: str(version))


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"real ComfyUI unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"real ComfyUI unavailable: {reason}")


class ComfyFleet:
    """The session's installs and servers, per version; everything it starts it stops."""

    def __init__(self, home: Path, tmp: pytest.TempPathFactory) -> None:
        self.home, self.tmp = home, tmp
        self.started: list[LocalComfy] = []
        self._installs: dict[str, ComfyInstall] = {}
        self._shared: dict[str, LocalComfy] = {}
        self._failed: dict[str, str] = {}
        self._spares = Spares(self._new)

    def install(self, version: str) -> ComfyInstall:
        """The finished install of ``version`` (installed on first use; minutes)."""
        if version in self._failed:
            _unavailable(self._failed[version])
        if version not in self._installs:
            try:
                self._installs[version] = ensure_installed(
                    self.home, version, progress=lambda line: print(line, flush=True))
            except OrchestratorError as exc:
                self._failed[version] = f"ComfyUI {version}: {exc}"
                _unavailable(self._failed[version])
        return self._installs[version]

    def server(self, version: str, *, custom_nodes: Sequence[Path] = (TEST_NODE_PACK,),
               checkpoint: bool = True, start: bool = True) -> LocalComfy:
        """A new server of ``version`` on a free loopback port, with its own base dir.

        A started server of the usual make (the test node pack and the tiny checkpoint)
        is the version's oldest spare when there is one, and another starts behind it."""
        usual = start and checkpoint and tuple(custom_nodes) == (TEST_NODE_PACK,)
        spare = self._spares.take(version) if usual else None
        if usual:
            self._spares.make(version)
        if spare is not None:
            return spare
        server = self._new(version, custom_nodes, checkpoint)
        if start:
            try:
                server.start()
            except OrchestratorError as exc:
                _unavailable(f"ComfyUI {version} did not start: {exc}")
        return server

    def _new(self, version: str, custom_nodes: Sequence[Path] = (TEST_NODE_PACK,),
             checkpoint: bool = True) -> LocalComfy:
        """A server of ``version`` made ready to start (not started), stopped with the fleet."""
        inst = self.install(version)
        base = prepare_base_dir(inst, self.tmp.mktemp(f"comfy-{version}"), custom_nodes)
        if checkpoint:
            tiny = make_tiny_checkpoint(self.home)
            (base / "models" / "checkpoints" / tiny.name).symlink_to(tiny)
        server = LocalComfy(inst, base)
        self.started.append(server)
        return server

    def shared(self, version: str) -> LocalComfy:
        """The one long-lived server of ``version`` that most tests share."""
        if version in self._failed:
            _unavailable(self._failed[version])
        if version not in self._shared:
            try:
                self._shared[version] = self.server(version)
            except BaseException:
                self._failed[version] = f"the shared ComfyUI {version} did not start"
                raise
        return self._shared[version]

    def stop(self, servers: Sequence[LocalComfy]) -> None:
        for server in servers:
            server.stop()

    def stop_all(self) -> None:
        self._spares.close()
        self.stop(self.started)

    def in_use(self) -> list[LocalComfy]:
        """The servers started for tests (spares not yet handed out have run nothing)."""
        waiting = self._spares.waiting()
        return [server for server in self.started if server not in waiting]


class Spares:
    """Started servers of the usual make, ``DEPTH`` per version, started ahead of the tests
    that ask for them.

    A ComfyUI start is ~10 s of imports on one core, and tests that need servers of their
    own (to kill, freeze or slow them; two at a time for a pool) each waited for theirs;
    most of a test's time is spent waiting on a node, so the next test's servers start
    meanwhile, one at a time (a core is left to the tests). A spare is a real server like
    any other, fresh from its start: it has run nothing before it is handed out. The
    spares start on one long-lived thread, so the kernel's parent-death signal
    (``provision/lifeline.py``) stays tied to a thread that lives until the session ends.
    """

    DEPTH = 2  # the most servers of one version a test asks for at once

    def __init__(self, new: Callable[[str], LocalComfy]) -> None:
        self._new = new
        self._ready: dict[str, list[tuple[LocalComfy, Future[LocalComfy]]]] = {}
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comfy-spare")

    def make(self, version: str) -> None:
        """Start spares of ``version`` in the background, up to ``DEPTH``."""
        ready = self._ready.setdefault(version, [])
        while len(ready) < self.DEPTH:
            server = self._new(version)
            server.die_with_parent = True  # the starter thread lives as long as the session
            ready.append((server, self._starter.submit(server.start)))

    def take(self, version: str) -> LocalComfy | None:
        """The oldest spare of ``version``, once started; None when there is none, when its
        start has not begun (still behind other spares: the caller starts its server at
        once instead), or when it failed (the caller starts one and reports the error)."""
        ready = self._ready.get(version)
        if not ready:
            return None
        _, future = ready.pop(0)
        if future.cancel():
            return None
        try:
            return future.result(timeout=DEFAULT_START_TIMEOUT_S + 30)
        except Exception:  # noqa: BLE001 - a start that failed here is retried and reported
            return None

    def waiting(self) -> list[LocalComfy]:
        """The spares no test has had yet."""
        return [server for ready in self._ready.values() for server, _ in ready]

    def close(self) -> None:
        """Wait for a start in progress (its server is then stopped with the others)."""
        for ready in self._ready.values():
            for _, future in ready:
                future.cancel()
        self._starter.shutdown(wait=True)
        self._ready.clear()


_FLEET: list[ComfyFleet] = []


def make_tiny_checkpoint(home: Path) -> Path:
    """The random-weight SD1.5 checkpoint, generated once into the cache (never committed)."""
    from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME, write_tiny_checkpoint

    path = home / "test-models" / TINY_CHECKPOINT_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tiny_checkpoint(path, seed=0)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    return make_tiny_checkpoint(default_home())


@pytest.fixture(scope="session")
def comfy_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyFleet]:
    fleet = ComfyFleet(default_home(), tmp_path_factory)
    _FLEET.append(fleet)
    try:
        yield fleet
    finally:
        fleet.stop_all()
        _FLEET.remove(fleet)


@pytest.fixture(scope="session")
def comfyui_version(request: pytest.FixtureRequest) -> str:
    """The ComfyUI version the requesting test runs against (see the module docstring)."""
    param = getattr(request, "param", None)
    return str(param) if param is not None else run_version()


@pytest.fixture(scope="session")
def comfy_install(comfy_fleet: ComfyFleet, comfyui_version: str) -> ComfyInstall:
    """The provisioned ComfyUI of the test's version (installed on first use)."""
    return comfy_fleet.install(comfyui_version)


@pytest.fixture(scope="session")
def comfy_factory(comfy_fleet: ComfyFleet, comfyui_version: str) -> Iterator[ComfyFactory]:
    """Start extra real ComfyUI instances of the test's version; stopped by PID afterwards.

    ``factory(custom_nodes=[...], checkpoint=True, start=True)`` returns a ``LocalComfy``
    on a free loopback port, with the test node pack and the tiny checkpoint by default.
    """
    mine: list[LocalComfy] = []

    def factory(*, custom_nodes: Sequence[Path] = (TEST_NODE_PACK,), checkpoint: bool = True,
                start: bool = True) -> LocalComfy:
        server = comfy_fleet.server(comfyui_version, custom_nodes=custom_nodes,
                                    checkpoint=checkpoint, start=start)
        mine.append(server)
        return server

    yield factory
    comfy_fleet.stop(mine)


@pytest.fixture(scope="session")
def comfy_server(comfy_fleet: ComfyFleet, comfyui_version: str) -> LocalComfy:
    """The shared real ComfyUI of the test's version (test node pack + tiny checkpoint)."""
    return comfy_fleet.shared(comfyui_version)


@pytest.fixture(scope="session")
def comfy_url(comfy_server: LocalComfy) -> str:
    return comfy_server.url


@pytest.fixture(autouse=True)
def _leave_comfy_idle(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that had the fleet's servers, empty every running ComfyUI's queue
    and stop what it runs.

    Servers are shared across tests; a test whose orchestrator closed while a long prompt
    was still on a node (items stay recorded for recovery, the node keeps running) must
    not make the next test wait behind it. A test that asked for no ComfyUI fixture
    (directly or through a module fixture) sent them nothing.
    """
    yield
    if "comfy_fleet" not in request.fixturenames:
        return
    for fleet in _FLEET:
        for server in fleet.in_use():
            if server.process is None or server.process.poll() is not None:
                continue
            try:
                requests.post(f"{server.url}/queue", json={"clear": True}, timeout=5)
                requests.post(f"{server.url}/interrupt", timeout=5)
            except requests.RequestException:
                continue  # a test stopped or froze it on purpose; it restarts it itself


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL 15 for the session (``tests/postgres.py``); its admin URL.

    Under ``CI=true`` a server that cannot start fails the tests that need it, never skips.
    """
    from tests.postgres import PostgresUnavailable, running_postgres

    try:
        server = running_postgres()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL unavailable under CI=true: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """An empty database of its own on the session's PostgreSQL."""
    from tests.postgres import fresh_database

    return fresh_database(postgres_server)
