"""ComfyUI's own ``script_examples`` get their images through the gateway, unchanged but for
the server address.

Each script is copied from the provisioned ComfyUI, its address ``127.0.0.1:8188`` is
replaced by ``127.0.0.1:PORT/comfyui/<token>``, and it runs in a subprocess with this
environment's python. The examples load ``v1-5-pruned-emaonly.safetensors``: a dedicated
node gets that name as a link to the tiny random-weight checkpoint.

One more change, to the *graph text only*: the examples sample 20 steps at 512x512, which
takes minutes per image on a CPU even with the tiny checkpoint, so the copies sample 2 steps
at 64x64 (``GRAPH_SIZE``). No line of the scripts' code is touched.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.provision.install import ComfyInstall
from orchestrator.provision.server import LocalComfy
from tests.conftest import ComfyFactory
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import Service, start_service

pytestmark = pytest.mark.every_comfyui  # every release ships its own script_examples
EXAMPLE_CHECKPOINT = "v1-5-pruned-emaonly.safetensors"  # what the examples load
EXAMPLE_ADDRESS = "127.0.0.1:8188"
GRAPH_SIZE = {'"steps": 20': '"steps": 2', '"width": 512': '"width": 64',
              '"height": 512': '"height": 64'}
SCRIPT_TIMEOUT_S = 240
# Runs a copied script as __main__ and writes the images it ended with (its global
# ``images``: {node id: [bytes]}) to files, so the test can open them.
RUNNER = """
import pathlib, runpy, sys
scope = runpy.run_path(sys.argv[1], run_name="__main__")
out = pathlib.Path(sys.argv[2])
for node_id, images in (scope.get("images") or {}).items():
    for index, data in enumerate(images):
        (out / f"{node_id}-{index}.img").write_bytes(data)
"""


@pytest.fixture(scope="module")
def example_node(comfy_factory: ComfyFactory, tiny_checkpoint: Path) -> LocalComfy:
    """A node where the examples' checkpoint name exists (the tiny checkpoint), added to
    the running node as a user drops a model in (ComfyUI lists the folder again when it
    changes)."""
    server = comfy_factory()
    (server.base_dir / "models" / "checkpoints" / EXAMPLE_CHECKPOINT).symlink_to(
        tiny_checkpoint)
    return server


@pytest.fixture(scope="module")
def examples(example_node: LocalComfy,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("examples"), example_node.url)
    yield svc
    svc.stop()


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the example"
    return text.replace(old, new)


def _copy(comfy_install: ComfyInstall, name: str, address: str, folder: Path) -> Path:
    text = (comfy_install.src / "script_examples" / name).read_text()
    text = _replace_once(text, EXAMPLE_ADDRESS, address)
    for old, new in GRAPH_SIZE.items():
        text = _replace_once(text, old, new)
    copy = folder / name
    copy.write_text(text)
    return copy


def _run(script: Path, out: Path) -> list[Image.Image]:
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", RUNNER, str(script), str(out)],
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    images: list[Image.Image] = []
    for path in sorted(out.iterdir()):
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            image.load()
            images.append(image)
    return images


def _address(service: Service) -> str:
    return service.api.url.removeprefix("http://") + f"/comfyui/{service.alice}"


@pytest.mark.parametrize("name", ["websockets_api_example.py",
                                  "websockets_api_example_ws_images.py"])
def test_websocket_examples_receive_their_images(name: str, examples: Service,
                                                 comfy_install: ComfyInstall,
                                                 tmp_path: Path) -> None:
    script = _copy(comfy_install, name, _address(examples), tmp_path)

    images = _run(script, tmp_path / "images")

    assert len(images) == 1
    assert images[0].format == "PNG" and images[0].size == (64, 64)


def test_basic_example_queues_a_prompt_that_produces_an_image(examples: Service,
                                                              comfy_install: ComfyInstall,
                                                              tmp_path: Path) -> None:
    before = {j.id for j in examples.orch.list(owner="alice").jobs}
    script = _copy(comfy_install, "basic_api_example.py", _address(examples), tmp_path)

    assert _run(script, tmp_path / "images") == []  # it only queues, as written

    jobs = [j for j in examples.orch.list(owner="alice").jobs if j.id not in before]
    assert len(jobs) == 1
    wait_until(lambda: examples.orch.get(jobs[0].id).status.terminal, 120, "the prompt")
    outputs = examples.orch.outputs_of(jobs[0].id)
    assert [(o.mime, o.width, o.height) for o in outputs] == [("image/png", 64, 64)]
