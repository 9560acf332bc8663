"""``--dry-run``: what a search would do, estimated without starting anything.

Expected FLOPs under ASHA: with rungs at r_k and η, about a fraction 1/η^k of trials pass rung
k, so a budget's experiment costs roughly N·(r_1 + Σ_k η^-k·(r_{k+1} − r_k)) training FLOPs
(the last "rung" being the budget). Under WSD the one experiment's rungs are its budget points
below the largest, and each point a trial reaches adds its cooldown branch (cooldown_fraction
of that point's budget). Wall time divides that by the measured speed of this
machine (a 1024² fp32 matmul, times a model FLOPs utilization of 0.5) times the trials run at
once, plus about 2 s per trial to start its actor.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from budgetune.search._spec import REPEAT_SEEDS, SearchSpec, extreme_schedules
from budgetune.search._trainable import asha_rungs

# Measured in the embedded default search (2 cores): 24.6 GFLOP/s per trial against a 66 GFLOP/s
# one-thread matmul. Small models spend much of a step on the vocabulary head and the loss.
ASSUMED_MFU = 0.37
ACTOR_START_S = 2.0


@dataclass(frozen=True)
class BudgetPlan:
    budget: float
    trials: int
    flops_per_step: tuple[float, float]  # (min, max) over the space
    steps: tuple[int, int]  # planned steps per trial (min, max)
    rungs: tuple[float, ...]
    expected_flops: float  # with early stopping, repeats included
    worst_flops: float  # every trial to its full budget, repeats included
    repeat_trials: int = 0  # --repeats: recipes × more seeds, each a whole budget


@dataclass(frozen=True)
class SearchPlan:
    spec: SearchSpec
    budgets: list[BudgetPlan]
    cpus: int
    concurrent: int
    flops_per_s: float  # per trial, assumed
    wall_s: float  # if ASHA stops trials as its rungs intend
    wall_worst_s: float  # if every trial trains its whole budget


def _expected_fraction(rungs: list[float], budget: float, eta: float) -> float:
    points = [*rungs, budget]
    cost, survive = points[0], 1.0
    for lo, hi in zip(points, points[1:]):
        survive /= eta
        cost += survive * (hi - lo)
    return cost / budget


def _matmul_flops_per_s(threads: int, seconds: float = 0.3) -> float:
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(1024, 1024)
    a @ a
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ a
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - t0)


def plan_search(spec: SearchSpec) -> SearchPlan:
    from budgetune.trainables import flops_per_step

    space = spec.load_space()
    per_step = [flops_per_step(s) for s in extreme_schedules(space)]
    n_grid = len(space.grid()) if spec.searcher == "grid" else 0
    cpus = os.cpu_count() or 1
    concurrent = spec.max_concurrent or max(1, cpus // spec.cpus_per_trial)
    # A trial's threads, but never more than this machine has: --cpus-per-trial=100000 made
    # OpenMP fail to start its threads and abort the process.
    rate = _matmul_flops_per_s(min(spec.cpus_per_trial, cpus)) * ASSUMED_MFU
    plans, wall, worst = [], 0.0, 0.0
    wsd = spec.lr_schedule == "wsd"
    cooldown = _cooldown_fraction(space)
    repeats = spec.repeats * REPEAT_SEEDS
    for budget in [max(spec.budgets)] if wsd else spec.budgets:
        trials = n_grid or spec.num_samples
        if wsd:
            rungs = [p for p in spec.points() if p < budget]
        else:
            rungs = asha_rungs(budget, spec.grace_period(budget), spec.reduction_factor) \
                if spec.scheduler == "asha" else []
        eta = spec.reduction_factor if spec.scheduler == "asha" else 1.0
        frac = _expected_fraction(rungs, budget, eta) if rungs else 1.0
        branches = sum(cooldown * r * eta**-k for k, r in enumerate(rungs)) / budget \
            if wsd else 0.0
        branches_worst = cooldown * sum(rungs) / budget if wsd else 0.0
        repeat_flops = repeats * (sum(spec.budgets) if wsd else budget)
        plans.append(BudgetPlan(budget, trials, (min(per_step), max(per_step)),
                                (int(budget // max(per_step)), int(budget // min(per_step))),
                                tuple(rungs), trials * (frac + branches) * budget + repeat_flops,
                                trials * (1 + branches_worst) * budget + repeat_flops,
                                repeats))
        start = trials * ACTOR_START_S / min(concurrent, trials)
        wall += trials * budget * (frac + branches) / (rate * min(concurrent, trials)) + start
        worst += trials * budget * (1 + branches_worst) / (rate * min(concurrent, trials)) \
            + start
        if repeats:
            at_once = min(concurrent, repeats)
            n_repeats = repeats * (len(spec.budgets) if wsd else 1)
            extra = repeat_flops / (rate * at_once) + n_repeats * ACTOR_START_S / at_once
            wall, worst = wall + extra, worst + extra
    return SearchPlan(spec, plans, cpus, concurrent, rate, wall, worst)


def _cooldown_fraction(space) -> float:
    """The space's largest cooldown fraction (Schedule's default where it sets none)."""
    from budgetune.spaces import Schedule, corner_values

    return max(corner_values(space).get("cooldown_fraction", [Schedule().cooldown_fraction]))


def format_plan(plan: SearchPlan) -> str:
    s = plan.spec
    lines = [f"dry run of search {s.name!r} (space {s.space!r}, searcher {s.searcher}, "
             f"scheduler {s.scheduler}, η={s.reduction_factor:g}, "
             f"{_grace_text(s)}, lr schedule {s.lr_schedule}, size limit "
             f"{f'{s.max_mb:g} MB' if s.max_mb else 'none'}): nothing started",
             f"{'budget':>9} {'trials':>6} {'FLOPs/step':>19} {'steps/trial':>13} "
             f"{'points below' if s.lr_schedule == 'wsd' else 'rungs':>22} "
             f"{'expected FLOPs':>14} {'worst':>9}"]
    for b in plan.budgets:
        rungs = ", ".join(f"{r:.2g}" for r in b.rungs) or "-"
        lines.append(f"{b.budget:>9.3g} {b.trials:>6} {b.flops_per_step[0]:>9.3g}-"
                     f"{b.flops_per_step[1]:<9.3g} {b.steps[0]:>6}-{b.steps[1]:<6} "
                     f"{rungs:>22} {b.expected_flops:>14.3g} {b.worst_flops:>9.3g}")
    if s.lr_schedule == "wsd":
        lines.append(f"wsd: one experiment, trials planned for {max(s.budgets):.3g} FLOPs, a "
                     "cooldown branched at each point below it (included in the FLOPs)")
    if s.repeats:
        lines.append(f"repeats: the top {s.repeats} recipe(s) per budget retrained with "
                     f"{REPEAT_SEEDS} more seeds, {plan.budgets[0].repeat_trials} whole-budget "
                     "trial(s) per budget, included in the FLOPs and times below")
    total = sum(b.expected_flops for b in plan.budgets)
    cap = f", capped at {s.max_total_flops:.3g}" if s.max_total_flops else ""
    lines.append(f"expected {total:.3g} training FLOPs{cap}; {plan.wall_s / 60:.1f} to "
                 f"{plan.wall_worst_s / 60:.1f} min on {plan.cpus} CPUs here (ASHA stopping as "
                 f"intended .. no trial stopped; {plan.concurrent} trials at once, "
                 f"~{plan.flops_per_s / 1e9:.0f} GFLOP/s each)")
    return "\n".join(lines)


def _grace_text(s: SearchSpec) -> str:
    if s.lr_schedule == "wsd" and len(s.budgets) > 1:
        return f"grace={min(s.budgets):.3g} (the smallest budget)"
    return f"grace={s.grace_fraction:.3g}×budget"
