"""The parametric law's allocation for a budget, costed by the trainer's own FLOPs formula.

Chinchilla's closed form assumes C = 6·N·D. budgetune's trials cost ``flops_per_token(shape)``
per token (``budgetune.flops``: blocks, attention and the LM head), 1.8× 6N at d_model 128 /
4 layers and about 4× at d_model 64 / 2 layers, so an allocation on 6·N·D would overspend by
that much. Here instead:

1. **The shape family** is taken from a measured recipe (the query's winner): its aspect ratio
   r = d_model / n_layers, head width d_model / n_heads, FFN ratio k = d_ff / d_model, and every
   other field (model, seq_len T, vocab_size V, batch, lr, ...). A size N then has
   n_layers L = (N / ((4 + 2k)·r²))^(1/3) and d_model = r·L, because the block stack holds
   N_nonemb = L·(4d² + 2·d·d_ff) = (4 + 2k)·L·d² (12·L·d² for d_ff = 4d).
2. **The optimum**: minimise the fitted L(N, D(N)) over ln N with D(N) = C / flops_per_token(N's
   shape) (``scipy.optimize.minimize_scalar``, bounded), so it spends exactly C.
3. **A runnable schedule**: round to whole layers and a whole number of heads, and plan its
   steps as the trainer does (``plan_steps``: the largest number that fits, never over budget).
   D is those steps' tokens, and the expected loss is the law at the rounded (N, D).

Under a size limit, for the compression-aware law at a cell c = (bits, sparsity)
(``allocate_within``), the search in step 2 stops at the largest N whose model, trained to c's
sparsity and stored at c's bits, fits the limit: its size comes from its shape alone
(``budgetune.sizes.schedule_bytes``, the trainer's own format), and the rounded schedule is
shrunk until it fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from budgetune.analysis._candidates import plain
from budgetune.analysis._fit import ScalingLawFit
from budgetune.flops import (
    flops_per_step,
    flops_per_token,
    n_params_nonemb_computed,
    plan_steps,
    tokens_per_step,
)
from budgetune.sizes import schedule_bytes
from budgetune.spaces import Schedule, schedule_fields

_LOG_N_BOUNDS = (math.log(1e3), math.log(1e13))  # non-embedding parameters searched


@dataclass(frozen=True)
class Allocation:
    n_opt: float  # the continuous optimum along the family  # parameters
    schedule: Schedule  # the rounded, runnable shape
    n_params_nonemb: int  # its N
    steps: int  # trainer-planned steps at the budget
    tokens: int  # D = steps × batch_size × seq_len
    train_flops: float  # steps × flops_per_step: <= the budget, < one step short
    expected_loss: float  # the fitted law at (N, D)  # nats
    compressed_bytes: int  # its size at its schedule's prune_sparsity and quant_bits


def _family(winner: dict) -> dict:
    d, L = float(winner["d_model"]), float(winner["n_layers"])
    return {"r": d / L, "head": d / float(winner["n_heads"]), "k": float(winner["d_ff"]) / d}


def _shape(n: float, winner: dict) -> tuple[float, float]:
    """(n_layers, d_model), continuous, of the family member with N non-embedding params."""
    f = _family(winner)
    layers = (n / ((4 + 2 * f["k"]) * f["r"] ** 2)) ** (1 / 3)
    return layers, f["r"] * layers


def family_flops_per_token(n: float, winner: dict) -> float:
    """``budgetune.flops.flops_per_token`` of the (continuous) family member of size N."""
    layers, d = _shape(n, winner)
    return flops_per_token(SimpleNamespace(
        model=winner["model"], n_layers=layers, d_model=d, d_ff=_family(winner)["k"] * d,
        seq_len=winner["seq_len"], vocab_size=winner["vocab_size"]))


def _rounded(n: float, winner: dict, cell: tuple[int, float] | None = None) -> Schedule:
    f = _family(winner)
    layers, d = _shape(n, winner)
    L = max(1, round(layers))
    heads = max(1, round(d / f["head"]))
    d_model = max(8, int(round(heads * f["head"])))
    while d_model % heads:
        d_model += 1
    values = {fl.name: winner[fl.name] for fl in schedule_fields() if fl.name in winner}
    unit = int(values.get("share_unit", 1))
    values.update(d_model=d_model, n_layers=L, n_heads=heads,
                  d_ff=max(1, int(round(f["k"] * d_model))),
                  share_unit=unit if L % unit == 0 else 1)
    if cell is not None:  # trained to the cell's sparsity, quantized to its bits
        values.update(quant_bits=int(cell[0]), prune_sparsity=float(cell[1]))
    values = {k: plain(v) for k, v in values.items()}
    return Schedule(**values)


def allocate(fit: ScalingLawFit, budget_flops: float, winner: dict) -> Allocation:
    """The law's best (N, D) for ``budget_flops`` along the winner's shape family (module
    docstring). Raises ValueError when no schedule of the family gets one step of it."""
    return _allocate(fit.loss, budget_flops, winner, None, _LOG_N_BOUNDS[1], None)


def allocate_within(loss, budget_flops: float, winner: dict, cell: tuple[int, float],
                    max_bytes: float) -> Allocation:
    """The best (N, D) of ``loss(N, D)`` (the compression-aware law at ``cell`` =
    (quant_bits, sparsity)) among the family's models that, trained to the cell's sparsity
    and quantized to its bits, fit in ``max_bytes``. Raises ValueError when none fits or none
    gets one step of the budget."""
    def fits(log_n: float) -> bool:
        s = _rounded(math.exp(log_n), winner, cell)
        return schedule_bytes(s, s.prune_sparsity, s.quant_bits) <= max_bytes

    lo, hi = _LOG_N_BOUNDS
    if not fits(lo):
        raise ValueError(f"no model of the winner's shape family fits in {max_bytes / 1e6:.3g} "
                         f"MB at {cell[0]} bits, sparsity {cell[1]:g}")
    if not fits(hi):  # bisect for the largest N that fits (sizes grow with N)
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        hi = lo
    return _allocate(loss, budget_flops, winner, cell, hi, max_bytes)


def _allocate(loss, budget_flops: float, winner: dict, cell, log_n_max: float,
              max_bytes: float | None) -> Allocation:
    from scipy.optimize import minimize_scalar  # here: scipy costs every command 0.2–0.5 s

    def loss_at(log_n: float) -> float:
        n = math.exp(log_n)
        return float(loss(n, budget_flops / family_flops_per_token(n, winner)))

    low = min(_LOG_N_BOUNDS[0], log_n_max)
    res = minimize_scalar(loss_at, bounds=(low, log_n_max), method="bounded",
                          options={"xatol": 1e-6})
    n_opt = float(np.exp(res.x))
    schedule = _rounded(n_opt, winner, cell)
    size = schedule_bytes(schedule, schedule.prune_sparsity, schedule.quant_bits)
    for k in range(1, 500):  # rounding went over the limit: step down until it fits
        if max_bytes is None or size <= max_bytes:
            break
        schedule = _rounded(n_opt * 0.97**k, winner, cell)
        size = schedule_bytes(schedule, schedule.prune_sparsity, schedule.quant_bits)
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"no rounded shape near N = {n_opt:.3g} fits in "
                         f"{max_bytes / 1e6:.3g} MB")
    steps = plan_steps(schedule, budget_flops, min_steps=1)
    n = n_params_nonemb_computed(schedule)
    tokens = steps * tokens_per_step(schedule)
    return Allocation(n_opt, schedule, n, steps, tokens, steps * flops_per_step(schedule),
                      float(loss(n, tokens)), size)
