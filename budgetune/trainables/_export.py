"""Export a trained model so that the Hugging Face ecosystem loads it without budgetune.

Three forms of one model:

1. The *point model* (``point_model``): a CPU deep copy in budgetune's own form (GPT-2's block
   layers as ``nn.Linear``), self-contained for keeping on disk: every depth has its own block
   (shared blocks are copied per depth) and pruning masks are folded into plain weights, so
   its ``state_dict`` loads into ``Family.build`` of the schedule, unshared.
   ``save_point``/``load_point`` keep it as one safetensors file (the tied LM head once).
2. The *Hugging Face model* (``hf_model``): the genuine transformers class
   (``GPT2LMHeadModel`` with ``Conv1D`` layers again, or ``RobertaPreLayerNormForMaskedLM``),
   whose ``save_pretrained`` folder loads with ``AutoModelForCausalLM``/``ForMaskedLM``.
3. The *compressed artifact* (``save_compressed``): ``compressed.safetensors`` in exactly the
   storage format whose size ``compressed_bytes`` states (see ``_compress``): per compressed
   matrix (the block stack's, then the token embedding, which the LM head shares), the kept
   values packed at its bits, a 1-bit mask bitmap when sparse, fp32
   scales (one per row at int8, one per group at int4; symmetric, no zero points); every
   other parameter fp32. To keep safetensors' header (~100 bytes a tensor) out of the size,
   it holds three tensors: ``packed`` (uint8, every matrix's mask and values), ``scales`` and
   ``rest`` (fp32). The layout is documented in ``load_compressed.py``, the standalone decoder
   copied next to it; ``config.json`` (the Hugging Face config) says what model to build.
   The integers and scales are torchao's own, read from ``compressed_copy``; the file is
   decoded back before it is kept and must equal torchao's ``dequantize()``.

``save_tokenizer`` writes the trial's BPE tokenizer as a Hugging Face tokenizer folder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from budgetune.spaces import Schedule
from budgetune.trainables._compress import (
    block_linears,
    compressed_copy,
    embedding_bits,
    token_matrix,
)
from budgetune.trainables._models import (
    FAMILIES,
    Family,
    gpt2_block_matrices,
    quiet_torchao_import,
)
from budgetune.trainables._sharing import is_shared, unshare_blocks
from budgetune.trainables._tokenizer import EOT, MASK, write_atomically
from budgetune.trainables.load_compressed import FORMAT, decode_matrix

if TYPE_CHECKING:
    from transformers import PreTrainedModel

COMPRESSED_FILE = "compressed.safetensors"
DECODER = Path(__file__).with_name("load_compressed.py")  # copied into each export folder


def point_model(model: nn.Module, family: Family) -> nn.Module:
    """A CPU copy of ``model`` with one block per depth and pruning masks folded into plain
    weights; ``model`` itself is left as it is (shared, pruned, on its device). Masks are
    folded first, so a shared block is folded once and its copies inherit plain weights."""
    point = copy.deepcopy(model).to("cpu").eval()
    for linear in block_linears(family.blocks(point)):
        if prune.is_pruned(linear):
            prune.remove(linear, "weight")  # weight = weight_orig * weight_mask, as a Parameter
    if is_shared(family.blocks(point)):
        blocks, _ = unshare_blocks(family.blocks(point))
        family.set_blocks(point, blocks)
    return point


def save_point(model: nn.Module, path: str | Path, metadata: dict[str, str]) -> None:
    """Keep a point model as one safetensors file (tied weights once), written atomically."""
    from safetensors.torch import save_model

    assert not any(k.endswith("_orig") for k in model.state_dict()), "not a point model"
    write_atomically(Path(path), lambda tmp: save_model(model, tmp, metadata=metadata))


def load_point(schedule: Schedule, eot_id: int, path: str | Path) -> nn.Module:
    """The point model kept by ``save_point`` for ``schedule``, on the CPU, in eval mode."""
    from safetensors.torch import load_model

    model = FAMILIES[schedule.model].build(schedule, eot_id, "sdpa")
    load_model(model, str(path))
    return model.eval()


def hf_model(model: nn.Module, family: Family) -> PreTrainedModel:
    """``model`` (a point model or any trial model) as its genuine Hugging Face class, whose
    ``save_pretrained`` folder loads with transformers alone. A copy; ``model`` is untouched."""
    with quiet_torchao_import():
        from transformers.pytorch_utils import Conv1D

    hf = point_model(model, family)
    if family.name == "gpt2":  # back to Conv1D: x @ W + b with W (in, out) = Linear's Wᵀ
        for block in family.blocks(hf):
            for owner, name in gpt2_block_matrices(block):
                linear = getattr(owner, name)
                conv = Conv1D(linear.out_features, linear.in_features)
                with torch.no_grad():
                    conv.weight.copy_(linear.weight.T)
                    conv.bias.copy_(linear.bias)
                setattr(owner, name, conv)
    # Users generate with it: transformers' default cache on (budgetune trains without one).
    # The attention kernel is not saved to config.json: transformers picks its own on load.
    hf.config.use_cache = True
    hf.config.architectures = [type(hf).__name__]
    return hf


def _matrix_names(model: nn.Module, family: Family) -> list[str]:
    """Parameter names of the compressed matrices: the block stack's, in ``named_parameters``
    order, then the token embedding's (the LM head's too: tied, so named once)."""
    ids = {id(m) for m in block_linears(family.blocks(model))}
    tokens = token_matrix(model, family)
    return [f"{name}.weight" for name, m in model.named_modules() if id(m) in ids] + [
        next(name for name, p in model.named_parameters() if p is tokens)]


def _pack(codes: torch.Tensor, bits: int) -> np.ndarray:
    """Kept values (n,) as bytes: fp32 as is, int8 two's complement, int4 as nibbles (low
    nibble first, padded to a whole byte)."""
    if bits == 32:
        return codes.to(torch.float32).numpy().view(np.uint8)
    raw = codes.to(torch.int8).numpy().view(np.uint8)
    if bits == 8:
        return raw
    nibbles = np.concatenate([raw & 0x0F, np.zeros(len(raw) % 2, np.uint8)])
    return nibbles[0::2] | (nibbles[1::2] << 4)


def _encode_matrix(pruned: torch.Tensor, quantized,
                   bits: int) -> tuple[np.ndarray, np.ndarray, list[object]]:
    """(packed bytes, scales, layout entry [masked, int4 group or 0]) of one matrix (out, in):
    ``pruned`` its fp32 weight after pruning, ``quantized`` torchao's tensor of it (None at 32
    bits)."""
    keep = pruned != 0  # the mask: the weights pruning left (quantized ones may round to 0)
    masked = not bool(keep.all())
    mask = np.packbits(keep.numpy().ravel()) if masked else np.zeros(0, np.uint8)
    if bits == 32:
        return np.concatenate([mask, _pack(pruned[keep], 32)]), np.zeros(0, np.float32), \
            [int(masked), 0]
    codes, scale = quantized.qdata, quantized.scale.to(torch.float32)
    assert int(quantized.zero_point.abs().max()) == 0, "symmetric: no zero points stored"
    assert not bool(codes[~keep].any()), "a pruned weight did not quantize to 0"
    scale = scale.reshape(-1)
    group = pruned.numel() // len(scale) if bits == 4 else 0
    return np.concatenate([mask, _pack(codes[keep], bits)]), scale.numpy(), [int(masked), group]


def save_compressed(model: nn.Module, family: Family, sparsity: float, quant_bits: int,
                    folder: str | Path) -> Path:
    """Write ``folder/compressed.safetensors`` (and the ``config.json`` it needs): ``model``
    unshared, pruned one-shot to ``sparsity`` and quantized to ``quant_bits`` as
    ``compressed_copy`` does, in the packed format of the module docstring. Its size is
    ``compressed_bytes`` of ``point_model(model)`` plus safetensors' header."""
    from safetensors.numpy import save_file

    if quant_bits not in (32, 8, 4):
        raise ValueError(f"The value of `quant_bits` is {quant_bits}, but must be 32, 8 or 4.")
    if not 0 <= sparsity < 1:
        raise ValueError(f"The value of `sparsity` is {sparsity}, but must be in [0, 1).")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # 1. Prune a point copy (masks folded in), then quantize it: the same weights, integers
    #    and scales as compressed_copy(model, sparsity, bits), with the mask still readable.
    pruned = compressed_copy(point_model(model, family), family, sparsity, 32)
    quantized = pruned if quant_bits == 32 else compressed_copy(pruned, family, 0.0, quant_bits)
    # 2. Pack every compressed matrix (the token matrix at its own bits, read from the LM
    #    head torchao quantized); 3. every other parameter, in the Hugging Face model's order.
    names, packed, scales, layout = _matrix_names(pruned, family), [], [], []
    for name in names:
        module = name.rsplit(".", 1)[0]
        tokens = name == names[-1]
        bits = embedding_bits(quant_bits) if tokens else quant_bits
        q = None
        if bits < 32:
            q = (family.head(quantized) if tokens else quantized.get_submodule(module)).weight
        data, scale, entry = _encode_matrix(pruned.get_parameter(name).detach(), q, bits)
        packed.append(data)
        scales.append(scale)
        layout.append([name, *entry, bits])
    hf = hf_model(pruned, family)
    rest = [p.detach().numpy().ravel() for n, p in hf.named_parameters() if n not in names]
    tensors = {"packed": np.concatenate(packed), "rest": np.concatenate(rest)}
    if quant_bits < 32:
        tensors["scales"] = np.concatenate(scales)
    metadata = {"format": FORMAT, "bits": str(quant_bits), "sparsity": str(sparsity),
                "matrices": json.dumps(layout, separators=(",", ":"))}
    # 4. Decode it back (the standalone decoder's own function) before keeping it.
    _check_decodes(tensors, metadata, quantized)
    hf.config.save_pretrained(folder)
    path = folder / COMPRESSED_FILE
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def _check_decodes(tensors: dict[str, np.ndarray], metadata: dict[str, str],
                   quantized: nn.Module) -> None:
    """Every matrix decodes to torchao's ``dequantize()`` (the pruned fp32 weight at 32 bits)
    within 1e-6, and the packed bytes and scales are used up exactly. (The quantized model's
    token embedding holds its head's dequantized numbers: the same reference.)"""
    offset, s_offset = 0, 0
    scales = tensors.get("scales", np.zeros(0, np.float32))
    for name, masked, group, bits in json.loads(metadata["matrices"]):
        weight = quantized.get_parameter(name)
        reference = weight.dequantize() if hasattr(weight, "qdata") else weight.detach()
        decoded, used, n = decode_matrix(tensors["packed"][offset:], scales[s_offset:],
                                         tuple(reference.shape), bits, bool(masked), group)
        offset, s_offset = offset + used, s_offset + n
        assert float((decoded - reference).abs().max()) <= 1e-6, f"{name} does not decode"
    assert (offset, s_offset) == (len(tensors["packed"]), len(scales)), "size mismatch"


