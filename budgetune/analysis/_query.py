"""The query users come for: the best schedule for a budget, optionally under a size limit.

Candidates are completed trials with ``budget_flops <= budget`` (DESIGN.md's evidence rules):
each one's own final compression, and every cell of its compression grid. Among those within
``max_bytes`` the lowest ``val_loss_compressed`` wins. Beside it: the envelope law's value at the
budget with its bootstrap interval, and, when the budget lies beyond every measured budget, the
parametric law's compute-optimal allocation, marked as extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from budgetune.analysis._fit import FitOptions
from budgetune.analysis._frontier import FrontierInfo, frontier
from budgetune.analysis._load import Results
from budgetune.results import ResultsError
from budgetune.spaces import schedule_fields, validate_budget

DEFAULT_QUERY_BOOTSTRAP = 100


@dataclass(frozen=True)
class Recommendation:
    """The parametric law's allocation for a budget (C = 6·N·D)."""

    n_params_nonemb: float
    tokens: float
    expected_loss: float
    extrapolated: bool  # the budget lies beyond every measured budget


@dataclass(frozen=True)
class BestSchedule:
    budget_flops: float  # the budget asked about
    max_bytes: float | None
    model: str
    schedule: dict[str, object]  # the winning trial's schedule, with its trained budget
    trained_budget_flops: float
    experiment: str
    trial_id: str
    sparsity: float  # the compression that wins (the grid may beat the trial's own target)
    quant_bits: int
    one_shot: bool  # pruned beyond what it was trained to
    val_loss_compressed: float
    compressed_bytes: int
    frontier_loss: float | None  # L(C) of the envelope law at the budget
    frontier_interval: tuple[float, float] | None
    recommendation: Recommendation | None
    n_candidates: int

    def to_dict(self) -> dict[str, object]:
        out = dict(vars(self))
        out["recommendation"] = vars(self.recommendation) if self.recommendation else None
        return out


def best_schedule(results: Results, budget_flops: float, max_bytes: float | None = None,
                  model: str | None = None,
                  options: FitOptions = FitOptions(bootstrap=DEFAULT_QUERY_BOOTSTRAP),
                  info: FrontierInfo | None = None) -> BestSchedule:
    """``info``: the family's frontier when the caller has it already (fitting it is the
    slow part of the query), else it is fitted here."""
    budget_flops = validate_budget(budget_flops)
    if max_bytes is not None and not (max_bytes > 0 and math.isfinite(max_bytes)):
        raise ValueError(f"The value of `max_bytes` is {max_bytes}, but must be > 0.")
    if info is None:
        info = frontier(results.for_model(model), model, options=options)
    done = info.completed[info.completed["budget_flops"] <= budget_flops]
    if done.empty:
        low = info.completed["budget_flops"].min() if len(info.completed) else None
        raise ResultsError(
            f"No completed trial has a budget <= {budget_flops:.3g} FLOPs"
            + (f" (the smallest is {low:.3g})" if low is not None else "")
            + "; ask about a larger budget or run a search at this one."
        )
    keys = ["experiment", "trial_id"]
    own = done.assign(one_shot=False)[keys + ["sparsity", "quant_bits", "val_loss_compressed",
                                             "compressed_bytes", "one_shot"]]
    grid = results.grid.merge(done[keys], on=keys)[own.columns]
    pool = pd.concat([own, grid], ignore_index=True)
    if max_bytes is not None:
        pool = pool[pool["compressed_bytes"] <= max_bytes]
    if pool.empty:
        smallest = pd.concat([own, grid])["compressed_bytes"].min()
        raise ResultsError(
            f"No completed trial within {budget_flops:.3g} FLOPs fits in {max_bytes / 1e6:.3g} "
            f"MB (the smallest is {smallest / 1e6:.3g} MB); raise --max-mb or search with it."
        )
    win = pool.loc[pool["val_loss_compressed"].idxmin()]
    trial = done.set_index(keys).loc[(win["experiment"], win["trial_id"])]
    schedule = {f.name: _plain(trial[f.name]) for f in schedule_fields()}
    return BestSchedule(
        budget_flops=budget_flops, max_bytes=max_bytes, model=info.model, schedule=schedule,
        trained_budget_flops=float(trial["budget_flops"]), experiment=str(win["experiment"]),
        trial_id=str(win["trial_id"]), sparsity=float(win["sparsity"]),
        quant_bits=int(win["quant_bits"]), one_shot=bool(win["one_shot"]),
        val_loss_compressed=float(win["val_loss_compressed"]),
        compressed_bytes=int(win["compressed_bytes"]),
        frontier_loss=float(info.compute_fit.loss(budget_flops)) if info.compute_fit else None,
        frontier_interval=info.compute_fit.loss_interval(budget_flops)
        if info.compute_fit else None,
        recommendation=_recommend(info, budget_flops), n_candidates=len(pool),
    )


def _recommend(info: FrontierInfo, budget_flops: float) -> Recommendation | None:
    if info.scaling_fit is None:
        return None
    n_opt, d_opt, loss = info.scaling_fit.optimal_allocation(budget_flops)
    beyond = budget_flops > info.completed["budget_flops"].max()
    return Recommendation(n_opt, d_opt, loss, bool(beyond))


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value
