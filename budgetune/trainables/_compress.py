"""Compression: gradual magnitude pruning in training, weight quantization after it, and size.

What is compressed: the whole model a user deploys. Every weight matrix of the block stack
(``nn.Linear``; GPT-2's ``Conv1D`` is converted at build time) is pruned and quantized; the token
embedding, which the LM head shares (tied: one (V, d) matrix), is quantized too, at
``embedding_bits(quant_bits)`` (below), and never pruned. At small scale the embedding is most of
a model's bytes: d_model 64, 2 layers, V 1024 holds 98k block weights and 66k embedding ones.
Position embeddings, biases and norms stay fp32 and are counted in the size as such.

- Pruning (Zhu & Gupta 2017, "To prune, or not to prune"): unstructured, by magnitude, per
  matrix, with ``torch.nn.utils.prune``. Sparsity follows the cubic schedule
  s(t) = s_f · (1 − (1 − p)³), p the progress through the first 80% of the pruning window (the
  last ``prune_fraction`` of the steps); the rest of the window lets the model recover. The masks
  live in ``torch.nn.utils.prune``'s forward pre-hooks, so every forward pass, after every
  optimizer step, sees masked weights, and pruned weights stay pruned.
- Quantization: post-training, weight-only, with torchao's ``quantize_``: per-channel int8
  (``Int8WeightOnlyConfig``) or group-wise int4, groups of 32 (``IntxWeightOnlyConfig``; of
  the row's largest divisor up to 32 where a row is not a multiple of 32, ``int4_group``). The
  token matrix is quantized as the LM head's ``nn.Linear`` (one scale per vocabulary row at
  int8, per group of a row at int4), and the embedding looks its rows up dequantized: the
  lookup and the head see the same numbers, as a deployed tied model would.

The stated storage format behind ``compressed_bytes``, per compressed matrix: non-zero values
packed at its bits; when sparse, the mask as a packed bitmap (1 bit per weight); scales in fp32
(one per output row for int8, one per group of 32 weights, or of ``int4_group``, for int4;
symmetric, so no zero points). Every other unique parameter is stored in fp32. Its byte count,
``matrix_bytes``, and the token matrix's bits, ``embedding_bits``, live in ``budgetune.sizes``
(no torch), where analysis sizes models from their shapes alone.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.utils import prune

from budgetune.sizes import embedding_bits, int4_group, matrix_bytes
from budgetune.trainables._models import quiet_torchao_import

PRUNE_RAMP = 0.8  # sparsity reaches its target after 80% of the pruning window
PRUNE_UPDATES = 20  # mask updates over the ramp
def token_matrix(model: nn.Module, family) -> nn.Parameter:
    """The (V, d) token embedding, which is also the LM head's weight (tied)."""
    weight = family.embedding_modules(model)[0].weight
    assert family.head(model).weight is weight, "the LM head is tied to the token embedding"
    return weight


def block_linears(blocks: nn.ModuleList) -> list[nn.Linear]:
    """The block stack's linear layers, each once (shared blocks appear at several depths)."""
    seen: dict[int, nn.Linear] = {}
    for block in blocks:
        for module in block.modules():
            if isinstance(module, nn.Linear):
                seen.setdefault(id(module), module)
    return list(seen.values())


def effective_weight(linear: nn.Linear) -> torch.Tensor:
    """The weight as the forward pass sees it (masked when pruned)."""
    if prune.is_pruned(linear):
        return linear.weight_orig * linear.weight_mask
    return linear.weight


def measured_sparsity(blocks: nn.ModuleList) -> float:
    """Fraction of exact zeros over the block stack's weight matrices."""
    linears = block_linears(blocks)
    zeros = sum(int((effective_weight(m) == 0).sum()) for m in linears)
    return zeros / sum(m.weight_orig.numel() if prune.is_pruned(m) else m.weight.numel()
                       for m in linears)


def prune_to(blocks: nn.ModuleList, sparsity: float) -> None:
    """Raise every block matrix to ``sparsity`` by L1 magnitude; existing masks are kept."""
    for linear in block_linears(blocks):
        numel = linear.weight.numel()
        already = int((linear.weight_mask == 0).sum()) if prune.is_pruned(linear) else 0
        extra = round(sparsity * numel) - already
        if extra > 0:  # PruningContainer applies an int amount to the still-unpruned weights
            # Scores are given explicitly: by default prune reads `module.weight`, which on a
            # pruned module is whatever the last forward pass computed (stale after a step,
            # and the initial weights after a checkpoint restore).
            scores = effective_weight(linear).detach().abs()
            prune.l1_unstructured(linear, "weight", amount=extra, importance_scores=scores)
        elif not prune.is_pruned(linear):
            prune.identity(linear, "weight")


def ensure_prunable(blocks: nn.ModuleList) -> None:
    """Give every block matrix a (all-ones) mask, so a pruned checkpoint's keys match."""
    for linear in block_linears(blocks):
        if not prune.is_pruned(linear):
            prune.identity(linear, "weight")