def save_tokenizer(tokenizer_json: str, family_name: str, folder: str | Path, *,
                   model_max_length: int | None = None, eot_id: int | None = None,
                   mask_id: int | None = None) -> None:
    """Write the BPE tokenizer (its ``tokenizer.json`` text) as a Hugging Face tokenizer folder
    that ``AutoTokenizer.from_pretrained(folder)`` loads: documents end with the end-of-text
    token (eos and bos; also the padding token, as for GPT-2: batches padded with it need an
    attention mask), and the masked LM's mask token is the mask. Those are the tokens of
    ``eot_id`` and ``mask_id`` that the model was trained with (a user's own tokenizer may name
    them ``</s>`` or ``[MASK]``); budgetune's ``<|endoftext|>`` and ``<|mask|>`` by default."""
    from tokenizers import Tokenizer

    with quiet_torchao_import():
        from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(tokenizer_json)
    eot = backend.id_to_token(eot_id) if eot_id is not None else EOT
    special = {"eos_token": eot, "bos_token": eot, "pad_token": eot}
    if FAMILIES[family_name].masked:
        special["mask_token"] = backend.id_to_token(mask_id) if mask_id is not None else MASK
    if model_max_length is not None:
        special["model_max_length"] = model_max_length
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **special)
    tokenizer.save_pretrained(str(folder))
