"""Deploy size in bytes: the stated storage format of a compressed model, from shapes alone.

The format (``budgetune.trainables._compress``, which measures real models with it): every
weight matrix of the block stack is stored as its non-zero values packed at ``quant_bits``
bits; when sparse, plus its mask as a packed bitmap (1 bit per weight); plus fp32 scales, one
per output row for int8 and one per group of ``int4_group(in_features)`` weights for int4
(symmetric: no zero points). The token embedding, which the LM head shares (tied), is stored the
same way at ``embedding_bits(quant_bits)``, never pruned. Every other unique parameter
(position embeddings, the LM head's own transform and bias, biases, norms) is stored in fp32.

``schedule_bytes`` is that size for the model a ``Schedule`` ends with (unshared: every depth
its own blocks), counted from its shape the way ``_models`` builds it:

- gpt2 (``GPT2LMHeadModel``, head tied to the token embedding): block matrices c_attn (3d×d),
  attn c_proj (d×d), c_fc (d_ff×d), mlp c_proj (d×d_ff); outside them token and position
  embeddings (the token matrix V×d, and T·d) and the final norm (2d);
- bert (``RobertaPreLayerNormForMaskedLM``, decoder tied): query, key, value, output (d×d
  each), intermediate (d_ff×d), output (d×d_ff); outside them word, position and one
  token-type embedding (V·d + T·d + d), the embedding and final norms (4d) and the head's
  transform, norm and vocabulary bias (d² + 3d + V); the token matrix is the word embedding;
- per block, both: biases and norms, 9d + d_ff.

This module imports neither torch nor ray: the trainer measures sizes with ``matrix_bytes``
and analysis (the compression-aware law's answer under ``--max-mb``) sizes a model it has not
trained with ``schedule_bytes``, so both count one way. tests/trainables checks
``schedule_bytes`` against ``final_bytes`` of built models.
"""

from __future__ import annotations

import math

from budgetune.spaces import Schedule

INT4_GROUP_SIZE = 32
MIN_INT4_GROUP = 8  # smaller groups: the whole row is one group (int4_group)
# The token matrix's bits for each block bits. At 4 bits it stays int8: on trained
# default-space models (d_model 32 and 64, 2 seeds each) int4 cost the token matrix 0.011-0.042
# nats against under 0.0004 at int8, 2-4x the loss per byte saved that int4 costs the block
# matrices (BENCHMARKS.md, "Whole-model compression"; benchmarks/whole_model.py).
EMBEDDING_BITS = {32: 32, 8: 8, 4: 8}


def embedding_bits(quant_bits: int) -> int:
    """The bits the token embedding (and the LM head tied to it) is stored at in a model whose
    block matrices are at ``quant_bits``."""
    return EMBEDDING_BITS[quant_bits]


def int4_group(in_features: int) -> int:
    """The int4 group size of a matrix with rows of ``in_features``: the largest divisor of
    the row up to INT4_GROUP_SIZE (32; 16 at d_model 16, 24 at 48, 11 at 33), or the whole row
    where that divisor is below MIN_INT4_GROUP (74 = 2·37: an fp32 scale for every 2 weights
    would make int4 larger than int8; the whole row has one scale)."""
    group = next(g for g in range(min(INT4_GROUP_SIZE, in_features), 0, -1)
                 if in_features % g == 0)
    return group if group >= MIN_INT4_GROUP else in_features


def matrix_bytes(shape: tuple[int, int], nonzeros: int, masked: bool, quant_bits: int) -> int:
    """Bytes of one (out_features, in_features) block matrix with ``nonzeros`` kept weights."""
    out_features, in_features = shape
    values = math.ceil(nonzeros * quant_bits / 8)
    mask = math.ceil(out_features * in_features / 8) if masked else 0
    if quant_bits == 8:
        scales = 4 * out_features
    elif quant_bits == 4:
        scales = 4 * out_features * (in_features // int4_group(in_features))
    else:
        scales = 0
    return values + mask + scales


def block_matrix_shapes(s: Schedule) -> list[tuple[int, int]]:
    """(out_features, in_features) of one block's weight matrices (module docstring)."""
    d, ff = s.d_model, s.d_ff
    attention = [(3 * d, d), (d, d)] if s.model == "gpt2" else [(d, d)] * 4
    return attention + [(ff, d), (d, ff)]


def fp32_params(s: Schedule) -> int:
    """Unique parameters stored in fp32 (everything but the block matrices and the token
    matrix), unshared."""
    d, T = s.d_model, s.seq_len
    outside = T * d + 2 * d if s.model == "gpt2" else T * d + d * d + 8 * d + s.vocab_size
    return outside + s.n_layers * (9 * d + s.d_ff)


def schedule_bytes(s: Schedule, sparsity: float, quant_bits: int) -> int:
    """The size of ``s``'s final model with every block matrix pruned to ``sparsity`` and
    stored at ``quant_bits``, its token matrix at ``embedding_bits(quant_bits)`` (module
    docstring): what ``compressed_bytes`` measures of it."""
    tokens = s.vocab_size * s.d_model
    total = 4 * fp32_params(s) + matrix_bytes((s.vocab_size, s.d_model), tokens, False,
                                              embedding_bits(quant_bits))
    for shape in block_matrix_shapes(s):
        numel = shape[0] * shape[1]
        zeros = round(sparsity * numel)
        total += s.n_layers * matrix_bytes(shape, numel - zeros, zeros > 0, quant_bits)
    return total
