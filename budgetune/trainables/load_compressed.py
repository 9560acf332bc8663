"""Load a budgetune compressed export: ``python load_compressed.py FOLDER`` or
``from load_compressed import load_compressed; model = load_compressed(FOLDER)``.

Standalone on purpose (torch, numpy, safetensors and transformers only): it is copied into
every export folder, next to ``config.json`` and ``compressed.safetensors``, whose tensors are

- ``packed`` (uint8): the compressed weight matrices (the block stack's, then the token
  embedding, which the tied LM head shares), one after another in the order of the
  ``matrices`` metadata, each as [mask bitmap, if masked: 1 bit per weight, row-major,
  ``np.packbits`` order] then [its kept values at its bits: fp32, int8, or int4 two's-
  complement nibbles, low nibble first, padded to a whole byte]. A matrix is stored as a
  torch ``nn.Linear`` weight, (out_features, in_features); GPT-2's ``Conv1D`` holds its transpose.
- ``scales`` (fp32, absent at 32 bits): each matrix's scales in the same order, one per row
  (int8) or one per ``group`` consecutive weights of a row (int4); weight = integer × scale.
- ``rest`` (fp32): every other parameter of the model, flattened and concatenated in the order
  of ``model.named_parameters()`` (tied parameters once).

The metadata holds ``format``, ``bits`` (the block matrices'), ``sparsity`` and ``matrices``: a
JSON list of [parameter name, masked (0/1), int4 group (0 otherwise), bits]. Format 1 (exports
before whole-model compression) had no token matrix and no per-matrix bits: ``bits`` then.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

FORMAT = "budgetune-compressed-2"
FORMATS = ("budgetune-compressed-1", FORMAT)  # what this decoder reads


def decode_matrix(packed: np.ndarray, scales: np.ndarray, shape: tuple[int, int], bits: int,
                  masked: bool, group: int) -> tuple[torch.Tensor, int, int]:
    """The fp32 matrix (out, in) at the start of ``packed``/``scales``; also the bytes and
    scales it used."""
    numel = shape[0] * shape[1]
    used = math.ceil(numel / 8) if masked else 0
    mask = (np.unpackbits(packed[:used])[:numel].astype(bool) if masked
            else np.ones(numel, dtype=bool))
    n = int(mask.sum())
    nbytes = math.ceil(n * bits / 8)
    raw = packed[used:used + nbytes]
    if bits == 32:
        values = raw.copy().view(np.float32)
    elif bits == 8:
        values = raw.view(np.int8).astype(np.float32)
    else:  # bits == 4
        nibbles = np.stack([raw & 0x0F, raw >> 4], axis=1).ravel()[:n].astype(np.int8)
        values = np.where(nibbles >= 8, nibbles - 16, nibbles).astype(np.float32)
    weight = np.zeros(numel, dtype=np.float32)
    weight[mask] = values
    n_scales = 0
    if bits < 32:
        n_scales = numel // (group if bits == 4 else shape[1])
        weight = (weight.reshape(n_scales, -1) * scales[:n_scales, None]).ravel()
    return torch.from_numpy(weight.reshape(shape)), used + nbytes, n_scales


def load_compressed(folder: str | Path) -> torch.nn.Module:
    """The model of ``folder/config.json`` with its weights decoded from
    ``folder/compressed.safetensors`` (dequantized to fp32), in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder)
    masked_lm = any(name.endswith("ForMaskedLM") for name in config.architectures or [])
    auto = AutoModelForMaskedLM if masked_lm else AutoModelForCausalLM
    model = auto.from_config(config)
    with safe_open(folder / "compressed.safetensors", framework="np") as f:
        meta = f.metadata()
        assert meta["format"] in FORMATS, f"unknown format {meta['format']}"
        packed, rest = f.get_tensor("packed"), f.get_tensor("rest")
        scales = f.get_tensor("scales") if "scales" in f.keys() else np.zeros(0, np.float32)
    bits, params = int(meta["bits"]), dict(model.named_parameters())
    offset = s_offset = 0
    with torch.no_grad():
        for name, masked, group, *own_bits in json.loads(meta["matrices"]):
            param = params.pop(name)
            transposed = type(model.get_submodule(name.rsplit(".", 1)[0])).__name__ == "Conv1D"
            shape = tuple(param.shape[::-1]) if transposed else tuple(param.shape)
            weight, used, n_scales = decode_matrix(packed[offset:], scales[s_offset:], shape,
                                                   own_bits[0] if own_bits else bits,
                                                   bool(masked), group)
            param.copy_(weight.T if transposed else weight)
            offset, s_offset = offset + used, s_offset + n_scales
        start = 0
        for param in params.values():  # every other parameter, in the model's own order
            param.copy_(torch.from_numpy(rest[start:start + param.numel()]).view_as(param))
            start += param.numel()
    assert (offset, s_offset, start) == (len(packed), len(scales), len(rest)), "size mismatch"
    return model.eval()


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    loaded = load_compressed(path)
    with safe_open(path / "compressed.safetensors", framework="np") as f:
        meta = f.metadata()
    n = sum(p.numel() for p in loaded.parameters())
    print(f"{type(loaded).__name__}: {n:,} parameters, block matrices at {meta['bits']} bits "
          f"and sparsity {meta['sparsity']} (each matrix's bits in the `matrices` metadata), "
          f"from {path / 'compressed.safetensors'}")
