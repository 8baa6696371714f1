"""A tiny random-weight SD1.5 checkpoint, so real txt2img graphs run on a CPU in about a second.

No weights can be downloaded on test machines, yet KSampler, its ``progress`` events and
real PNG output are what the orchestrator has to be tested against. ComfyUI 0.3.75 accepts
a checkpoint as SD1.5 from five structural fields only (UNet width 320, cross-attention 768,
conv ``proj_in``, no ``label_emb``, no temporal attention), so the UNet here has one level,
one res-block, one transformer and no middle block (13.6 M params). The text encoder is the
fixed CLIP-L that ComfyUI builds from its own config (123.1 M params; it cannot be shrunk),
and the VAE is a TAESD (2.4 M params), which ComfyUI recognises by ``taesd_decoder.1.weight``.

The layout is a static table checked once against ComfyUI's loader, and the bytes come from
a seeded SHAKE-128 stream, so the file is made with the standard library alone (no torch) in
about two seconds, byte-identical for a given seed. It is generated at test time and never
committed.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

TINY_CHECKPOINT_NAME = "tiny-sd15.safetensors"

UNET_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."
VAE_PREFIX = "first_stage_model."

# Widths ComfyUI pins for SD1.5: UNet channels, time-embedding width, cross-attention width.
MODEL_CHANNELS = 320
TIME_EMBED = 4 * MODEL_CHANNELS
CONTEXT_DIM = 768
LATENT_CHANNELS = 4
# CLIP-L as ComfyUI's sd1_clip_config.json builds it; its shape is never read from the file.
CLIP_LAYERS = 12
CLIP_VOCAB = 49408
CLIP_POSITIONS = 77
CLIP_MLP = 3072
# TAESD: every hidden layer is 64 channels wide.
TAESD_WIDTH = 64
# What ComfyUI's built-in "taesd" VAE option uses for SD1 latents.
TAESD_SCALE = 0.18215

# SHAKE-128 output is drawn in pieces of this many bytes, keeping peak memory near 2 MiB
# however large the tensor (the token embedding alone is 76 MB in fp16).
CHUNK_BYTES = 1 << 20
# The TAESD output conv gets weights 2**-3 of the usual size, so the decoded noise is a
# low-contrast grey around its bias of 0.5 instead of saturated colour (cosmetic only).
OUTPUT_CONV_OCTAVES_DOWN = 3
OUTPUT_BIAS = 0.5


class DType(enum.Enum):
    """A safetensors dtype this generator writes: its header name and bytes per value."""

    F16 = ("F16", 2)
    F8_E4M3 = ("F8_E4M3", 1)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def size(self) -> int:
        return self.value[1]


class Init(enum.Enum):
    """How a tensor's values are made."""

    FILL = "fill"  # every value equals TensorSpec.fill (norm weights 1, biases 0, scalars)
    RANDOM = "random"  # random sign, magnitude about 1/sqrt(fan_in)
    ZERO_SUM = "zero_sum"  # small random kernel whose values sum to zero per output channel


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the checkpoint: full key, shape, dtype and how to fill it."""

    name: str
    shape: tuple[int, ...]
    init: Init
    fill: float = 0.0
    dtype: DType = DType.F16

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.size

    @property
    def fan_in(self) -> int:
        return math.prod(self.shape[1:]) if len(self.shape) > 1 else 1


# --- layout ------------------------------------------------------------------------------


def _weight(name: str, *shape: int, bias: bool = True) -> list[TensorSpec]:
    specs = [TensorSpec(f"{name}.weight", shape, Init.RANDOM)]
    if bias:
        specs.append(TensorSpec(f"{name}.bias", (shape[0],), Init.FILL, 0.0))
    return specs


def _conv(name: str, c_out: int, c_in: int, k: int = 3, *, bias: bool = True) -> list[TensorSpec]:
    return _weight(name, c_out, c_in, k, k, bias=bias)


def _norm(name: str, width: int) -> list[TensorSpec]:
    return [TensorSpec(f"{name}.weight", (width,), Init.FILL, 1.0),
            TensorSpec(f"{name}.bias", (width,), Init.FILL, 0.0)]


def _resblock(p: str, c_in: int, c_out: int) -> list[TensorSpec]:
    specs = [*_norm(f"{p}in_layers.0", c_in), *_conv(f"{p}in_layers.2", c_out, c_in),
             *_weight(f"{p}emb_layers.1", c_out, TIME_EMBED),
             *_norm(f"{p}out_layers.0", c_out), *_conv(f"{p}out_layers.3", c_out, c_out)]
    if c_in != c_out:
        specs += _conv(f"{p}skip_connection", c_out, c_in, 1)
    return specs


def _attention(p: str, width: int, context: int) -> list[TensorSpec]:
    return [*_weight(f"{p}to_q", width, width, bias=False),
            *_weight(f"{p}to_k", width, context, bias=False),
            *_weight(f"{p}to_v", width, context, bias=False),
            *_weight(f"{p}to_out.0", width, width)]


def _spatial_transformer(p: str, width: int) -> list[TensorSpec]:
    # proj_in/proj_out must be 4-D 1x1 convs: a 2-D weight reads as "linear" and fails SD1.5.
    block = f"{p}transformer_blocks.0."
    return [*_norm(f"{p}norm", width), *_conv(f"{p}proj_in", width, width, 1),
            *_attention(f"{block}attn1.", width, width),
            *_weight(f"{block}ff.net.0.proj", 8 * width, width),  # GEGLU: value and gate
            *_weight(f"{block}ff.net.2", width, 4 * width),
            *_attention(f"{block}attn2.", width, CONTEXT_DIM),
            *_norm(f"{block}norm1", width), *_norm(f"{block}norm2", width),
            *_norm(f"{block}norm3", width),
            *_conv(f"{p}proj_out", width, width, 1)]


def unet_layout() -> list[TensorSpec]:
    """The smallest UNet ComfyUI still detects as SD1.5 (no middle block, no label_emb)."""
    p, c = UNET_PREFIX, MODEL_CHANNELS
    return [*_weight(f"{p}time_embed.0", TIME_EMBED, c),
            *_weight(f"{p}time_embed.2", TIME_EMBED, TIME_EMBED),
            *_conv(f"{p}input_blocks.0.0", c, LATENT_CHANNELS),
            *_resblock(f"{p}input_blocks.1.0.", c, c),
            *_spatial_transformer(f"{p}input_blocks.1.1.", c),
            *_resblock(f"{p}output_blocks.0.0.", 2 * c, c),
            *_resblock(f"{p}output_blocks.1.0.", 2 * c, c),
            *_norm(f"{p}out.0", c), *_conv(f"{p}out.2", LATENT_CHANNELS, c)]


def _clip_layer(p: str) -> list[TensorSpec]:
    w = CONTEXT_DIM
    attn = [s for n in ("q", "k", "v", "out") for s in _weight(f"{p}self_attn.{n}_proj", w, w)]
    return [*attn, *_norm(f"{p}layer_norm1", w), *_weight(f"{p}mlp.fc1", CLIP_MLP, w),
            *_weight(f"{p}mlp.fc2", w, CLIP_MLP), *_norm(f"{p}layer_norm2", w)]


def clip_layout(*, fp8: bool = False) -> list[TensorSpec]:
    """CLIP-L in Hugging Face names; with ``fp8`` its 2-D matrices are float8_e4m3fn."""
    p, w = CLIP_PREFIX, CONTEXT_DIM
    specs = [TensorSpec(f"{p}embeddings.token_embedding.weight", (CLIP_VOCAB, w), Init.RANDOM),
             TensorSpec(f"{p}embeddings.position_embedding.weight", (CLIP_POSITIONS, w),
                        Init.RANDOM)]
    for i in range(CLIP_LAYERS):
        specs += _clip_layer(f"{p}encoder.layers.{i}.")
    specs += _norm(f"{p}final_layer_norm", w)
    if fp8:
        specs = [TensorSpec(s.name, s.shape, s.init, s.fill, DType.F8_E4M3)
                 if len(s.shape) == 2 else s for s in specs]
    return specs


def _taesd_block(p: str) -> list[TensorSpec]:
    w = TAESD_WIDTH
    return [*_conv(f"{p}conv.0", w, w), *_conv(f"{p}conv.2", w, w), *_conv(f"{p}conv.4", w, w)]


def _taesd_stack(p: str, plan: Sequence[str]) -> list[TensorSpec]:
    """``plan[i]`` names layer i of TAESD's nn.Sequential: B block, S bias-free conv, - none."""
    specs: list[TensorSpec] = []
    for i, kind in enumerate(plan):
        if kind == "B":
            specs += _taesd_block(f"{p}{i}.")
        elif kind == "S":
            specs += _conv(f"{p}{i}", TAESD_WIDTH, TAESD_WIDTH, bias=False)
    return specs


