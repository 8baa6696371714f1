"""The tiny SD1.5 checkpoint: a valid safetensors file with the layout ComfyUI detects as SD1.5.

Loading it into a real ComfyUI is covered by the txt2img tests that use the session server;
these tests read the file with nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.provision import checkpoint
from orchestrator.provision.checkpoint import (
    TINY_CHECKPOINT_NAME,
    TensorSpec,
    main,
    tensor_bytes,
    write_tiny_checkpoint,
)

UNET = "model.diffusion_model."
CLIP = "cond_stage_model.transformer.text_model."
VAE = "first_stage_model."
DTYPE_SIZES = {"F16": 2, "F8_E4M3": 1}
SAMPLE_BYTES = 4096


@dataclass(frozen=True)
class Safetensors:
    path: Path
    tensors: dict[str, dict[str, Any]]
    data_start: int

    def raw(self, name: str, limit: int | None = None) -> bytes:
        begin, end = self.offsets(name)
        with self.path.open("rb") as f:
            f.seek(self.data_start + begin)
            return f.read(end - begin if limit is None else min(limit, end - begin))

    def offsets(self, name: str) -> tuple[int, int]:
        begin, end = self.tensors[name]["data_offsets"]
        return int(begin), int(end)

    def shape(self, name: str) -> list[int]:
        return [int(n) for n in self.tensors[name]["shape"]]


def read_safetensors(path: Path) -> Safetensors:
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return Safetensors(path, header, 8 + length)


def fp16_values(raw: bytes) -> Iterator[float]:
    return (v for (v,) in struct.iter_unpack("<e", raw))


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / TINY_CHECKPOINT_NAME, seed=0)


@pytest.fixture(scope="module")
def ckpt(ckpt_path: Path) -> Safetensors:
    return read_safetensors(ckpt_path)


def test_header_is_space_padded_to_8_bytes_and_data_fills_the_rest(ckpt: Safetensors) -> None:
    with ckpt.path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        text = f.read(length)
    assert length % 8 == 0
    assert text.rstrip(b" ").endswith(b"}")
    spans = sorted(ckpt.offsets(name) for name in ckpt.tensors)
    assert spans[0][0] == 0
    assert all(prev[1] == nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))
    assert ckpt.data_start + spans[-1][1] == ckpt.path.stat().st_size


def test_every_tensor_byte_size_matches_its_dtype_and_shape(ckpt: Safetensors) -> None:
    for name, entry in ckpt.tensors.items():
        begin, end = ckpt.offsets(name)
        size = DTYPE_SIZES[str(entry["dtype"])] * math.prod(ckpt.shape(name))
        assert end - begin == size, name


def test_default_file_is_fp16_and_about_278_mb(ckpt: Safetensors) -> None:
    assert {entry["dtype"] for entry in ckpt.tensors.values()} == {"F16"}
    assert 278_000_000 < ckpt.path.stat().st_size < 279_000_000


@pytest.mark.parametrize(("name", "shape"), [
    (f"{UNET}input_blocks.0.0.weight", [320, 4, 3, 3]),
    (f"{UNET}input_blocks.1.1.proj_in.weight", [320, 320, 1, 1]),
    (f"{UNET}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [320, 768]),
    (f"{UNET}input_blocks.1.1.transformer_blocks.0.attn2.to_v.weight", [320, 768]),
    (f"{UNET}output_blocks.1.0.skip_connection.weight", [320, 640, 1, 1]),
    (f"{UNET}out.2.weight", [4, 320, 3, 3]),
    (f"{CLIP}embeddings.token_embedding.weight", [49408, 768]),
    (f"{CLIP}embeddings.position_embedding.weight", [77, 768]),
    (f"{CLIP}encoder.layers.11.mlp.fc1.weight", [3072, 768]),
    (f"{CLIP}final_layer_norm.weight", [768]),
    (f"{VAE}taesd_decoder.1.weight", [64, 4, 3, 3]),
    (f"{VAE}taesd_decoder.19.weight", [3, 64, 3, 3]),
    (f"{VAE}taesd_encoder.14.weight", [4, 64, 3, 3]),
    (f"{VAE}vae_scale", []),
])
def test_keys_comfyui_detection_reads_have_the_sd15_shapes(
    ckpt: Safetensors, name: str, shape: list[int]
) -> None:
    assert ckpt.shape(name) == shape


def test_unet_has_no_middle_block_no_label_emb_and_one_transformer(ckpt: Safetensors) -> None:
    names = list(ckpt.tensors)
    assert not [n for n in names if "middle_block" in n or "label_emb" in n]
    assert not [n for n in names if "transformer_blocks.1." in n]
    assert sum(n.startswith(f"{UNET}") for n in names) == 70


def test_bias_free_convs_and_text_encoder_layers_match_the_reference_layout(
    ckpt: Safetensors,
) -> None:
    names = set(ckpt.tensors)
    for i in (2, 6, 10):
        assert f"{VAE}taesd_encoder.{i}.weight" in names
        assert f"{VAE}taesd_encoder.{i}.bias" not in names
    for i in (7, 12, 17):
        assert f"{VAE}taesd_decoder.{i}.bias" not in names
    assert len([n for n in names if n.startswith(CLIP) and n.endswith("q_proj.weight")]) == 12


def test_norm_weights_are_one_biases_zero_and_vae_scalars_set(ckpt: Safetensors) -> None:
    assert set(fp16_values(ckpt.raw(f"{UNET}out.0.weight"))) == {1.0}
    assert set(fp16_values(ckpt.raw(f"{CLIP}encoder.layers.3.mlp.fc1.bias"))) == {0.0}
    assert set(fp16_values(ckpt.raw(f"{VAE}taesd_decoder.19.bias"))) == {0.5}
    assert list(fp16_values(ckpt.raw(f"{VAE}vae_scale"))) == [pytest.approx(0.18215, rel=1e-3)]


def test_random_weights_are_finite_signed_and_scaled_by_fan_in(ckpt: Safetensors) -> None:
    for name, entry in ckpt.tensors.items():
        if len(ckpt.shape(name)) < 2:
            continue
        fan_in = math.prod(ckpt.shape(name)[1:])
        values = list(fp16_values(ckpt.raw(name, SAMPLE_BYTES)))
        assert all(math.isfinite(v) for v in values), name
        assert any(v < 0 for v in values) and any(v > 0 for v in values), name
        scale = 1 / math.sqrt(fan_in)
        assert all(scale / 128 <= abs(v) <= 4 * scale for v in values), (name, entry)


def test_taesd_output_kernel_sums_to_zero_per_channel(ckpt: Safetensors) -> None:
    values = list(fp16_values(ckpt.raw(f"{VAE}taesd_decoder.19.weight")))
    per_channel = len(values) // 3
    for c in range(3):
        assert sum(values[c * per_channel:(c + 1) * per_channel]) == 0.0


def test_same_seed_gives_identical_bytes(ckpt_path: Path, tmp_path: Path) -> None:
    again = write_tiny_checkpoint(tmp_path / "again.safetensors", seed=0)
    assert sha256(again) == sha256(ckpt_path)


def test_another_seed_changes_random_tensors(ckpt: Safetensors) -> None:
    name = f"{UNET}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    spec = next(s for s in checkpoint.tiny_sd15_layout() if s.name == name)
    assert b"".join(tensor_bytes(spec, seed=0)) == ckpt.raw(name)
    assert b"".join(tensor_bytes(spec, seed=1)) != ckpt.raw(name)


def test_te_fp8_stores_text_encoder_matrices_as_e4m3_without_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fp8.safetensors"
    assert main([str(out), "--seed", "3", "--te-fp8"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    fp8 = read_safetensors(out)
    token = f"{CLIP}embeddings.token_embedding.weight"
    assert fp8.tensors[token]["dtype"] == "F8_E4M3"
    assert fp8.tensors[f"{CLIP}final_layer_norm.weight"]["dtype"] == "F16"
    assert fp8.tensors[f"{UNET}out.2.weight"]["dtype"] == "F16"
    assert all(b & 0x7F != 0x7F for b in fp8.raw(token, SAMPLE_BYTES))  # 0x7F/0xFF are NaN
    assert 155_000_000 < out.stat().st_size < 156_000_000


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: TensorSpec, seed: int) -> Iterator[bytes]:
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "tensor_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        write_tiny_checkpoint(tmp_path / TINY_CHECKPOINT_NAME)
    assert list(tmp_path.iterdir()) == []
