"""Share weights across repeated blocks, then unshare them (Yang et al. 2021, arXiv 2110.03848).

While shared, the block stack holds one unit of A consecutive blocks repeated B = L/A times:
depth i runs block ``unit[i % A]``. The parameters are the same objects at every depth, so
autograd sums the gradients of all depths into them: tied weights, which the paper describes
as each layer taking the mean gradient (AdamW is invariant to that constant factor up to eps).

At the switch every depth gets its own copy of its unit block *and of the AdamW state for it*
(step count, first and second moments), so training continues where it was: the loss just
after the switch equals the loss just before. While shared, the moments hold the *sum* of the
B depths' gradients: m ≈ B·ḡ, v ≈ B²·ḡ². Each depth's copy gets one depth's share, m/B and
v/B²; copied as they are, m forgets the sum within ~1/(1−β₁) steps while v remembers it for
~1/(1−β₂), and the steps m/√v shrink towards 1/B in between. Measured paired over 5 seeds
(BENCHMARKS.md, benchmarks/unshare_moments.py): the per-depth share gave a lower training
loss over the 50 steps after the switch in every seed (by 0.012 nats on average).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

PER_DEPTH_MOMENTS = True  # each copy takes m/B, v/B²: measured in benchmarks/unshare_moments.py


def share_blocks(blocks: nn.ModuleList, unit: int) -> nn.ModuleList:
    """Tie depth i to block ``i % unit``; every depth starts from the unit's initial weights."""
    assert len(blocks) % unit == 0, "share_unit must divide n_layers (Schedule checks this)"
    return nn.ModuleList([blocks[i % unit] for i in range(len(blocks))])


def is_shared(blocks: nn.ModuleList) -> bool:
    return len({id(b) for b in blocks}) < len(blocks)


def unshare_blocks(
    blocks: nn.ModuleList,
) -> tuple[nn.ModuleList, dict[nn.Parameter, list[nn.Parameter]]]:
    """Give every depth its own copy; return the new stack and old parameter -> its copies."""
    copies = nn.ModuleList([copy.deepcopy(b) for b in blocks])
    mapping: dict[nn.Parameter, list[nn.Parameter]] = {}
    for shared, own in zip(blocks, copies):
        for p_shared, p_own in zip(shared.parameters(), own.parameters()):
            mapping.setdefault(p_shared, []).append(p_own)
    return copies, mapping


def transfer_optimizer_state(
    old: torch.optim.Optimizer,
    new: torch.optim.Optimizer,
    mapping: dict[nn.Parameter, list[nn.Parameter]],
    per_depth: bool = PER_DEPTH_MOMENTS,
) -> None:
    """Copy each old parameter's optimizer state to the new optimizer, once per copy of it.

    With ``per_depth``, the copies of a parameter B depths shared get one depth's share of
    AdamW's moments: ``exp_avg / B`` and ``exp_avg_sq / B²`` (see the module docstring)."""
    for p_old, state in old.state.items():
        copies = mapping.get(p_old, [p_old])
        b = len(copies) if per_depth else 1
        for p_new in copies:
            new.state[p_new] = {k: _share_of(k, v, b) if torch.is_tensor(v) else v
                                for k, v in state.items()}


def _share_of(name: str, value: torch.Tensor, b: int) -> torch.Tensor:
    """One depth's share of a moment summed over ``b`` depths (a copy in every case)."""
    if name == "exp_avg" and b > 1:
        return value / b
    if name == "exp_avg_sq" and b > 1:
        return value / b**2
    return value.clone()
