"""Nodes that make a real ComfyUI behave on demand: take time, report progress, fail, draw.

They use the classic node API (INPUT_TYPES, RETURN_TYPES, FUNCTION) so they load on
ComfyUI 0.3.75, and only torch, numpy and Pillow from the server's own environment. The
optional ``seed`` inputs do nothing but change the graph, because ComfyUI reuses the output
of any node whose inputs did not change and would then skip it (and its events).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
from pathlib import Path
from typing import Any

import comfy.model_management
import comfy.utils
import folder_paths
import numpy as np
import torch
from PIL import Image, ImageOps

CATEGORY = "orchestrator/test"
SEED = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF})
# Sleeping in slices this long (seconds) keeps /interrupt answered within a tenth of a second.
SLEEP_SLICE = 0.05
HEX_COLOR = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
DATA_URL_PREFIX = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
# A file in the server's base directory holding a number: this server's sleep node takes
# that many times longer, so two real servers play a fast and a slow GPU (read on every
# run, so a test may change it while the server runs). Same name as in tests/faults.py.
SPEED_FACTOR_FILE = "orch_test_slowdown.txt"

InputTypes = dict[str, dict[str, Any]]


def black_image(size: int = 8) -> torch.Tensor:
    """A [1, size, size, 3] black IMAGE, for nodes that must return something drawable."""
    return torch.zeros((1, size, size, 3), dtype=torch.float32)


def parse_color(color: str) -> tuple[float, float, float]:
    """``#rrggbb`` or ``#rgb`` (the ``#`` optional) as three floats in 0..1."""
    match = HEX_COLOR.fullmatch(color.strip())
    if match is None:
        raise ValueError(f"color {color!r} is not a hex colour; use #rrggbb, e.g. #ff0000")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    r, g, b = (int(digits[i:i + 2], 16) / 255.0 for i in (0, 2, 4))
    return r, g, b


def decode_base64_image(text: str) -> Image.Image:
    """Open a base64 PNG/JPEG string, with or without a ``data:image/...;base64,`` prefix."""
    payload = DATA_URL_PREFIX.sub("", text.strip())
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
    except (binascii.Error, ValueError, OSError) as exc:
        shown = text[:40] + ("..." if len(text) > 40 else "")
        raise ValueError(f"image {shown!r} is not a base64-encoded PNG or JPEG: {exc}") from exc
    return ImageOps.exif_transpose(image)


class OrchTestSleep:
    """Sleep ``seconds`` in ``steps`` equal parts, reporting progress after each part."""

    @classmethod
    def INPUT_TYPES(cls) -> InputTypes:
        return {
            "required": {
                "seconds": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 600.0, "step": 0.01}),
                "steps": ("INT", {"default": 4, "min": 1, "max": 1000}),
            },
            "optional": {"image": ("IMAGE",), "seed": SEED},
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "sleep"
    CATEGORY = CATEGORY

    def sleep(self, seconds: float, steps: int, image: torch.Tensor | None = None,
              seed: int = 0) -> tuple[torch.Tensor]:
        progress = comfy.utils.ProgressBar(steps)
        seconds *= slowdown()
        for step in range(steps):
            _interruptible_sleep(seconds / steps)
            progress.update_absolute(step + 1, steps)
        return (image if image is not None else black_image(),)


def slowdown() -> float:
    """This server's speed factor (``SPEED_FACTOR_FILE``); 1.0 when the file is absent."""
    path = Path(folder_paths.base_path) / SPEED_FACTOR_FILE
    try:
        return max(float(path.read_text().strip()), 0.0)
    except (OSError, ValueError):
        return 1.0


def _interruptible_sleep(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        comfy.model_management.throw_exception_if_processing_interrupted()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, SLEEP_SLICE))


