"""Training FLOPs: the budget's unit, so results compare across machines.

Per token of training (forward + backward = 3 × forward, each multiply-add = 2 FLOPs):

    6·N_nonemb + 12·L·T·d + 6·f·N_head

- N_nonemb = L·(4·d² + 2·d·d_ff): the weight matrices of the block stack *as computed*: a shared
  block still costs L blocks of compute (Kaplan et al. 2020, "Scaling Laws for Neural Language
  Models", table 1: C_forward ≈ 2N + 2·n_layer·n_ctx·d_attn);
- 12·L·T·d: attention scores QKᵀ and their use on V, 2·T·d multiply-adds each per token and
  layer, times 3 for the backward pass (PaLM, Chowdhery et al. 2022, appendix B);
- N_head = d·V (the vocabulary projection, tied to the input embedding) plus, for the masked-LM
  head, its d×d transform; f is the fraction of positions whose logits are computed: 1 for the
  causal LM, exactly round(0.15·T)/T for the masked LM, whose head runs on masked positions only.

Input-embedding lookups, biases, norms, softmax and the loss are left out. tests/trainables
checks this count against ``torch.utils.flop_counter.FlopCounterMode`` term by term.

This module imports neither torch nor ray: the trainer plans its steps with it and analysis
turns a law's N into tokens with it, so both count one way.
"""

from __future__ import annotations

import math

from budgetune.spaces import Schedule, validate_budget

MASK_FRACTION = 0.15  # BERT's share of predicted positions (Devlin et al. 2019)


def n_masked(seq_len: int) -> int:
    """Positions predicted per masked-LM sequence: exactly round(0.15·T), at least one."""
    return max(1, round(MASK_FRACTION * seq_len))


def head_fraction(s: Schedule) -> float:
    """f: the fraction of positions whose logits are computed."""
    return n_masked(s.seq_len) / s.seq_len if s.model == "bert" else 1.0


def n_params_nonemb_computed(s: Schedule) -> int:
    """Weight-matrix parameters the block stack computes with per token (L blocks, shared
    or not)."""
    return s.n_layers * (4 * s.d_model**2 + 2 * s.d_model * s.d_ff)


def head_params(s: Schedule) -> int:
    transform = s.d_model**2 if s.model == "bert" else 0
    return s.d_model * s.vocab_size + transform


def flops_per_token(s: Schedule) -> float:
    """Training FLOPs per token: 6·N_nonemb + 12·L·T·d + 6·f·N_head (see the module docstring)."""
    blocks = 6 * n_params_nonemb_computed(s)
    attention = 12 * s.n_layers * s.seq_len * s.d_model
    head = 6 * head_fraction(s) * head_params(s)
    return blocks + attention + head


def tokens_per_step(s: Schedule) -> int:
    return s.batch_size * s.seq_len


def flops_per_step(s: Schedule) -> float:
    return tokens_per_step(s) * flops_per_token(s)


def eval_flops_per_token(s: Schedule) -> float:
    """A forward pass alone: a third of a training step's FLOPs per token."""
    return flops_per_token(s) / 3


def plan_steps(s: Schedule, budget_flops: float, min_steps: int = 10) -> int:
    """The largest number of steps whose FLOPs fit the budget (never over, < 1 step short)."""
    budget_flops = validate_budget(budget_flops)
    fps = flops_per_step(s)
    steps = math.floor(budget_flops / fps)  # the quotient is rounded: correct it both ways
    while steps > 0 and steps * fps > budget_flops:
        steps -= 1
    while (steps + 1) * fps <= budget_flops:
        steps += 1
    if steps < min_steps:
        need = min_steps * flops_per_step(s)
        raise ValueError(
            f"The value of `budget` is {budget_flops:.3g} FLOPs, but must be >= {need:.3g} "
            f"for this schedule ({min_steps} steps of {flops_per_step(s):.3g} FLOPs); raise the "
            "budget or shrink the model, batch or sequence."
        )
    return steps
