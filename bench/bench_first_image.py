"""The first image: how long a newcomer waits for it on the managed local CPU pool.

Run: ``.venv/bin/python bench/bench_first_image.py``. It starts the managed ComfyUI as
``comfy-orch up`` does (cache, random-weight test checkpoint, a free loopback port), then
submits the shipped text-to-image workflow with the values the panel's Generate form starts
with on that pool (``ui.pool``: 128 x 128 px, 4 steps, everything else the workflow's
defaults, the model taken from the pool) and times submit → image, the way pressing
Generate does. Goal: the first image (model not yet loaded) under 30 s on a 2-core machine.
A second image shows the warm time; ComfyUI's start is printed apart, since ``up`` waits for
it before the panel opens.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from orchestrator.cli.up_cmd import managed_comfy
from orchestrator.provision.install import default_home
from orchestrator.service import Orchestrator
from ui import pool

SHIPPED = Path(__file__).resolve().parents[1] / "workflows"
GOAL_S = 30.0
VALUES = {"prompt": "a lighthouse at dusk", "seed": -1, "width": pool.QUICK_SIDE,
          "height": pool.QUICK_SIDE, "steps": pool.QUICK_STEPS}


def one_image(orch: Orchestrator) -> float:
    start = time.perf_counter()
    job = orch.submit("txt2img", VALUES).wait(timeout=600)
    elapsed = time.perf_counter() - start
    if job.status.value != "succeeded":
        raise SystemExit(f"the image failed: {[i.error for i in job.items]}")
    return elapsed


def main() -> None:
    started = time.perf_counter()
    with managed_comfy(default_home()) as comfy, tempfile.TemporaryDirectory() as data:
        ready = time.perf_counter() - started
        with Orchestrator(data_dir=Path(data), workflows_dir=SHIPPED, nodes=[comfy.url],
                          watch_workflows=False) as orch:
            first = one_image(orch)
            second = one_image(orch)
    print(f"managed CPU ComfyUI ready in {ready:.1f} s (install excluded)")
    print(f"first image at the panel's defaults ({pool.QUICK_SIDE}x{pool.QUICK_SIDE} px, "
          f"{pool.QUICK_STEPS} steps): {first:.1f} s (goal < {GOAL_S:.0f} s) "
          f"{'OK' if first < GOAL_S else 'MISSED'}; second image: {second:.1f} s")


if __name__ == "__main__":
    main()
