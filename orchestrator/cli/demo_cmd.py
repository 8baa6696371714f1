"""``comfy-orch demo``: from nothing to an image on this machine, with no other step.

Installs ComfyUI into the cache when missing, starts it on a free loopback port with the
random-weight test checkpoint, runs the shipped text-to-image example through it, writes
the image and stops ComfyUI again.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from orchestrator.cli.comfyui_cmd import ensure_tiny_checkpoint
from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.messages import Message
from orchestrator.comfy.progress import GraphProgress
from orchestrator.console import ProgressLine
from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME
from orchestrator.provision.install import default_home, ensure_installed
from orchestrator.provision.server import LocalComfy, prepare_base_dir

DEMO_SIZE = 128  # the random-weight checkpoint is slow above 128 px on a CPU


def register(commands: Any) -> None:
    cmd = commands.add_parser("demo", help="install and start a local CPU ComfyUI, make one "
                                           "image with the example workflow, stop")
    cmd.add_argument("--out", type=Path, default=Path("demo-output"), metavar="DIR",
                     help="folder for the image and its graph (default ./demo-output)")
    cmd.add_argument("--home", type=Path, default=None, help="cache folder (default "
                     "$COMFY_ORCH_HOME or ~/.cache/comfy-orchestrator)")
    cmd.set_defaults(handler=run_demo)


def demo_graph(seed: int) -> dict[str, Any]:
    """ComfyUI's classic default graph, on the random-weight checkpoint."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": TINY_CHECKPOINT_NAME}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": DEMO_SIZE, "height": DEMO_SIZE, "batch_size": 1}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": 8, "cfg": 7.0, "sampler_name": "euler",
                         "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                         "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "demo"}},
    }


def run_demo(args: argparse.Namespace) -> int:
    home = args.home or default_home()
    inst = ensure_installed(home, progress=lambda line: print(line, flush=True))
    base = prepare_base_dir(inst, home / "base")
    ensure_tiny_checkpoint(base)
    graph = demo_graph(random.SystemRandom().randrange(2**32))
    print("starting a local CPU ComfyUI (10-40 s) ...", flush=True)
    with LocalComfy(inst, base) as server, ComfyClient(server.url) as client:
        print(f"ComfyUI is up at {server.url}", flush=True)
        line = ProgressLine("demo")
        tracker = GraphProgress.for_graph(graph)

        def on_message(msg: Message) -> None:
            snap = tracker.update(msg)
            if snap is not None:
                line.update(snap.fraction, f"{snap.current_class or ''}", node=snap.current_node)

        result = client.run(graph, on_message=on_message)
        line.done("done")
        args.out.mkdir(parents=True, exist_ok=True)
        for file in result.outputs:
            target = args.out / file.filename
            target.write_bytes(client.view(file))
            print(target)
    (args.out / "workflow.json").write_text(json.dumps(graph, indent=2))
    return 0