def taesd_layout() -> list[TensorSpec]:
    """TAESD encoder and decoder with the indices of its sequential layout, plus the scalars."""
    p, w = VAE_PREFIX, TAESD_WIDTH
    enc, dec = f"{p}taesd_encoder.", f"{p}taesd_decoder."
    last = f"{dec}19"
    return [*_conv(f"{enc}0", w, 3), *_taesd_stack(enc, "-BSBBBSBBBSBBB"),
            *_conv(f"{enc}14", LATENT_CHANNELS, w),
            *_conv(f"{dec}1", w, LATENT_CHANNELS),
            *_taesd_stack(dec, "---BBB-SBBB-SBBB-SB"),
            TensorSpec(f"{last}.weight", (3, w, 3, 3), Init.ZERO_SUM),
            TensorSpec(f"{last}.bias", (3,), Init.FILL, OUTPUT_BIAS),
            TensorSpec(f"{p}vae_scale", (), Init.FILL, TAESD_SCALE),
            TensorSpec(f"{p}vae_shift", (), Init.FILL, 0.0)]


def tiny_sd15_layout(*, te_fp8: bool = False) -> list[TensorSpec]:
    """Every tensor of the tiny checkpoint, in file order."""
    return [*unet_layout(), *clip_layout(fp8=te_fp8), *taesd_layout()]


