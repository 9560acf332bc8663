"""The search: one Tune experiment per budget, ASHA on the FLOPs axis, Optuna proposing.

For each budget, in order:

1. a ``Tuner`` over the function trainable, with ``ASHAScheduler(time_attr="train_flops",
   max_t=budget, grace_period, reduction_factor)`` (η = 3 and grace = budget/9 by default:
   rungs at 1/9 and 1/3 of the budget; trials report exactly there);
2. ``OptunaSearch`` with TPE (seeded, constant_liar) behind a ``ConcurrencyLimiter``, or
   Optuna's random sampler, or an exhaustive grid of a finite space;
3. ``ResultsCallback`` writing the results tables; a ``Stopper`` for the search-wide FLOPs cap;
   ``FailureConfig`` retrying a failed trial from its last checkpoint.

Tune's own state (searcher, scheduler, checkpoints) lives in ``RESULTS/NAME/tune``, which is
what ``--resume`` restores with ``Tuner.restore``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from budgetune.results import ResultsWriter, read_table
from budgetune.spaces import Space, load_space, validate_budget

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
        from budgetune.search._plan import sample_schedules
        from budgetune.trainables import plan_steps

        largest = max(sample_schedules(self), key=flops_per_step_of)
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


def flops_per_step_of(schedule) -> float:
    from budgetune.trainables import flops_per_step

    return flops_per_step(schedule)


@dataclass
class FlopsLedger:
    """Training FLOPs spent across the whole search (all budgets), for the cap."""

    cap: float | None
    spent_before: float = 0.0  # by experiments already finished or restored
    last: dict[str, float] = field(default_factory=dict)  # trial -> its latest train_flops

    @property
    def spent(self) -> float:
        return self.spent_before + sum(self.last.values())

    def reached(self) -> bool:
        return self.cap is not None and self.spent >= self.cap


def spent_in_table(spec: SearchSpec) -> dict[str, float]:
    """Training FLOPs per experiment already recorded in the trials table."""
    trials = read_table(spec.folder(), "trials")
    return trials.groupby("experiment")["train_flops"].sum().to_dict() if len(trials) else {}


def run_search(spec: SearchSpec, resume: bool = False, progress=print) -> list[str]:
    """Run (or resume) every budget's experiment; returns the experiment names."""
    from budgetune.search._ray import cluster_address, ray_session, secure_environment

    # Before Ray is first imported: it reads RAY_AUTH_MODE (and how to pick addresses) then.
    secure_environment(local=cluster_address(spec.address) is None)
    from budgetune.search._tuner import fit_experiment

    folder = spec.folder()
    tune_dir = folder / "tune"
    if not resume and tune_dir.exists() and any(tune_dir.iterdir()):
        raise ValueError(f"The search {str(folder)!r} exists already; pass --resume to continue "
                         "it, or give another --name.")
    if resume and not tune_dir.exists():
        raise ValueError(f"There is no search to resume at {str(folder)!r}; check --results "
                         "and --name.")
    writer = ResultsWriter(spec.results, spec.name)
    writer.lock()  # one driver per search folder, for the whole run
    try:
        with ray_session(spec.address) as resources:
            progress(f"budgetune search {spec.name!r}: space {spec.space!r}, budgets "
                     f"{', '.join(f'{b:.3g}' for b in spec.budgets)} FLOPs, "
                     f"{int(resources.get('CPU', 0))} CPUs, results in {folder}")
            ledger = FlopsLedger(spec.max_total_flops)
            names = []
            for budget in spec.budgets:
                name = spec.experiment(budget)
                already = spent_in_table(spec)
                ledger.spent_before = sum(v for k, v in already.items() if k != name)
                ledger.last = {}
                if ledger.reached():
                    progress(f"{name}: skipped, the FLOPs cap {spec.max_total_flops:.3g} is "
                             "spent")
                    continue
                fit_experiment(spec, budget, ledger, resources, resume, progress)
                names.append(name)
            return names
    finally:
        writer.unlock()
