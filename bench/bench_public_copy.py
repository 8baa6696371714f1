"""What serving a public output to someone but its owner costs: the copy without the graph
ComfyUI embeds, made on first view and kept beside the blob.

Run: ``.venv/bin/python bench/bench_public_copy.py``. For ComfyUI-like PNGs (random pixels,
``prompt`` and ``workflow`` text chunks each holding a 256 px base64 avatar) it times the
pure strip, the first ``BlobStore.public_copy`` (read, strip, write) and later ones (a
cached file: one stat). Stripping at serve time costs only outputs others view, covers
outputs stored before the copy existed, and leaves the owner's bytes and ETag alone.
"""

from __future__ import annotations

import base64
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, PngImagePlugin

from orchestrator.embedded import stripped
from orchestrator.outputs import BlobStore

RUNS = 200


def comfy_like_png(side: int) -> bytes:
    avatar = io.BytesIO()
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(avatar, "PNG")
    graph = json.dumps({"1": {"inputs": {"image": base64.b64encode(avatar.getvalue()).decode()}}})
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", graph)
    info.add_text("workflow", graph)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(
        buffer, "PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def median_ms(action: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(side: int) -> str:
    data = comfy_like_png(side)
    strip_ms = median_ms(lambda: stripped(data, "image/png"), 20)
    with tempfile.TemporaryDirectory() as folder:
        blobs = BlobStore(Path(folder))
        sha256 = blobs.put(data).sha256
        start = time.perf_counter()
        copy = blobs.public_copy(sha256, "image/png")
        first_ms = (time.perf_counter() - start) * 1000
        cached_ms = median_ms(lambda: blobs.public_copy(sha256, "image/png"))
        size = copy.stat().st_size
    return (f"{side} px PNG {len(data) / 1e6:.2f} MB -> {size / 1e6:.2f} MB: strip "
            f"{strip_ms:.2f} ms, first copy {first_ms:.1f} ms, cached {cached_ms * 1000:.1f} us")


def main() -> None:
    for side in (512, 1024):
        print(measure(side))


if __name__ == "__main__":
    main()
