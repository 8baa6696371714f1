"""``/docs`` works without the internet: Swagger UI's files come from the service itself."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from tests.service import start_running


def test_docs_page_loads_swagger_ui_from_the_service_not_a_cdn(tmp_path: Path) -> None:
    running = start_running(tmp_path / "data", tmp_path / "workflows", nodes=())
    try:
        page = requests.get(f"{running.url}/docs", timeout=10)
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
        for source in sources:
            asset = requests.get(f"{running.url}{source}", timeout=10)
            assert asset.status_code == 200 and len(asset.content) > 500, source
        spec = requests.get(f"{running.url}/openapi.json", timeout=10).json()
        assert spec["openapi"].startswith("3.1") and "/v1/jobs" in spec["paths"]
        # Swagger UI 5 is the first to read OpenAPI 3.1, which FastAPI writes
        bundle = requests.get(f"{running.url}/docs/assets/swagger-ui-bundle.js", timeout=10)
        assert "3.1" in bundle.text
    finally:
        running.stop()
