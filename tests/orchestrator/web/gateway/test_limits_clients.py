"""Real ComfyUI clients through the gateway at the shipped limits: none is ever refused.

ComfyUI's own websocket example runs in a loop, as a Gradio app calls it, and clients of
one token poll ``/history/{id}`` (and ``GET /v1/jobs/{id}``) every 100 ms while jobs run,
as SillyTavern does. Both sent 429s under the old limit of 600 requests a minute per
token within seconds; what costs GPU time is now bounded by the queue, not by reads.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from orchestrator.provision.install import ComfyInstall
from tests import graphs
from tests.orchestrator.web.conftest import Service
from tests.orchestrator.web.gateway.conftest import ComfyApi

EXAMPLE = "websockets_api_example.py"
EXAMPLE_ADDRESS = "127.0.0.1:8188"
# Graph text only, as in test_script_examples: the tiny checkpoint, 2 steps at 64x64.
GRAPH_TEXT = {"v1-5-pruned-emaonly.safetensors": graphs.TINY_CHECKPOINT,
              '"steps": 20': '"steps": 2', '"width": 512': '"width": 64',
              '"height": 512': '"height": 64'}
LOOPS = 120  # runs of the example's flow after its own run; each is 3 requests and a socket
LOOP_TIMEOUT_S = 600
# Runs the copied example as __main__ (one prompt of its own graph), then its own
# get_images LOOPS more times on trivial graphs, each on a fresh socket, as the example's
# last comment describes a repeated caller. Prints one JSON line: images per run, and
# every HTTP error status it met.
RUNNER = """
import json, sys, urllib.error, websocket
scope = __import__("runpy").run_path(sys.argv[1], run_name="__main__")
graph, loops, base_seed = json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
images, refusals = [sum(map(len, scope["images"].values()))], []
for n in range(loops):
    graph["1"]["inputs"]["seed"] = base_seed + n
    ws = websocket.WebSocket()
    ws.connect("ws://{}/ws?clientId={}".format(scope["server_address"], scope["client_id"]))
    try:
        found = scope["get_images"](ws, graph)
    except urllib.error.HTTPError as exc:
        refusals.append(exc.code)
        continue
    finally:
        ws.close()
    images.append(sum(map(len, found.values())))
print(json.dumps({"images": images, "refusals": refusals}))
"""
POLLERS_GATEWAY = 4  # clients of one token polling /history/{id}
POLLERS_REST = 2  # and GET /v1/jobs/{id}
POLL_S = 0.1  # SillyTavern's interval
NAPS = 8  # jobs the pollers watch, one after another on the node
NAP_S = 1.0
POLL_TIMEOUT_S = 180
_seeds = itertools.count(int(time.time()) % 1_000_000 * 1000)  # never a cached prompt


def _example(comfy_install: ComfyInstall, address: str, folder: Path) -> Path:
    text = (comfy_install.src / "script_examples" / EXAMPLE).read_text()
    for old, new in {EXAMPLE_ADDRESS: address, **GRAPH_TEXT}.items():
        assert text.count(old) == 1, f"expected {old!r} once in the example"
        text = text.replace(old, new)
    copy = folder / EXAMPLE
    copy.write_text(text)
    return copy


def test_comfyuis_websocket_example_in_a_loop_is_never_refused(
        service: Service, comfy_install: ComfyInstall, tmp_path: Path) -> None:
    address = service.api.url.removeprefix("http://") + f"/comfyui/{service.alice}"
    script = _example(comfy_install, address, tmp_path)
    trivial = graphs.solid_image(16, 16, "#808080", prefix="loop")

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", RUNNER, str(script), json.dumps(trivial),
                           str(LOOPS), str(next(_seeds) * 1000)],
                          capture_output=True, text=True, timeout=LOOP_TIMEOUT_S)
    took = time.monotonic() - started

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refusals"] == []
    assert result["images"] == [1] * (LOOPS + 1)
    print(f"{LOOPS + 1} runs of {EXAMPLE} through the gateway in {took:.1f} s, 0 refused")


class Pollers:
    """Clients polling one job each every ``POLL_S`` until told to stop; every status kept."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, poll: Callable[[], int]) -> None:
        def loop() -> None:
            while not self.stop.is_set():
                status = poll()
                with self.lock:
                    self.statuses[status] += 1
                self.stop.wait(POLL_S)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_clients_of_one_token_polling_every_100_ms_are_never_refused(
        service: Service, alice: ComfyApi) -> None:
    prompt_ids = [alice.prompt(graphs.sleep(NAP_S, 4, seed=next(_seeds))) for _ in range(NAPS)]
    pollers = Pollers()
    for n in range(POLLERS_GATEWAY):
        path = f"/history/{prompt_ids[n % NAPS]}"
        pollers.start(lambda path=path: alice.get(path).status_code)
    for n in range(POLLERS_REST):
        path = f"/v1/jobs/{prompt_ids[-1 - n]}"
        pollers.start(lambda path=path: service.api.get(path, token=service.alice).status_code)

    started = time.monotonic()
    try:
        service.api.wait_job(service.alice, prompt_ids[-1], timeout=POLL_TIMEOUT_S)
    finally:
        pollers.join()
    took = time.monotonic() - started

    polls = sum(pollers.statuses.values())
    assert dict(pollers.statuses) == {200: polls}
    assert polls >= (POLLERS_GATEWAY + POLLERS_REST) * NAPS  # they polled all along
    print(f"{polls} polls from {POLLERS_GATEWAY + POLLERS_REST} clients of one token in "
          f"{took:.1f} s ({polls / took:.0f}/s), all 200")
