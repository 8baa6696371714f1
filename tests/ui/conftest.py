"""A real service for the panel's tests: uvicorn on a free loopback port over a real
Orchestrator and the session's real ComfyUI node, with a temporary workflows folder, plus
``AppTest`` sessions of the panel signed in to it."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.tokens import TokenStore
from orchestrator.web import ServerThread, create_app
from tests.helpers import wait_until
from ui import ApiClient, state

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
RUN_TIMEOUT_S = 30.0  # one script run of the panel: a few REST calls on loopback
JOB_TIMEOUT_S = 90.0

SOLID = {
    "1": {"class_type": "OrchTestSolidImage",
          "inputs": {"width": "%width%", "height": "%height%", "color": "%color%",
                     "batch_size": 1, "seed": "%seed%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "solid"}},
}
SOLID_META = {"title": "Solid colour", "kind": "txt2img",
              "description": "One flat colour: the smallest image a node can make.",
              "placeholders": {"color": {"type": "str", "default": "#3366cc", "label": "Colour"},
                               "width": {"default": 64}, "height": {"default": 48}}}
SLOW = {
    "1": {"class_type": "OrchTestSolidImage",
          "inputs": {"width": 32, "height": 32, "color": "%color%", "batch_size": 1,
                     "seed": "%seed%"}},
    "2": {"class_type": "OrchTestSleep",
          "inputs": {"image": ["1", 0], "seconds": "%seconds%", "steps": 8, "seed": "%seed%"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "slow"}},
}
SLOW_META = {"title": "Slow colour", "placeholders": {
    "color": {"type": "str", "default": "#cc6633"},
    "seconds": {"type": "float", "default": 30.0, "min": 0, "max": 600}}}
AVATAR = {
    "1": {"class_type": "ETN_LoadImageBase64", "inputs": {"image": "%char_avatar%"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "avatar"}},
}
AVATAR_META = {"title": "Avatar copy", "kind": "edit",
               "placeholders": {"char_avatar": {"image_mode": "base64"}}}
WORKFLOWS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "solid": (SOLID, SOLID_META), "slow": (SLOW, SLOW_META), "avatar": (AVATAR, AVATAR_META)}


def png_bytes(width: int = 8, height: int = 8, color: str = "#00ff00") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Service:
    """A running service, its tokens, and its workflows folder."""

    url: str
    admin: str
    alice: str
    workflows: Path
    orch: Orchestrator

    def client(self, token: str | None = None) -> ApiClient:
        return ApiClient(self.url, self.admin if token is None else token)

    def put_workflow(self, name: str, graph: dict[str, Any], meta: dict[str, Any]) -> None:
        """Serve ``name`` from now on, through ``PUT /v1/workflows/{name}``."""
        self.client().put_workflow(name, graph, meta)

    def delete_workflow(self, name: str) -> None:
        self.client().delete_workflow(name)


def write_workflows(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (graph, meta) in WORKFLOWS.items():
        (folder / f"{name}.json").write_text(json.dumps(graph))
        (folder / f"{name}.meta.json").write_text(json.dumps(meta))
    return folder


@contextlib.contextmanager
def serving(comfy_url: str, root: Path, **settings: Any) -> Iterator[Service]:
    """A service over ``comfy_url`` in ``root`` with ``settings`` (shipped defaults unless
    given); stopped (server thread joined, orchestrator closed) on leaving."""
    workflows = write_workflows(root / "workflows")
    config = Settings(data_dir=root / "data", workflows_dir=workflows, port=0, **settings)
    with TokenStore.open(config.data_dir) as tokens, Orchestrator(
            data_dir=config.data_dir, workflows_dir=workflows, nodes=(comfy_url,)) as orch:
        with ServerThread(create_app(orch, tokens, config)) as server:
            yield Service(server.url, tokens.create("root", admin=True),
                          tokens.create("alice"), workflows, orch)


@pytest.fixture(scope="session")
def service(comfy_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The panel tests' service, at the shipped defaults, for the whole session."""
    with serving(comfy_url, tmp_path_factory.mktemp("panel-service")) as running:
        yield running


PanelFactory = Callable[..., AppTest]


@pytest.fixture
def panel(service: Service) -> PanelFactory:
    """``panel(token=..., api=...)``: an ``AppTest`` of the panel signed in to the service
    (admin token by default), run once."""

    def factory(*, token: str | None = None, api: str | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
        at.session_state[state.API_URL] = api or service.url
        at.session_state[state.TOKEN] = service.admin if token is None else token
        return at.run()

    return factory


def texts(at: AppTest) -> str:
    """Every text the page shows (markdown, captions, alerts), one per line."""
    parts = [e.value for e in (*at.markdown, *at.caption, *at.success, *at.error,
                               *at.warning, *at.info, *at.title, *at.subheader)]
    return "\n".join(str(p) for p in parts)


def run_until(at: AppTest, predicate: Callable[[AppTest], bool], timeout: float,
              what: str) -> AppTest:
    """Re-run the panel (as its refresh timer would) until ``predicate`` holds."""
    wait_until(lambda: predicate(at.run()), timeout, what)
    return at
