"""A job's JSON does not echo base64 images from its values (over HTTP, and the rule)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import requests
from PIL import Image

from orchestrator.web.echo import echoed
from tests.service import start_running


def avatar_b64() -> str:
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_long_base64_is_summarised_and_the_rest_kept() -> None:
    image = avatar_b64()
    shown = echoed({"char_avatar": image, "prompt": "a fox " * 400, "seed": 5,
                    "uri": "data:image/png;base64," + image})
    assert shown["char_avatar"] == f"<base64 data, {len(image)} characters, not echoed>"
    assert shown["uri"].startswith("<base64 data") and shown["seed"] == 5
    assert shown["prompt"] == "a fox " * 400  # long text with spaces and words stays


def test_get_job_does_not_echo_an_avatar(tmp_path: Path) -> None:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    graph = {"1": {"class_type": "ETN_LoadImageBase64", "inputs": {"image": "%char_avatar%"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "a"}}}
    (workflows / "avatar.json").write_text(json.dumps(graph))
    running = start_running(tmp_path / "data", workflows, nodes=())
    try:
        token = running.tokens.create("alice")
        image = avatar_b64()
        auth = {"Authorization": f"Bearer {token}"}
        made = requests.post(f"{running.url}/v1/jobs", headers=auth, timeout=30, json={
            "workflow": "avatar", "values": {"char_avatar": image}})
        assert made.status_code == 202, made.text
        job = requests.get(f"{running.url}/v1/jobs/{made.json()['id']}", headers=auth,
                           timeout=30)
        assert image not in job.text and len(job.text) < 5000
        assert job.json()["values"]["char_avatar"].startswith("<base64 data")
        assert running.orch.get(made.json()["id"]).spec.values["char_avatar"] == image
    finally:
        running.stop()
