"""Each installed ComfyUI version starts from its own folder and serves what we rely on."""

from __future__ import annotations

import pytest
import requests

from orchestrator.provision.releases import version_key
from orchestrator.provision.server import LocalComfy


@pytest.mark.every_comfyui
def test_server_reports_its_version_and_the_kornia_nodes(comfy_server: LocalComfy,
                                                         comfyui_version: str) -> None:
    stats = requests.get(f"{comfy_server.url}/system_stats", timeout=10).json()
    assert stats["system"]["comfyui_version"] == comfyui_version
    assert stats["system"]["pytorch_version"].startswith("2.14.1")
    classes = requests.get(f"{comfy_server.url}/object_info", timeout=60).json()
    # ImageBlur: nodes_post_processing, which imports kornia from 0.30 on; Canny and
    # Morphology import kornia on every version. The test pack is linked in too.
    assert {"ImageBlur", "LatentBlend", "Canny", "Morphology", "OrchTestSleep"} <= set(classes)


@pytest.mark.every_comfyui
def test_each_instance_keeps_its_database_in_its_own_base_dir(comfy_server: LocalComfy) -> None:
    assert (comfy_server.base_dir / "user" / "comfyui.db").is_file()
    assert "Failed to initialize database" not in comfy_server.log_tail(lines=10_000)


@pytest.mark.every_comfyui
def test_jobs_route_exists_from_0_16_on(comfy_server: LocalComfy, comfyui_version: str) -> None:
    jobs = requests.get(f"{comfy_server.url}/api/jobs", timeout=10)
    assert jobs.status_code == (200 if version_key(comfyui_version) >= (0, 16) else 404)
