"""Registry benchmarks: render cost against ``json.loads``, and hot-reload latency.

Run: ``.venv/bin/python bench/bench_registry.py``. Goals: rendering a 300-node graph takes
at most 2x a ``json.loads`` of the same file (so a request never pays more for substitution
than for reading the workflow again), and an edited file serves within 1 s at p95. Render
times are per request, with the workflow version's compiled graph cached as it is when
serving; the first render of a version, which compiles it, is printed beside them.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.registry import WorkflowRegistry
from orchestrator.rendering import render_workflow
from orchestrator.workflow import load_workflow

NODES = 300
RENDER_REPEATS = 500
FIRST_RENDERS = 50
EDITS = 30
RENDER_GOAL = 2.0
RELOAD_GOAL_S = 1.0
POLL_S = 0.001

VALUES = {"model": "m.safetensors", "prompt": "a red fox in the snow", "steps": "20",
          "seed": "-1", "width": 512, "height": 512}


def big_graph(nodes: int = NODES, *, literal_every: int = 0) -> dict[str, Any]:
    """Repeated txt2img chains: loaders, prompts, latents, samplers, decoders, saves.

    Every chain uses placeholders (SillyTavern density: about two per node) unless
    ``literal_every`` is n > 0: then only every n-th chain does, the others hold values.
    """
    graph: dict[str, Any] = {}
    for base in range(0, nodes, 6):
        ids = [str(base + i + 1) for i in range(6)]
        ckpt, pos, neg, latent, sampler, save = ids
        graph[ckpt] = {"class_type": "CheckpointLoaderSimple",
                       "inputs": {"ckpt_name": "%model%"}}
        graph[pos] = {"class_type": "CLIPTextEncode",
                      "inputs": {"text": "masterpiece, %prompt%, detailed", "clip": [ckpt, 1]}}
        graph[neg] = {"class_type": "CLIPTextEncode",
                      "inputs": {"text": "%negative_prompt%", "clip": [ckpt, 1]}}
        graph[latent] = {"class_type": "EmptyLatentImage",
                         "inputs": {"width": "%width%", "height": "%height%", "batch_size": 1}}
        graph[sampler] = {"class_type": "KSampler", "inputs": {
            "seed": "%seed%", "steps": "%steps%", "cfg": "%scale%", "sampler_name": "%sampler%",
            "scheduler": "%scheduler%", "denoise": "%denoise%", "model": [ckpt, 0],
            "positive": [pos, 0], "negative": [neg, 0], "latent_image": [latent, 0]}}
        graph[save] = {"class_type": "SaveImage",
                       "inputs": {"images": [sampler, 0], "filename_prefix": "bench"}}
        if literal_every and (base // 6) % literal_every:
            _fill_literals(graph, ids)
    return graph


def _fill_literals(graph: dict[str, Any], ids: list[str]) -> None:
    for node_id in ids:
        inputs = graph[node_id]["inputs"]
        for name, value in inputs.items():
            if isinstance(value, str) and "%" in value:
                inputs[name] = 20 if value.startswith("%") else "a literal prompt"


def paired_medians(first: Callable[[], object], second: Callable[[], object],
                   repeats: int) -> tuple[float, float]:
    """Median seconds per call of each, measured alternately in one run.

    Alternating puts both under the same machine load; the median discards the calls that
    other processes slowed down (or a lucky cache made fast) on either side.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def bench_render(label: str, graph: dict[str, Any]) -> float:
    """Print and return median render time over median ``json.loads`` time of one file.

    The render side is a request as the service serves it: the workflow comes from a
    registry that loaded the file, and the version's compiled graph is cached.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.json"
        path.write_text(json.dumps(graph, indent=2))
        text = path.read_text()  # the bytes json.loads parses are the bytes the registry read
        with WorkflowRegistry(Path(tmp), watch=False) as registry:
            nodes = len(registry.get("bench").graph)
            rng = random.Random(0)
            parse, render = paired_medians(
                lambda: json.loads(text),
                lambda: render_workflow(registry.get("bench"), VALUES, rng=rng),
                RENDER_REPEATS)
    first = statistics.median(_first_render(text) for _ in range(FIRST_RENDERS))
    ratio = render / parse
    verdict = "OK" if ratio <= RENDER_GOAL else "MISSED"
    print(f"render of a {nodes}-node graph, {label} ({len(text) // 1024} KiB): "
          f"median {render * 1e3:.2f} ms; json.loads of the same file: {parse * 1e3:.2f} ms; "
          f"ratio {ratio:.2f}x (goal <= {RENDER_GOAL}x) {verdict}; first render of a version "
          f"(compiles the graph): {first * 1e3:.2f} ms ({first / parse:.2f}x)")
    return ratio


def _first_render(text: str) -> float:
    workflow = load_workflow("first", text)  # a new graph: the render must compile it
    start = time.perf_counter()
    render_workflow(workflow, VALUES, rng=random.Random(0))
    return time.perf_counter() - start


def bench_reload() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "wf.json").write_text(json.dumps(big_graph(12)))
        latencies = []
        with WorkflowRegistry(folder) as registry:
            for edit in range(EDITS):
                latencies.append(_one_edit(registry, folder, edit))
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"hot reload over {EDITS} editor saves: p50 {p50 * 1e3:.1f} ms, "
          f"p95 {p95 * 1e3:.1f} ms, max {max(latencies) * 1e3:.1f} ms "
          f"(goal p95 < {RELOAD_GOAL_S * 1e3:.0f} ms) {'OK' if p95 < RELOAD_GOAL_S else 'MISSED'}")
    return p95


def _one_edit(registry: WorkflowRegistry, folder: Path, edit: int) -> float:
    graph = big_graph(12)
    graph["6"]["inputs"]["filename_prefix"] = f"edit-{edit}"
    tmp = folder / ".wf.json.swp"
    tmp.write_text(json.dumps(graph))
    start = time.perf_counter()
    os.replace(tmp, folder / "wf.json")  # an editor's atomic save
    deadline = start + 10 * RELOAD_GOAL_S
    while registry.get("wf").graph["6"]["inputs"]["filename_prefix"] != f"edit-{edit}":
        if time.perf_counter() > deadline:
            raise SystemExit(f"edit {edit} was not picked up within {deadline - start:.0f} s")
        time.sleep(POLL_S)
    return time.perf_counter() - start


def main() -> None:
    every = bench_render("placeholders in every chain", big_graph())
    one = bench_render("placeholders in 1 chain of 10", big_graph(literal_every=10))
    print(f"render / json.loads: {every:.2f}x with placeholders in every chain, {one:.2f}x in "
          f"1 chain of 10 (goal <= {RENDER_GOAL}x) "
          f"{'OK' if max(every, one) <= RENDER_GOAL else 'MISSED'}")
    bench_reload()


if __name__ == "__main__":
    main()
