"""The two model families, built from Hugging Face config objects (nothing pretrained).

- ``gpt2``: ``GPT2LMHeadModel``, causal LM. GPT-2's ``Conv1D`` layers are converted to
  ``nn.Linear`` at build time, so that pruning and torchao see ordinary linear layers.
- ``bert``: masked LM, the seeds' setting, as transformers' pre-LN
  ``RobertaPreLayerNormForMaskedLM``: pre-LN trains stably at the high learning rates short runs
  need (Xiong et al. 2020), where post-LN BERT needs long warmups.

Dropout is off in both: at these budgets no run sees its data twice, so there is nothing to
regularise. Each family knows where its block stack lives and how to compute its loss; the
masked-LM head runs on masked positions only, which is what the FLOPs count assumes.

The LM head and its cross-entropy run ``HEAD_CHUNK`` tokens at a time. A whole batch's logits,
(B·T, V) in fp32 (32 MiB at 2048 tokens and V 4096), leave the cache before the log-softmax
reads them back; a (256, V) slab does not. On this CPU (1 thread, d 128, V 4096) that took the
head from 98 to 68 ms forward and from 240 to 159 ms forward and backward per 2048 tokens. The
loss and its gradients are the same sums in another order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from budgetune.spaces import Schedule
from budgetune.trainables._batches import Batch

HEAD_CHUNK = 256  # tokens per slice of the LM head and its cross-entropy


@dataclass(frozen=True)
class Family:
    name: str
    masked: bool  # masked-LM objective (else causal)
    build: Callable[[Schedule, int, str], nn.Module]
    blocks_owner: Callable[[nn.Module], nn.Module]  # module whose attribute holds the blocks
    blocks_attr: str
    loss: Callable[..., torch.Tensor]  # (model, batch, reduction="mean"|"none")
    embedding_modules: Callable[[nn.Module], list[nn.Embedding]]  # the token embedding first
    head: Callable[[nn.Module], nn.Linear]  # the LM head's output matrix (tied to the tokens')

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return getattr(self.blocks_owner(model), self.blocks_attr)

    def set_blocks(self, model: nn.Module, blocks: nn.ModuleList) -> None:
        setattr(self.blocks_owner(model), self.blocks_attr, blocks)


@contextmanager
def quiet_torchao_import():
    """torchao's first import (by transformers, or by ``compressed_copy``) logs that a CPU
    build cannot load its CUDA kernels, and torch that torchao registers enums in a deprecated
    way: noise users cannot act on. Quieted for the import alone; the loggers' levels are
    given back as they were (a library leaves other libraries' log levels alone)."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _build_gpt2(s: Schedule, eot_id: int, attn_implementation: str) -> nn.Module:
    with quiet_torchao_import():
        from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=s.vocab_size, n_positions=s.seq_len, n_embd=s.d_model, n_layer=s.n_layers,
        n_head=s.n_heads, n_inner=s.d_ff, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=eot_id, eos_token_id=eot_id, use_cache=False,
    )
    config._attn_implementation = attn_implementation
    model = GPT2LMHeadModel(config)
    for block in model.transformer.h:
        for owner, name in gpt2_block_matrices(block):
            setattr(owner, name, conv1d_to_linear(getattr(owner, name)))
    return model


def gpt2_block_matrices(block: nn.Module) -> list[tuple[nn.Module, str]]:
    """(owner, attribute) of a GPT-2 block's four ``Conv1D`` layers (``nn.Linear`` once built)."""
    return [(block.attn, "c_attn"), (block.attn, "c_proj"), (block.mlp, "c_fc"),
            (block.mlp, "c_proj")]


def conv1d_to_linear(conv) -> nn.Linear:
    """GPT-2's Conv1D computes x @ W + b with W of shape (in, out); nn.Linear stores Wᵀ."""
    d_in, d_out = conv.weight.shape
    linear = nn.Linear(d_in, d_out)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.T)
        linear.bias.copy_(conv.bias)
    return linear


def head_loss(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor,
              reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of ``head(hidden)`` (N, d) -> (N, V) against ``targets`` (N,),
    ``HEAD_CHUNK`` rows at a time (see the module docstring): the mean, or with
    ``reduction="none"`` each token's loss (N,)."""
    if reduction == "none":
        return torch.cat([F.cross_entropy(head(h).float(), y, reduction="none")
                          for h, y in zip(hidden.split(HEAD_CHUNK), targets.split(HEAD_CHUNK))])
    total = hidden.new_zeros((), dtype=torch.float32)
    for h, y in zip(hidden.split(HEAD_CHUNK), targets.split(HEAD_CHUNK)):
        total = total + F.cross_entropy(head(h).float(), y, reduction="sum")
    return total / targets.numel()


def _gpt2_loss(model: nn.Module, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    hidden = model.transformer(input_ids=batch.inputs).last_hidden_state  # (B, T, d)
    return head_loss(model.lm_head, hidden.flatten(0, 1), batch.targets.reshape(-1), reduction)


def _build_bert(s: Schedule, eot_id: int, attn_implementation: str) -> nn.Module:
    with quiet_torchao_import():
        from transformers import RobertaPreLayerNormConfig, RobertaPreLayerNormForMaskedLM

    config = RobertaPreLayerNormConfig(
        vocab_size=s.vocab_size, hidden_size=s.d_model, num_hidden_layers=s.n_layers,
        num_attention_heads=s.n_heads, intermediate_size=s.d_ff,
        max_position_embeddings=s.seq_len, type_vocab_size=1, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pad_token_id=None, bos_token_id=eot_id,
        eos_token_id=eot_id, use_cache=False,
    )
    config._attn_implementation = attn_implementation
    return RobertaPreLayerNormForMaskedLM(config)


def _bert_loss(model: nn.Module, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    b, t = batch.inputs.shape
    # Position ids are given so that no token id is read as padding.
    positions = torch.arange(t, device=batch.inputs.device).expand(b, t)
    hidden = model.roberta_prelayernorm(
        input_ids=batch.inputs, position_ids=positions
    ).last_hidden_state  # (B, T, d)
    return head_loss(model.lm_head, hidden[batch.positions], batch.targets,
                     reduction)  # masked positions only


FAMILIES = {
    "gpt2": Family(
        "gpt2", False, _build_gpt2, lambda m: m.transformer, "h", _gpt2_loss,
        lambda m: [m.transformer.wte, m.transformer.wpe], lambda m: m.lm_head,
    ),
    "bert": Family(
        "bert", True, _build_bert, lambda m: m.roberta_prelayernorm.encoder, "layer", _bert_loss,
        lambda m: [m.roberta_prelayernorm.embeddings.word_embeddings,
                   m.roberta_prelayernorm.embeddings.position_embeddings,
                   m.roberta_prelayernorm.embeddings.token_type_embeddings],
        lambda m: m.lm_head.decoder,
    ),
}


def unique_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters counted once however often they are used (shared blocks, tied heads)."""
    return list({id(p): p for p in model.parameters()}.values())


def count_params(model: nn.Module, family: Family) -> tuple[int, int]:
    """(unique parameters, unique non-embedding parameters)."""
    params = unique_parameters(model)
    emb = {id(m.weight) for m in family.embedding_modules(model)}
    total = sum(p.numel() for p in params)
    return total, total - sum(p.numel() for p in params if id(p) in emb)