class OrchTestFail:
    """Raise ``RuntimeError(message)`` when ``fail`` is on; otherwise pass an image through."""

    @classmethod
    def INPUT_TYPES(cls) -> InputTypes:
        return {
            "required": {
                "message": ("STRING", {"default": "requested failure"}),
                "fail": ("BOOLEAN", {"default": True}),
            },
            "optional": {"trigger": ("IMAGE",)},
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, message: str, fail: bool = True,
            trigger: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        if fail:
            raise RuntimeError(message)
        return (trigger if trigger is not None else black_image(),)


class OrchTestValidated:
    """Pass an image through; its ``VALIDATE_INPUTS`` refuses ``accept`` false on the node,
    a check ``/object_info`` does not show (ComfyUI answers the ``/prompt`` with 400). It
    names ``level``, so ComfyUI leaves that input's range to it: up to 100 passes although
    the declared max is 10."""

    @classmethod
    def INPUT_TYPES(cls) -> InputTypes:
        return {"required": {"accept": ("BOOLEAN", {"default": True})},
                "optional": {"image": ("IMAGE",), "seed": SEED,
                             "level": ("INT", {"default": 0, "min": 0, "max": 10})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    @classmethod
    def VALIDATE_INPUTS(cls, accept: bool, level: int = 0) -> bool | str:
        if not accept:
            return "accept is false, so this node refuses the prompt"
        return True if level <= 100 else f"level {level} is above 100"

    def run(self, accept: bool, image: torch.Tensor | None = None, seed: int = 0,
            level: int = 0) -> tuple[torch.Tensor]:
        return (image if image is not None else black_image(),)


class OrchTestSolidImage:
    """A batch of images of one colour, as an IMAGE tensor [B, H, W, 3] in 0..1."""

    @classmethod
    def INPUT_TYPES(cls) -> InputTypes:
        size = {"default": 64, "min": 1, "max": 4096}
        return {
            "required": {
                "width": ("INT", size),
                "height": ("INT", size),
                "color": ("STRING", {"default": "#ff0000"}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 8}),
            },
            "optional": {"seed": SEED},
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "draw"
    CATEGORY = CATEGORY

    def draw(self, width: int, height: int, color: str, batch_size: int = 1,
             seed: int = 0) -> tuple[torch.Tensor]:
        rgb = torch.tensor(parse_color(color), dtype=torch.float32)
        return (rgb.expand(batch_size, height, width, 3).clone(),)


class OrchTestReport:
    """An output node whose UI result holds values, no files: ``text``, a number and an
    object, in that order (what a captioning or LLM node reports, as a SillyTavern-style
    flow reads it)."""

    @classmethod
    def INPUT_TYPES(cls) -> InputTypes:
        return {"required": {"text": ("STRING", {"default": "hello"})},
                "optional": {"seed": SEED}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "report"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def report(self, text: str, seed: int = 0) -> dict[str, Any]:
        detail = {"words": len(text.split()), "seed": seed}
        return {"ui": {"text": [text], "score": [0.5], "detail": [detail]}, "result": (text,)}


class LoadImageBase64:
    """An image sent inline as base64, returned as (IMAGE, MASK) like comfyui-tooling-nodes.

    The mask follows ComfyUI's LoadImage: 1 where the alpha channel is transparent, zeros
    when there is no alpha channel.
    """

    @classmethod
    def INPUT_TYPES(cls) -> InputTypes:
        return {"required": {"image": ("STRING", {"multiline": False})}}

    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"
    CATEGORY = CATEGORY

    def load_image(self, image: str) -> tuple[torch.Tensor, torch.Tensor]:
        picture = decode_base64_image(image)
        if "A" in picture.getbands():
            alpha = np.asarray(picture.getchannel("A"), dtype=np.float32) / 255.0
            mask = 1.0 - torch.from_numpy(alpha)
        else:
            mask = torch.zeros((picture.height, picture.width), dtype=torch.float32)
        rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
        return (torch.from_numpy(rgb)[None], mask[None])
