"""The workflows folder as an operator lives it: a real ``comfy-orch serve`` process over a
real node, files edited, renamed, dropped and uploaded in a row, watched over HTTP.

The README promises hot reload in a fraction of a second. These tests hold the service to
it from outside: each new file is listed by ``/v1/workflows`` within a second, the
process's CPU (``/proc/<pid>/stat``) is idle again within a second of the last change,
and no file, however broken, stops the service or its watcher.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.tokens import TokenStore
from tests.orchestrator.cli.test_serve_cmd import wait_for_url

# The README's promise: a change shows within a fraction of a second; we allow a whole one.
LISTED_WITHIN_S = 1.0
IDLE_WITHIN_S = 1.0
# "Idle": under a tenth of one core. A reload loop pins a whole core; the idle service (its
# node's health checks included) uses a few percent at most.
IDLE_SHARE = 0.10
CPU_WINDOW_S = 0.25
STEADY_WINDOW_S = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A file a naive json.loads cannot parse: RecursionError, not JSONDecodeError.
DEEP = "[" * 100_000 + "]" * 100_000


def solid(prefix: str) -> dict[str, Any]:
    return {"1": {"class_type": "OrchTestSolidImage",
                  "inputs": {"width": 8, "height": 8, "color": "#00ff00", "batch_size": 1,
                             "seed": "%seed%"}},
            "2": {"class_type": "SaveImage",
                  "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}


@dataclass
class Served:
    """A running ``comfy-orch serve`` process, its workflows folder and an admin token."""

    process: subprocess.Popen[str]
    url: str
    folder: Path
    admin: str
    user: str

    def workflows(self, token: str | None = None) -> dict[str, dict[str, Any]]:
        response = requests.get(self.url + "/v1/workflows", timeout=10,
                                headers={"Authorization": f"Bearer {token or self.admin}"})
        assert response.status_code == 200, response.text
        return {w["name"]: w for w in response.json()["workflows"]}

    def put(self, name: str, graph: dict[str, Any]) -> requests.Response:
        return requests.put(f"{self.url}/v1/workflows/{name}", json={"graph": graph},
                            headers={"Authorization": f"Bearer {self.admin}"}, timeout=10)

    def rss_mb(self) -> float:
        """The process's resident memory (VmRSS of /proc/<pid>/status) in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used (fields 14 and 15 of stat)."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextlib.contextmanager