# --- values ------------------------------------------------------------------------------


def _low_exponent(fan_in: int, octaves_down: int = 0) -> int:
    """Base-2 exponent of the lower of two octaves around 1/sqrt(fan_in)."""
    _, e = math.frexp(1.0 / math.sqrt(fan_in))
    return e - 2 - octaves_down  # frexp's e - 1 is floor(log2(x)); one octave below that


def _sign_exponent_table(dtype: DType, exponent: int) -> bytes:
    """Map a random byte to the byte holding sign and exponent, pinned to two octaves.

    Bit 7 keeps the sign and bit 6 picks the octave; the low mantissa bits pass through.
    The exponent field can then never be all ones, so no NaN or Inf is possible. It is kept
    at 1 or more, because subnormals would break the octave pattern; for e4m3 that lifts the
    widest matrices (fan-in 3072) an octave above 1/sqrt(fan_in), which CLIP tolerates.
    """
    if dtype is DType.F16:
        field, shift, mantissa = max(exponent + 15, 1), 2, 0x03  # high byte: s eeeee mm
    else:
        field, shift, mantissa = max(exponent + 7, 1), 3, 0x07  # e4m3fn: s eeee mmm
    return bytes((b & 0x80) | ((field + ((b >> 6) & 1)) << shift) | (b & mantissa)
                 for b in range(256))


_FLIP_SIGN = bytes(b ^ 0x80 for b in range(256))


def _shake(seed: int, name: str, index: int, size: int) -> bytes:
    key = b"tiny-sd15\0%d\0%s\0%d" % (seed, name.encode(), index)
    return hashlib.shake_128(key).digest(size)


