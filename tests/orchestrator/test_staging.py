"""Inputs that name uploaded files become upload markers; nothing else changes."""

from orchestrator.staging import stage_named_inputs
from placeholders import UploadRequest, upload_requests


def test_named_input_becomes_marker_and_links_stay() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "photo.png x"}}}
    staged = stage_named_inputs(graph, {"photo.png": b"PNG"})
    assert staged["1"]["inputs"]["image"] == UploadRequest("photo.png", b"PNG", "photo.png")
    assert staged["2"]["inputs"] == graph["2"]["inputs"]
    assert graph["1"]["inputs"]["image"] == "photo.png"  # input not mutated
    assert [r.placeholder for r in upload_requests(staged)] == ["photo.png"]
