"""The test custom-node pack loaded into every real ComfyUI the suite starts.

Link this folder into ``<base>/custom_nodes/``; ComfyUI imports it and reads the two
mappings below. ``ETN_LoadImageBase64`` keeps the class name of comfyui-tooling-nodes so
graphs written for that pack run unchanged against the test server.
"""

from .nodes import (
    LoadImageBase64,
    OrchTestFail,
    OrchTestReport,
    OrchTestSleep,
    OrchTestSolidImage,
    OrchTestValidated,
)

NODE_CLASS_MAPPINGS = {
    "OrchTestSleep": OrchTestSleep,
    "OrchTestFail": OrchTestFail,
    "OrchTestSolidImage": OrchTestSolidImage,
    "OrchTestValidated": OrchTestValidated,
    "OrchTestReport": OrchTestReport,
    "ETN_LoadImageBase64": LoadImageBase64,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "OrchTestSleep": "Sleep With Progress (test)",
    "OrchTestFail": "Fail On Demand (test)",
    "OrchTestSolidImage": "Solid Colour Image (test)",
    "OrchTestValidated": "Validate Inputs On The Node (test)",
    "OrchTestReport": "Report Values In The UI (test)",
    "ETN_LoadImageBase64": "Load Image (Base64)",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