def serving(comfy_url: str, root: Path, files: dict[str, str]) -> Iterator[Served]:
    """``comfy-orch serve`` at shipped defaults over ``root``, its workflows folder holding
    ``files``; stopped by its PID with Ctrl-C when the block ends."""
    folder = root / "workflows"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    with TokenStore.open(root / "data") as tokens:
        admin, user = tokens.create("root", admin=True), tokens.create("alice")
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "--port", "0", "--data",
         str(root / "data"), "--workflows", str(folder), "--node", comfy_url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield Served(process, wait_for_url(process), folder, admin, user)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def served(comfy_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The module's service, started with one good workflow."""
    with serving(comfy_url, tmp_path_factory.mktemp("served"),
                 {"steady.json": json.dumps(solid("steady"))}) as service:
        yield service


def seconds_until(served: Served, check: Callable[[dict[str, dict[str, Any]]], bool],
                  what: str, deadline_s: float = 10.0) -> float:
    """Poll ``/v1/workflows`` until ``check`` holds; the seconds it took (fails past a
    generous deadline, so a slow answer is measured, not cut off)."""
    start = time.monotonic()
    while not check(served.workflows()):
        assert served.process.poll() is None, "the service exited"
        assert time.monotonic() - start < deadline_s, f"{what} not seen in {deadline_s} s"
        time.sleep(0.02)
    return time.monotonic() - start


def cpu_share(served: Served, window_s: float) -> float:
    """The share of one core the process used over the next ``window_s`` seconds."""
    cpu, wall = served.cpu_seconds(), time.monotonic()
    time.sleep(window_s)  # measuring a rate needs a window; nothing is waited for here
    return (served.cpu_seconds() - cpu) / (time.monotonic() - wall)


def seconds_until_idle(served: Served, deadline_s: float = 10.0) -> float:
    """Seconds from now until a whole CPU window is idle."""
    start = time.monotonic()
    while cpu_share(served, CPU_WINDOW_S) >= IDLE_SHARE:
        assert time.monotonic() - start < deadline_s, f"CPU still busy after {deadline_s} s"
    return time.monotonic() - start - CPU_WINDOW_S


def operator_round(served: Served, index: int) -> dict[str, float]:
    """One round of what an operator does, each step timed until the list shows it."""
    folder = served.folder
    taken: dict[str, float] = {}
    (folder / f"drop{index}.json").write_text(json.dumps(solid(f"drop{index}")))
    taken["drop"] = seconds_until(served, lambda w: f"drop{index}" in w, "a dropped file")
    before = served.workflows()["steady"]["serving"]
    temporary = folder / ".steady.json.swp"
    temporary.write_text(json.dumps(solid(f"steady{index}")))
    os.replace(temporary, folder / "steady.json")  # an editor's save: temp file, rename
    taken["edit"] = seconds_until(served, lambda w: w["steady"]["serving"] not in (None, before),
                                  "an edited file")
    os.replace(folder / f"drop{index}.json", folder / f"moved{index}.json")
    taken["rename"] = seconds_until(
        served, lambda w: f"moved{index}" in w and f"drop{index}" not in w, "a renamed file")
    assert served.put(f"put{index}", solid(f"put{index}")).status_code == 201
    taken["put"] = seconds_until(served, lambda w: f"put{index}" in w, "an uploaded file")
    (folder / f"moved{index}.json").unlink()
    taken["delete"] = seconds_until(served, lambda w: f"moved{index}" not in w,
                                    "a deleted file")
    return taken


def test_edits_renames_drops_and_uploads_show_within_a_second_and_the_cpu_goes_idle(
        served: Served) -> None:
    served.workflows()  # a service's first answer builds its routes' models: not measured
    seconds_until_idle(served)  # nor is the start-up's own work
    rss_before = served.rss_mb()
    rounds = [operator_round(served, index) for index in range(3)]
    slowest = max(max(r.values()) for r in rounds)
    idle_after = seconds_until_idle(served)
    steady = cpu_share(served, STEADY_WINDOW_S)
    print(f"RSS {rss_before:.0f} MB before the changes, {served.rss_mb():.0f} MB after")
    for index, taken in enumerate(rounds):
        print(f"round {index}: " + ", ".join(f"{k} {v:.3f} s" for k, v in taken.items()))
    print(f"slowest change listed after {slowest:.3f} s; CPU idle {idle_after:.3f} s after "
          f"the last change; then {steady:.1%} of a core over {STEADY_WINDOW_S} s")
    assert slowest <= LISTED_WITHIN_S, rounds
    assert idle_after <= IDLE_WITHIN_S
    assert steady < IDLE_SHARE


def test_serve_starts_with_a_deeply_nested_file_and_lists_it_with_its_error(
        comfy_url: str, tmp_path: Path) -> None:
    files = {"deep.json": DEEP, "good.json": json.dumps(solid("good"))}
    with serving(comfy_url, tmp_path, files) as service:
        listed = service.workflows()
        assert listed["deep"]["ok"] is False and listed["deep"]["serving"] is None
        assert "deep.json" in listed["deep"]["error"]
        assert "deeper than 64 levels" in listed["deep"]["error"]
        assert listed["good"]["ok"] is True
        (service.folder / "later.json").write_text(json.dumps(solid("later")))
        seconds_until(service, lambda w: "later" in w, "a file dropped after start")


def test_a_deep_file_dropped_while_running_keeps_the_watcher_and_the_last_good_version(
        served: Served) -> None:
    good = served.workflows()["steady"]
    (served.folder / "steady.json").write_text(DEEP)
    (served.folder / "deep2.json").write_text(DEEP)
    seconds_until(served, lambda w: w["steady"]["error"] is not None and "deep2" in w,
                  "the deep files")
    listed = served.workflows()
    assert listed["steady"]["serving"] == good["serving"]  # the last good version serves
    assert "steady.json" in listed["steady"]["error"]
    assert "deep2.json" in listed["deep2"]["error"]
    detail = requests.get(served.url + "/v1/workflows/steady", timeout=10,
                          headers={"Authorization": f"Bearer {served.user}"}).json()
    assert detail["graph"] is not None
    (served.folder / "after.json").write_text(json.dumps(solid("after")))
    assert seconds_until(served, lambda w: "after" in w, "a file after the deep ones") <= (
        LISTED_WITHIN_S)
    (served.folder / "steady.json").write_text(json.dumps(solid("steady-again")))
    seconds_until(served, lambda w: w["steady"]["ok"], "the fixed file")
