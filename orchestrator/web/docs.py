"""``/docs``: Swagger UI served from an installed package, never from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and style from a CDN, so on an
air-gapped GPU box it is blank. The ``swagger-ui-bundle-v2`` package carries the same
files (Swagger UI 5, which reads the OpenAPI 3.1 FastAPI writes); the service serves them
under ``/docs/assets``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"


def mount_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app.openapi_url`` at ``/docs`` with local assets; create
    ``app`` with ``docs_url=None`` so FastAPI's CDN page does not take the path first."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png")

    app.add_api_route(DOCS_PATH, docs, include_in_schema=False)
