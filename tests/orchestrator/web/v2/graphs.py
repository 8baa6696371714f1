"""Graphs the v2 tests submit, each with a fresh seed so ComfyUI never serves a cache."""

from __future__ import annotations

from typing import Any

from tests import graphs
from tests.orchestrator.web.v2.conftest import fresh_seed

Graph = dict[str, dict[str, Any]]


def solid(color: str = "#ff0000", **overrides: Any) -> Graph:
    graph = graphs.solid_image(16, 16, color, seed=fresh_seed(), prefix="v2")
    graph["1"]["inputs"].update(overrides)
    return graph


def nap(seconds: float = 0.4, steps: int = 4) -> Graph:
    return graphs.sleep(seconds, steps, seed=fresh_seed())


def invert(image: Any) -> Graph:
    """LoadImage(image) → ImageInvert → SaveImage: an edit of an uploaded picture."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "OrchTestSleep",
              "inputs": {"seconds": 0.0, "steps": 1, "image": ["2", 0], "seed": fresh_seed()}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0],
                                                    "filename_prefix": "v2edit"}},
    }
