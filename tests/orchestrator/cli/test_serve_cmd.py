"""`comfy-orch serve` as an operator runs it: a real process, a real node, Ctrl-C to stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from orchestrator.tokens import TokenStore
from tests import graphs

START_TIMEOUT_S = 60.0


def wait_for_url(process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    assert process.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        found = re.search(r"serving on (http://\S+)", line)
        if found:
            return found.group(1)
        if not line and process.poll() is not None:
            break
    raise AssertionError("serve printed no address:\n" + "".join(seen))


def test_serve_runs_the_api_until_interrupted(comfy_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with TokenStore.open(data) as tokens:
        token = tokens.create("alice")
    with subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "--port", "0", "--data", str(data),
         "--node", comfy_url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            url = wait_for_url(process)
            assert requests.get(url + "/v1/health", timeout=10).json()["nodes_up"] == 1
            job = requests.post(url + "/v1/jobs", json={"graph": graphs.solid_image(8, 8)},
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert job.status_code == 202
            assert (data / "workflows").is_dir()  # the default workflows folder was made
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)
    assert code == 0