def _pin(raw: bytes, dtype: DType, table: bytes) -> bytes:
    if dtype is DType.F8_E4M3:
        return raw.translate(table)
    buf = bytearray(raw)
    buf[1::2] = buf[1::2].translate(table)  # little-endian: odd bytes hold sign and exponent
    return bytes(buf)


def _random_chunks(spec: TensorSpec, seed: int, octaves_down: int = 0) -> Iterator[bytes]:
    table = _sign_exponent_table(spec.dtype, _low_exponent(spec.fan_in, octaves_down))
    for index, start in enumerate(range(0, spec.nbytes, CHUNK_BYTES)):
        size = min(CHUNK_BYTES, spec.nbytes - start)
        yield _pin(_shake(seed, spec.name, index, size), spec.dtype, table)


def _zero_sum_chunks(spec: TensorSpec, seed: int) -> Iterator[bytes]:
    # Each output channel's second half is its first half negated, so the kernel sums to 0.
    half = TensorSpec(spec.name, (spec.shape[0], spec.fan_in // 2), Init.RANDOM)
    first = b"".join(_random_chunks(half, seed, OUTPUT_CONV_OCTAVES_DOWN))
    row = half.nbytes // spec.shape[0]
    for c in range(spec.shape[0]):
        values = bytearray(first[c * row:(c + 1) * row])
        negated = bytearray(values)
        negated[1::2] = negated[1::2].translate(_FLIP_SIGN)
        yield bytes(values + negated)


def _fill_chunks(spec: TensorSpec) -> Iterator[bytes]:
    value = struct.pack("<e", spec.fill)
    for start in range(0, spec.count, CHUNK_BYTES):
        yield value * min(CHUNK_BYTES, spec.count - start)


def tensor_bytes(spec: TensorSpec, seed: int) -> Iterator[bytes]:
    """The little-endian bytes of one tensor, in pieces of at most a few MiB."""
    if spec.init is Init.RANDOM:
        return _random_chunks(spec, seed)
    if spec.init is Init.ZERO_SUM:
        if spec.dtype is not DType.F16 or spec.fan_in % 2:
            raise ValueError(f"{spec.name}: a zero-sum kernel needs fp16 and an even fan-in")
        return _zero_sum_chunks(spec, seed)
    if spec.dtype is not DType.F16:
        raise ValueError(f"{spec.name}: constant fills are written as fp16 only")
    return _fill_chunks(spec)


# --- file --------------------------------------------------------------------------------


def safetensors_header(specs: Sequence[TensorSpec]) -> bytes:
    """The u64 little-endian length plus JSON header, padded with spaces to 8 bytes."""
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for spec in specs:
        entries[spec.name] = {"dtype": spec.dtype.label, "shape": list(spec.shape),
                              "data_offsets": [offset, offset + spec.nbytes]}
        offset += spec.nbytes
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def write_tiny_checkpoint(path: str | os.PathLike[str], *, seed: int = 0,
                          te_fp8: bool = False) -> Path:
    """Write the tiny SD1.5 checkpoint to ``path`` and return ``path``.

    The same seed always gives the same bytes. The file appears atomically (written beside
    ``path`` under a temporary name, then renamed), so a file at ``path`` is always complete;
    an existing file is replaced. ``te_fp8`` stores the text encoder's matrices as
    float8_e4m3fn (155 MB instead of 278 MB). Raises ``OSError`` if the folder is not writable.
    """
    path = Path(path)
    specs = tiny_sd15_layout(te_fp8=te_fp8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(safetensors_header(specs))
            for spec in specs:
                for chunk in tensor_bytes(spec, seed):
                    out.write(chunk)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is ordinary data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestrator.provision.checkpoint OUT [--seed N] [--te-fp8]``."""
    parser = argparse.ArgumentParser(description="Write a tiny random-weight SD1.5 checkpoint.")
    parser.add_argument("out", type=Path, help="the .safetensors file to write")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--te-fp8", action="store_true",
                        help="store the text encoder's matrices as float8_e4m3fn (smaller file)")
    args = parser.parse_args(argv)
    path = write_tiny_checkpoint(args.out, seed=args.seed, te_fp8=args.te_fp8)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
