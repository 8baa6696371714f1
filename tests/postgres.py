"""A real PostgreSQL 15 server for tests: Debian's package, started as the postgres user.

The server refuses to run as root, so ``initdb`` and ``pg_ctl`` run through ``runuser -u
postgres`` on a temporary directory that user owns. It listens on a free port of 127.0.0.1
only (its unix socket stays in that directory) and is stopped by its PID. Each test gets
a database of its own from ``fresh_database``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_names = itertools.count()


class PostgresUnavailable(RuntimeError):
    """The server could not be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(*command: str) -> None:
    result = subprocess.run(["runuser", "-u", "postgres", "--", *command],
                            capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise PostgresUnavailable(f"{command[0]} failed: {result.stderr.strip()[-800:]}")


def _wait_ready(url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-800:] if log.exists() else ""
                raise PostgresUnavailable(f"no connection after {START_TIMEOUT_S}s: {exc}; "
                                          f"log: {text}") from exc
            time.sleep(0.1)


def _stop(data: Path) -> None:
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # fast shutdown: ends connections, then exits
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server, yield the URL of its ``postgres`` database, stop it at the end.

    Raises ``PostgresUnavailable`` when it cannot start (not installed, no postgres user).
    """
    if not (BIN / "initdb").exists() or shutil.which("runuser") is None:
        raise PostgresUnavailable(f"{BIN / 'initdb'} or runuser is missing "
                                  "(apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="orch-pg-"))
    data, port = root / "data", _free_port()
    try:
        try:
            shutil.chown(root, user="postgres", group="postgres")
        except (OSError, LookupError) as exc:  # not root, or no postgres user
            raise PostgresUnavailable(f"cannot hand {root} to the postgres user: {exc}") from exc
        _as_postgres(str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                     "--no-sync", "-E", "UTF8")
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _SERVERS[url] = (root, port)
        _start(root, port)
        yield url
    finally:
        _SERVERS.pop(f"postgresql://postgres@127.0.0.1:{port}/postgres", None)
        _stop(data)
        shutil.rmtree(root, ignore_errors=True)


_SERVERS: dict[str, tuple[Path, int]] = {}  # server URL -> (its directory, its port)


def _start(root: Path, port: int) -> None:
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c fsync=off"
               f" -c unix_socket_directories={root} -c max_connections=200")
    _as_postgres(str(BIN / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"),
                 "-o", options, "start")
    _wait_ready(f"postgresql://postgres@127.0.0.1:{port}/postgres", root / "log")


def restart(server_url: str) -> None:
    """Stop the server of ``running_postgres`` (ending every connection) and start it again
    on the same port and data."""
    root, port = _SERVERS[server_url]
    _stop(root / "data")
    _start(root, port)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; its URL."""
    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name
