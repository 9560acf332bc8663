"""The loss cost of compressing each part of a trained model: the block matrices, the token
embedding (tied to the LM head), and both, at int8 and int4 (prints one JSON object).

    PYTHONPATH=. .venv/bin/python benchmarks/whole_model.py --d-model 32 64 --budget 1.8e12

Each model is a ``default``-space schedule (gpt2, depth 2, V 1024, T 128, B 16, lr 3e-3, dense)
trained for ``--budget`` FLOPs, then evaluated on the same validation tokens as it is and with
one part quantized (torchao, as ``compressed_copy`` does): the differences are paired, so their
standard errors are far smaller than the losses'. Sizes are ``matrix_bytes`` of the stored
format. This is what chose ``EMBEDDING_BITS`` (BENCHMARKS.md, "Whole-model compression").
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time

import torch
from torch import nn

from budgetune.sizes import matrix_bytes
from budgetune.spaces import Schedule
from budgetune.trainables import Trial, TrialConfig
from budgetune.trainables._compress import block_linears, quantize


def variant(trial: Trial, blocks_bits: int, tokens_bits: int) -> nn.Module:
    """A copy of the trial's model with its block matrices and its token matrix quantized."""
    clone = copy.deepcopy(trial.model)
    if blocks_bits < 32:
        quantize(clone, block_linears(trial.family.blocks(clone)), blocks_bits)
    if tokens_bits < 32:
        head, embedding = trial.family.head(clone), trial.family.embedding_modules(clone)[0]
        quantize(clone, [head], tokens_bits)
        embedding.weight = nn.Parameter(head.weight.dequantize(), requires_grad=False)
    return clone


def measure(d_model: int, budget: float, seed: int, eval_tokens: int) -> dict:
    schedule = Schedule(model="gpt2", d_model=d_model, n_layers=2, n_heads=2, seq_len=128,
                        batch_size=16, vocab_size=1024, lr=3e-3, seed=seed)
    trial = Trial(schedule, budget, TrialConfig(eval_tokens=eval_tokens, n_reports=1))
    start = time.perf_counter()
    for _ in trial.run():
        pass
    base = trial.token_losses()
    out = {"d_model": d_model, "seed": seed, "budget_flops": budget,
           "train_s": round(time.perf_counter() - start, 1), "val_loss": float(base.mean()),
           "eval_tokens": base.numel()}
    linears = block_linears(trial.blocks)
    tokens = trial.family.embedding_modules(trial.model)[0].weight
    for blocks_bits, tokens_bits in [(8, 32), (4, 32), (32, 8), (32, 4), (8, 8), (4, 8), (4, 4)]:
        diff = trial.token_losses(variant(trial, blocks_bits, tokens_bits)) - base
        nbytes = sum(matrix_bytes(tuple(m.weight.shape), m.weight.numel(), False, blocks_bits)
                     for m in linears)
        nbytes += matrix_bytes(tuple(tokens.shape), tokens.numel(), False, tokens_bits)
        out[f"blocks{blocks_bits}_tokens{tokens_bits}"] = {
            "loss_cost": float(diff.mean()),
            "se": float(diff.std() / math.sqrt(diff.numel())),
            "matrix_bytes": nbytes}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--budget", type=float, default=1.8e12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--eval-tokens", type=int, default=32768)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(d, args.budget, seed, args.eval_tokens)
            for d in args.d_model for seed in args.seeds]
    print(json.dumps({"benchmark": "whole_model", "models": rows}, indent=1))


if __name__ == "__main__":
    main()
