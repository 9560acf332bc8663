"""What a search is: its settings as one frozen spec (no Ray here), validated when made.

The command line maps onto ``SearchSpec`` flag by flag; ``search.json`` in the search's folder
holds it, and ``--resume`` reads it back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from budgetune.flops import flops_per_step
from budgetune.spaces import Range, Schedule, Space, load_space, validate_budget

DEFAULT_BUDGETS = (2e11, 6e11, 1.8e12)  # the embedded demo: three budgets 3× apart
DEFAULT_MAX_MB = 3.0  # the embedded demo's size limit: d_model 128 must be compressed to fit


@dataclass(frozen=True)
class SearchSpec:
    """Everything a search needs; the command line maps onto it flag by flag."""

    space: str = "default"
    budgets: tuple[float, ...] = DEFAULT_BUDGETS
    num_samples: int = 6  # trials per budget: the embedded demo's 3 × 6 take ~7 min on 2 cores
    max_mb: float | None = DEFAULT_MAX_MB
    max_total_flops: float | None = None  # search-wide cap on training FLOPs
    searcher: str = "tpe"  # tpe, random or grid
    scheduler: str = "asha"  # asha, or fifo (no early stopping: a baseline)
    reduction_factor: float = 3.0  # η
    grace_fraction: float = 1 / 9  # grace_period = grace_fraction × budget
    max_concurrent: int | None = None  # default: as many as the cluster's CPUs allow
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    address: str | None = None  # None starts a local Ray instance
    results: str = "results"
    name: str = "default"
    seed: int = 0
    eval_tokens: int = 8192
    max_failures: int = 3

    def __post_init__(self) -> None:
        load_space(self.space)  # a bad space fails here, before Ray starts
        for b in self.budgets:
            validate_budget(b)
        checks = [
            ("num_samples", self.num_samples, self.num_samples >= 1, ">= 1"),
            ("reduction_factor", self.reduction_factor, self.reduction_factor >= 2, ">= 2"),
            ("grace_fraction", self.grace_fraction, 0 < self.grace_fraction <= 1, "in (0, 1]"),
            ("cpus_per_trial", self.cpus_per_trial, self.cpus_per_trial >= 1, ">= 1"),
            ("gpus_per_trial", self.gpus_per_trial, self.gpus_per_trial >= 0, ">= 0"),
            ("searcher", self.searcher, self.searcher in ("tpe", "random", "grid"),
             "one of ['tpe', 'random', 'grid']"),
            ("scheduler", self.scheduler, self.scheduler in ("asha", "fifo"),
             "one of ['asha', 'fifo']"),
            ("max_mb", self.max_mb, self.max_mb is None or (self.max_mb > 0 and math.isfinite(
                self.max_mb)), "> 0"),
            ("max_total_flops", self.max_total_flops, self.max_total_flops is None or (
                self.max_total_flops > 0 and math.isfinite(self.max_total_flops)), "> 0"),
            ("max_concurrent", self.max_concurrent, self.max_concurrent is None
             or self.max_concurrent >= 1, ">= 1"),
            ("eval_tokens", self.eval_tokens, self.eval_tokens >= 1, ">= 1"),
            ("max_failures", self.max_failures, self.max_failures >= 0, ">= 0"),
            ("name", self.name, bool(self.name) and "/" not in self.name and
             not self.name.startswith("."), "a plain folder name"),
        ]
        for name, value, ok, must in checks:
            if not ok:
                raise ValueError(f"The value of `{name}` is {value!r}, but must be {must}.")
        self._check_budgets_fit()

    def _check_budgets_fit(self) -> None:
        """Every schedule the space allows must get the trainer's minimum steps."""
        from budgetune.flops import plan_steps

        largest = max(sample_schedules(self), key=flops_per_step)
        try:
            plan_steps(largest, min(self.budgets))
        except ValueError as e:
            raise ValueError(f"The smallest budget is too small for the largest schedule of "
                             f"space {self.space!r} (d_model {largest.d_model}, n_layers "
                             f"{largest.n_layers}): {e}") from None

    @property
    def max_bytes(self) -> float | None:
        return None if self.max_mb is None else self.max_mb * 1e6

    def load_space(self) -> Space:
        return load_space(self.space)

    def experiment(self, budget: float) -> str:
        return f"budget-{budget:.3g}"

    def folder(self) -> Path:
        return Path(self.results) / self.name

    def to_dict(self) -> dict:
        return asdict(self)


def sample_schedules(spec: SearchSpec) -> list[Schedule]:
    space = spec.load_space()
    if space.is_finite:
        return space.grid()
    fixed = {k: (d.low, d.high) if isinstance(d, Range) else d for k, d in space.dims.items()}
    return [Schedule(**{k: v[i] if isinstance(v, tuple) else v for k, v in fixed.items()})
            for i in (0, 1)]
