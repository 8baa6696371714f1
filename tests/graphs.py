"""API-format graphs the tests submit, built in code so each test states its values."""

from __future__ import annotations

from typing import Any

Graph = dict[str, dict[str, Any]]
TINY_CHECKPOINT = "tiny-sd15.safetensors"


def solid_image(width: int = 64, height: int = 48, color: str = "#ff0000", *,
                seed: int = 0, prefix: str = "solid") -> Graph:
    """OrchTestSolidImage → SaveImage: one PNG of the given size and colour."""
    return {
        "1": {"class_type": "OrchTestSolidImage",
              "inputs": {"width": width, "height": height, "color": color, "batch_size": 1,
                         "seed": seed}},
        "2": {"class_type": "SaveImage",
              "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def sleep(seconds: float = 0.4, steps: int = 4, *, seed: int = 0) -> Graph:
    """OrchTestSleep (progress per step) → SaveImage."""
    return {
        "1": {"class_type": "OrchTestSleep",
              "inputs": {"seconds": seconds, "steps": steps, "seed": seed}},
        "2": {"class_type": "SaveImage",
              "inputs": {"images": ["1", 0], "filename_prefix": "sleep"}},
    }


def failing(message: str = "requested failure", *, seed: int = 0) -> Graph:
    """OrchTestSolidImage → OrchTestFail → SaveImage: fails in node 2."""
    return {
        "1": {"class_type": "OrchTestSolidImage",
              "inputs": {"width": 8, "height": 8, "color": "#000000", "batch_size": 1,
                         "seed": seed}},
        "2": {"class_type": "OrchTestFail", "inputs": {"message": message, "fail": True,
                                                         "trigger": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "fail"}},
    }


def txt2img(*, seed: int = 1, steps: int = 4, size: int = 64,
            checkpoint: str = TINY_CHECKPOINT) -> Graph:
    """ComfyUI's classic default graph on the tiny checkpoint."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": size, "height": size, "batch_size": 1}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": steps, "cfg": 8.0, "sampler_name": "euler",
                         "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                         "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "tiny"}},
    }
