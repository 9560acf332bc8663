"""The plan of a run, fixed before its first step: the learning rate at every step (cosine or
warmup-stable-decay), the steps that report, and a WSD trial's budget points.

WSD's main line does not depend on the budget (warmup over a count of steps, then the peak held),
so one run serves several budgets: a budget point is where a standalone WSD run for a smaller
budget would start its cooldown (``cooldown_start`` of that budget's planned steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from budgetune import flops as _flops
from budgetune.spaces import Schedule, validate_budget

FINAL_LR_RATIO = 0.1  # cosine decays to 10% of peak, as in Chinchilla


def cooldown_start(total_steps: int, s: Schedule) -> int:
    """WSD: the first step of the cooldown of a run of ``total_steps`` (at least one step)."""
    return total_steps - max(1, round(s.cooldown_fraction * total_steps))


def lr_at(step: int, total_steps: int, s: Schedule) -> float:
    """The learning rate of ``step`` in a run of ``total_steps``.

    cosine: linear warmup to ``s.lr``, then cosine decay to FINAL_LR_RATIO · lr at the last
    step. wsd: linear warmup over ``s.warmup_steps`` (a count: the main line is the same for
    every budget), ``s.lr`` held, then from ``cooldown_start`` the rate there times
    1 − √t (or 1 − t), t = (step − start) / cooldown steps, Hägele et al. 2024's shape."""
    if s.lr_schedule == "wsd":
        start = cooldown_start(total_steps, s)
        main = s.lr * min(1.0, (min(step, start) + 1) / max(1, s.warmup_steps))
        if step < start:
            return main
        t = (step - start) / (total_steps - start)
        return main * (1 - math.sqrt(t) if s.cooldown_shape == "1-sqrt" else 1 - t)
    warmup = max(1, round(s.warmup_fraction * total_steps))
    if step < warmup:
        return s.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - 1 - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return s.lr * (FINAL_LR_RATIO + (1 - FINAL_LR_RATIO) * cosine)


def report_steps(total_steps: int, flops_per_step: float, budget: float,
                 fractions: tuple[float, ...], n_reports: int) -> list[int]:
    even = tuple(k / n_reports for k in range(1, n_reports + 1)) if n_reports > 0 else ()
    steps = {total_steps}
    for frac in (*fractions, *even):
        target = frac * budget  # the first step whose train_flops reaches it, exactly
        step = math.ceil(target / flops_per_step)
        if (step - 1) * flops_per_step >= target:
            step -= 1
        steps.add(min(total_steps, max(1, step)))
    return sorted(steps)


@dataclass(frozen=True)
class BudgetPoint:
    """A WSD budget point of a trial: its budget, planned steps and cooldown's first step."""

    budget_flops: float
    steps: int
    start: int


def plan_points(s: Schedule, budget_flops: float, budgets: tuple[float, ...]
                ) -> list[BudgetPoint]:
    """The budget points of a trial of ``s`` for ``budget_flops`` below its budget (WSD
    only), in the order the main line reaches them; its own budget ends the run."""
    if budgets and s.lr_schedule != "wsd":
        raise ValueError("Budget points need `lr_schedule = wsd`: a cosine run anneals for "
                         "its own budget only.")
    points = {}
    for budget in budgets:
        budget = validate_budget(budget, "point")
        if budget > budget_flops:
            raise ValueError(f"The value of `point` is {budget:.4g} FLOPs, but must be <= "
                             f"the trial's budget ({budget_flops:.4g}).")
        if budget < budget_flops:
            steps = _flops.plan_steps(s, budget)
            points[budget] = BudgetPoint(budget, steps, cooldown_start(steps, s))
    return sorted(points.values(), key=lambda p: (p.start, p.budget_flops))