def cubic_sparsity(step: int, total_steps: int, target: float, prune_fraction: float,
                   start_step: int = 0) -> float:
    """Zhu & Gupta's schedule: 0 before the window, then s_f · (1 − (1 − p)³), then s_f."""
    if target == 0:
        return 0.0
    t0 = max(start_step, total_steps - round(prune_fraction * total_steps))
    ramp = max(1, math.floor(PRUNE_RAMP * (total_steps - t0)))
    every = max(1, ramp // PRUNE_UPDATES)
    if step < t0:
        return 0.0
    p = min(1.0, ((step - t0) // every * every) / ramp)
    return target * (1 - (1 - p) ** 3)


def compressed_copy(model: nn.Module, family, sparsity: float, quant_bits: int) -> nn.Module:
    """A copy of ``model`` pruned (one-shot) up to ``sparsity`` and quantized to ``quant_bits``
    (its token matrix to ``embedding_bits(quant_bits)``); the trained model is left as it is."""
    clone = copy.deepcopy(model)
    blocks = family.blocks(clone)
    if sparsity > 0:
        prune_to(blocks, sparsity)
    linears = block_linears(blocks)
    for linear in linears:
        if prune.is_pruned(linear):
            prune.remove(linear, "weight")  # bake the mask into a plain weight
    if quant_bits < 32:
        token_matrix(clone, family)  # tied, checked before the tie is cut
        head, embedding = family.head(clone), family.embedding_modules(clone)[0]
        by_bits = {quant_bits: linears}
        by_bits.setdefault(embedding_bits(quant_bits), []).append(head)
        for bits, modules in by_bits.items():
            quantize(clone, modules, bits)
        # the lookup reads the head's numbers: one (V, d) matrix, stored once
        embedding.weight = nn.Parameter(head.weight.dequantize(), requires_grad=False)
    return clone


def quantize(model: nn.Module, modules: list[nn.Linear], bits: int) -> None:
    """Quantize ``modules`` of ``model`` in place with torchao: per-channel int8, or int4 in
    groups of ``int4_group`` (one pass per group size: a narrow model's rows are shorter than
    32)."""
    with quiet_torchao_import():
        from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerGroup

    targets = {id(m) for m in modules}
    if bits == 8:
        quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda m, _: id(m) in targets)
    elif bits == 4:
        for group in {int4_group(m.in_features) for m in modules}:
            config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group))
            quantize_(model, config, filter_fn=lambda m, _, g=group: id(m) in targets
                      and int4_group(m.in_features) == g)


def compressed_bytes(model: nn.Module, family, sparsity: float, quant_bits: int) -> int:
    """Size in bytes of ``model`` stored in the format of the module docstring, with the block
    matrices at ``sparsity`` (the larger of it and their measured sparsity) and ``quant_bits``,
    and the token matrix at ``embedding_bits(quant_bits)``."""
    linears = block_linears(family.blocks(model))
    tokens = token_matrix(model, family)
    matrix_ids = {id(m.weight_orig if prune.is_pruned(m) else m.weight) for m in linears}
    rest = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()
               if id(p) not in matrix_ids | {id(tokens)})
    total = 4 * rest + matrix_bytes(tuple(tokens.shape), tokens.numel(), False,
                                    embedding_bits(quant_bits))
    for linear in linears:
        w = effective_weight(linear)
        zeros = max(int((w == 0).sum()), round(sparsity * w.numel()))
        total += matrix_bytes(w.shape, w.numel() - zeros, zeros > 0, quant_bits)
    return total


def final_bytes(model: nn.Module, family, sparsity: float, quant_bits: int) -> int:
    """What ``compressed_bytes`` will measure of ``model`` at the end of its trial: every depth
    with its own blocks (shared or not now), every block matrix at ``sparsity`` and
    ``quant_bits``, the token matrix at ``embedding_bits(quant_bits)``. From shapes alone: the
    weights' values do not matter."""
    blocks = family.blocks(model)
    tokens = token_matrix(model, family)
    in_blocks = {id(p) for block in blocks for p in block.parameters()}
    total = 4 * sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()
                    if id(p) not in in_blocks | {id(tokens)})
    total += matrix_bytes(tuple(tokens.shape), tokens.numel(), False, embedding_bits(quant_bits))
    for block in blocks:  # each depth, counted once per depth even while shared
        linears = [m for m in block.modules() if isinstance(m, nn.Linear)]
        matrices = {id(m.weight_orig if prune.is_pruned(m) else m.weight) for m in linears}
        total += 4 * sum(p.numel() for p in block.parameters() if id(p) not in matrices)
        for linear in linears:
            numel = linear.out_features * linear.in_features
            zeros = round(sparsity * numel)
            total += matrix_bytes((linear.out_features, linear.in_features), numel - zeros,
                                  zeros > 0, quant_bits)
    return total
