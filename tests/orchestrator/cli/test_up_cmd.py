"""`comfy-orch up` as a user runs it: service + panel, first-run token, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from orchestrator.provision.install import ComfyInstall
from orchestrator.provision.server import free_port

ROOT = Path(__file__).resolve().parents[3]


def read_until(proc: subprocess.Popen[str], *markers: str, timeout: float) -> dict[str, str]:
    """Lines of the child's output that start with each marker (e.g. 'service:')."""
    assert proc.stdout is not None
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        for marker in markers:
            if line.startswith(marker):
                found[marker] = line[len(marker):].strip()
        if len(found) == len(markers) or time.monotonic() > deadline:
            break
    missing = set(markers) - set(found)
    assert not missing, f"`comfy-orch up` never printed {missing}"
    return found


@pytest.fixture()
def up(tmp_path: Path, comfy_install: ComfyInstall) -> Iterator[list[str]]:
    procs: list[subprocess.Popen[str]] = []
    base = [sys.executable, "-m", "orchestrator", "up", "--data", str(tmp_path / "data"),
            "--port", "0", "--workflows", str(ROOT / "workflows")]
    env = {**os.environ, "COMFY_ORCH_HOME": str(comfy_install.root.parent)}

    def start(*extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*base, *extra], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        procs.append(proc)
        return proc

    yield start  # type: ignore[misc]
    for proc in procs:
        stop_up(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def stop_up(proc: subprocess.Popen[str]) -> None:
    """SIGTERM first, so `up` stops its panel and ComfyUI (each in a session of its own),
    then SIGKILL if it hangs; a failing test must not leave servers behind."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a dead child nobody reaped yet)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def managed_pid(proc: subprocess.Popen[str]) -> int:
    line = read_until(proc, "managed ComfyUI:", timeout=240)["managed ComfyUI:"]
    return int(line.rsplit("pid ", 1)[1].rstrip(")"))


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while is_running(pid):
        assert time.monotonic() < deadline, f"ComfyUI pid {pid} outlived `comfy-orch up`"
        time.sleep(0.1)


def test_up_serves_api_and_panel_with_a_first_run_admin_token(
    up: object, comfy_url: str, tmp_path: Path
) -> None:
    panel_port = free_port()
    proc = up("--node", comfy_url, "--panel-port", str(panel_port))  # type: ignore[operator]
    lines = read_until(proc, "service:", "panel:", timeout=120)
    api = lines["service:"].split()[0]
    token_file = tmp_path / "data" / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    nodes = requests.get(f"{api}/v1/nodes", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
    assert nodes.status_code == 200 and nodes.json()["nodes"][0]["url"] == comfy_url
    deadline = time.monotonic() + 60
    while True:  # Streamlit answers its health route once the panel is up
        try:
            if requests.get(f"http://127.0.0.1:{panel_port}/_stcore/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the panel never answered"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{panel_port}/_stcore/health", timeout=2)


def test_up_starts_a_managed_comfyui_when_no_node_answers(up: object, tmp_path: Path) -> None:
    """... on the port asked for, and prints the lines to paste (address, token, node) and
    what the test checkpoint draws."""
    comfy_port = free_port()
    proc = up("--node", "http://127.0.0.1:9", "--no-panel",  # type: ignore[operator]
              "--comfyui-port", str(comfy_port))
    lines = read_until(proc, "managed ComfyUI:", "service:", "note:", "  export COMFYUI_URL=",
                       timeout=240)
    comfy = lines["managed ComfyUI:"].split()[0]
    assert comfy == f"http://127.0.0.1:{comfy_port}" == lines["  export COMFYUI_URL="]
    assert "noise, by design" in lines["note:"] and "--node" in lines["note:"]
    api = lines["service:"].split()[0]
    token = (tmp_path / "data" / "admin-token").read_text().strip()
    graph = {"1": {"class_type": "EmptyImage",
                   "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 255}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "up"}}}
    auth = {"Authorization": f"Bearer {token}"}
    job = requests.post(f"{api}/v1/jobs", json={"graph": graph}, headers=auth, timeout=30)
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 120
    while (state := requests.get(f"{api}/v1/jobs/{job.json()['id']}", headers=auth,
                                 timeout=10).json())["status"] != "succeeded":
        assert state["status"] in ("queued", "running") and time.monotonic() < deadline, state
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{comfy}/system_stats", timeout=2)  # the managed ComfyUI stopped too


def test_up_prints_shell_lines_that_export_address_and_token(tmp_path: Path) -> None:
    from orchestrator.cli.up_cmd import shell_lines

    token_file = tmp_path / "my data" / "admin-token"
    token_file.parent.mkdir()
    token_file.write_text("co_abc_secret\n")
    text = shell_lines("http://127.0.0.1:8288", token_file, ("http://127.0.0.1:8188",))
    script = "\n".join(line.strip() for line in text.splitlines()[1:])
    done = subprocess.run(["bash", "-c", script + "\necho $COMFY_BASE_URL $TOKEN "
                           "$COMFY_API_KEY $COMFYUI_URL"], capture_output=True, text=True,
                          check=True, timeout=30)
    assert done.stdout.split() == ["http://127.0.0.1:8288", "co_abc_secret", "co_abc_secret",
                                   "http://127.0.0.1:8188"]
    assert "co_abc_secret" not in text  # the secret stays in its file, out of the log


def test_up_killed_outright_takes_its_managed_comfyui_with_it(up: object) -> None:
    proc = up("--node", "http://127.0.0.1:9", "--no-panel")  # type: ignore[operator]
    pid = managed_pid(proc)
    assert is_running(pid)
    # What a crash, the OOM killer or a test's last-resort teardown does: no handler runs.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    wait_gone(pid)


def panel_answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).ok
    except requests.ConnectionError:
        return False


def test_up_killed_outright_takes_its_panel_with_it(up: object, comfy_url: str) -> None:
    panel_port = free_port()
    proc = up("--node", comfy_url, "--panel-port", str(panel_port))  # type: ignore[operator]
    read_until(proc, "service:", "panel:", timeout=120)
    deadline = time.monotonic() + 60
    while not panel_answers(panel_port):
        assert time.monotonic() < deadline, "the panel never answered"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # no handler of `up` runs
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while panel_answers(panel_port):
        assert time.monotonic() < deadline, "the panel outlived `comfy-orch up`"
        time.sleep(0.2)


def test_up_that_fails_after_starting_comfyui_stops_it(up: object, tmp_path: Path) -> None:
    with socket.socket() as taken:  # the service's port is in use: `up` fails late
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = up("--node", "http://127.0.0.1:9", "--no-panel",  # type: ignore[operator]
                  "--port", str(port))
        pid = managed_pid(proc)
        assert proc.wait(timeout=120) == 2
        assert proc.stdout is not None
        assert f"cannot listen on 127.0.0.1:{port}" in proc.stdout.read()
    wait_gone(pid)


def test_a_new_data_folder_gets_the_shipped_workflows_to_save_beside(tmp_path: Path) -> None:
    """Workflows dropped in the panel go to the data folder's workflows/, never into the
    checkout; the first run fills it with the shipped ones, later runs leave it alone."""
    from orchestrator.cli.up_cmd import SHIPPED_WORKFLOWS, seed_workflows

    folder = tmp_path / "data" / "workflows"
    seed_workflows(folder)
    shipped = sorted(p.name for p in SHIPPED_WORKFLOWS.glob("*.json"))
    assert sorted(p.name for p in folder.iterdir()) == shipped
    (folder / "txt2img.json").unlink()
    seed_workflows(folder)
    assert not (folder / "txt2img.json").exists()
