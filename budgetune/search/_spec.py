"""What a search is: its settings as one frozen spec (no Ray here), validated when made.

The command line maps onto ``SearchSpec`` flag by flag; ``search.json`` in the search's folder
holds it, and ``--resume`` reads it back.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from budgetune.flops import flops_per_step
from budgetune.results import DEFAULT_KEEP_MODELS, TABLES
from budgetune.search._trainable import asha_rungs
from budgetune.spaces import (
    LR_SCHEDULES,
    Schedule,
    Space,
    corner_values,
    load_space,
    validate_budget,
)
from budgetune.spaces._space import replace_dims

DEFAULT_BUDGETS = (2e11, 6e11, 1.8e12)  # the embedded demo: three budgets 3× apart
# The embedded default (the `default` space) repeats its winner per budget with 2 more seeds:
# its whole run (one WSD experiment of 18 trials, then the repeats) measured 7.5 min on 2 cores
# (448.7 s, BENCHMARKS.md), within its 8 minutes. Other spaces do not unless asked: one repeat
# triples the cost of a budget's winner.
DEFAULT_REPEATS = 0
EMBEDDED_REPEATS = 1


def default_repeats(space: str) -> int:
    """``--repeats`` when not given: EMBEDDED_REPEATS for the `default` space, else 0."""
    return EMBEDDED_REPEATS if space == "default" else DEFAULT_REPEATS


SAMPLES_PER_BUDGET = 6  # default trials per budget (under wsd: × budgets, in one experiment)
REPEAT_SEEDS = 2  # more seeds per repeated recipe: 3 in all with the search's own
MIN_STEPS = 10  # what plan_steps asks of every schedule by default
DEMO_STEPS_SPAN = 100  # default_budgets keeps the demo's budgets up to 100 × MIN_STEPS steps
DEFAULT_MAX_MB = 3.0  # --max-mb when not given, for every space but the embedded default's
EMBEDDED_MAX_MB = 0.4  # the `default` space's: its d_model 64 must be compressed to fit


@dataclass(frozen=True)
class SearchSpec:
    """Everything a search needs; the command line maps onto it flag by flag.

    ``lr_schedule="auto"``, ``num_samples=None`` and ``max_mb="auto"`` are resolved when the
    spec is made (from the budgets and the space) and kept resolved: ``dataclasses.replace``
    of another space or budgets keeps them as they were; give them again, or "auto"."""

    space: str = "default"
    budgets: tuple[float, ...] = DEFAULT_BUDGETS
    # Trials per experiment: per budget under cosine, in all under wsd. None: 6 per budget
    # (SAMPLES_PER_BUDGET; under wsd 6 × the number of budgets, in one experiment).
    num_samples: int | None = None
    # "auto": EMBEDDED_MAX_MB for the `default` space, else DEFAULT_MAX_MB (default_max_mb)
    max_mb: float | str | None = "auto"
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
    repeats: int = DEFAULT_REPEATS  # top recipes per budget retrained with 2 more seeds
    # cosine: one Tune experiment per budget, cosine trials. wsd: one experiment for all
    # budgets, WSD trials planned for the largest that branch a cooldown at every budget
    # point (the budgets and ASHA's rungs), so ASHA decides on annealed losses. auto: wsd for
    # several budgets, cosine for one (resolved when the spec is made; search.json keeps it).
    lr_schedule: str = "auto"
    # the final models of each budget point of the best K schedules per budget are kept
    # (RESULTS/NAME/models; ``budgetune export`` reads them); 0 keeps none
    keep_models: int = DEFAULT_KEEP_MODELS
    # what the trials train on (trainables/_data.py): "builtin", "python", a folder of
    # train.bin/val.bin/tokenizer.json, text files, hf:NAME. The search resolves it before its
    # first trial (`python` becomes "python:DIGEST", a path absolute) and search.json keeps
    # that, so --resume and export read the same tokens.
    corpus: str = "builtin"

    def __post_init__(self) -> None:
        if self.lr_schedule not in (*LR_SCHEDULES, "auto"):
            raise ValueError(f"The value of `lr_schedule` is {self.lr_schedule!r}, but must be "
                             f"one of {[*LR_SCHEDULES, 'auto']}.")
        if self.lr_schedule == "auto":
            object.__setattr__(self, "lr_schedule", auto_lr_schedule(self.budgets))
        if self.max_mb == "auto":
            object.__setattr__(self, "max_mb", default_max_mb(self.space))
        if isinstance(self.max_mb, str) or isinstance(self.num_samples, str):
            raise ValueError(f"The values of `max_mb` and `num_samples` are {self.max_mb!r} and "
                             f"{self.num_samples!r}, but must be numbers (max_mb may be "
                             "'auto' or None).")
        if self.num_samples is None:
            per_experiment = len(self.budgets) if self.lr_schedule == "wsd" else 1
            object.__setattr__(self, "num_samples", SAMPLES_PER_BUDGET * per_experiment)
        self.load_space()  # a bad space fails here, before Ray starts
        for b in self.budgets:
            validate_budget(b)
        names = [f"budget-{b:.3g}" for b in self.budgets]
        if len(set(names)) < len(names):
            given = ", ".join(f"{b:g}" for b in self.budgets)
            raise ValueError(f"The value of `budgets` is [{given}], but must be distinct at 3 "
                             "significant digits (each gets its own Tune experiment, or WSD "
                             "budget point); give each budget once.")
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
            ("repeats", self.repeats, self.repeats >= 0, ">= 0"),
            ("keep_models", self.keep_models, self.keep_models >= 0, ">= 0"),
            ("name", self.name, bool(self.name) and "/" not in self.name and
             not self.name.startswith("."), "a plain folder name"),
            # a search folder named like a table makes its parent read as one search
            ("name", self.name, self.name not in TABLES,
             f"none of the tables' names {list(TABLES)}"),
        ]
        for name, value, ok, must in checks:
            if not ok:
                raise ValueError(f"The value of `{name}` is {value!r}, but must be {must}.")
        self._check_budgets_fit()

    def _check_budgets_fit(self) -> None:
        """Every schedule the space allows must get the trainer's minimum steps."""
        from budgetune.flops import plan_steps

        _, largest = extreme_schedules(self.load_space())
        smallest = min(self.points()) if self.lr_schedule == "wsd" else min(self.budgets)
        what = ("smallest budget point (a budget, or ASHA's first rung)"
                if smallest < min(self.budgets) else "smallest budget")
        try:
            plan_steps(largest, smallest)
        except ValueError as e:
            raise ValueError(f"The {what} is too small for the largest schedule of "
                             f"space {self.space!r} (d_model {largest.d_model}, n_layers "
                             f"{largest.n_layers}): {e}") from None

    @property
    def max_bytes(self) -> float | None:
        return None if self.max_mb is None else self.max_mb * 1e6

    def load_space(self) -> Space:
        """The space, every schedule of it trained with this search's ``lr_schedule``."""
        space = load_space(self.space)
        if "lr_schedule" in space.dims:
            raise ValueError(f"The space {self.space!r} sets `lr_schedule`, which a search sets "
                             "for all its trials; remove it and pass --lr-schedule cosine|wsd.")
        return replace_dims(space, lr_schedule=self.lr_schedule)

    def experiment(self, budget: float) -> str:
        """The Tune experiment of ``budget``: its own under cosine, the one under WSD."""
        if self.lr_schedule == "wsd":
            return f"wsd-{max(self.budgets):.3g}"
        return f"budget-{budget:.3g}"

    def grace_period(self, budget: float) -> float:
        """ASHA's grace period for an experiment of max_t = ``budget``: under WSD with several
        budgets the smallest (so the first rung is a budget, and with budgets η× apart every
        rung is one), else ``grace_fraction`` × budget."""
        if self.lr_schedule == "wsd" and len(self.budgets) > 1:
            return min(self.budgets)
        return self.grace_fraction * budget

    def points(self) -> list[float]:
        """WSD: the budget points of the one experiment: every budget, and ASHA's rungs (those
        between the budgets are extra points, valid evidence too)."""
        largest = max(self.budgets)
        rungs = ([] if self.scheduler == "fifo" else
                 asha_rungs(largest, self.grace_period(largest), self.reduction_factor))
        return sorted(set(self.budgets) | set(rungs))

    def vocab_sizes(self) -> list[int]:
        """The vocabularies the space's trials may ask of the corpus: its choices (or fixed
        value) of ``vocab_size``; a range's inner values are built by the first trial."""
        values = corner_values(self.load_space()).get("vocab_size", [Schedule().vocab_size])
        return sorted({int(v) for v in values})

    def models(self) -> list[str]:
        """The model families the space's trials train (``model``'s values)."""
        values = corner_values(self.load_space()).get("model", [Schedule().model])
        return sorted({str(v) for v in values})

    def folder(self) -> Path:
        return Path(self.results) / self.name

    def models_folder(self) -> Path:
        """Where the search keeps its models (``keep_models``)."""
        from budgetune.results import models_folder

        return models_folder(self.folder())

    def to_dict(self) -> dict:
        return asdict(self)


def default_max_mb(space: str) -> float:
    """``--max-mb`` when not given: EMBEDDED_MAX_MB for the `default` space, else
    DEFAULT_MAX_MB."""
    return EMBEDDED_MAX_MB if space == "default" else DEFAULT_MAX_MB


def auto_lr_schedule(budgets: tuple[float, ...]) -> str:
    """``--lr-schedule auto``: one WSD experiment for several budgets (every budget a point of
    each trial's one main line), cosine for one budget (the same recipe, no main line)."""
    return "wsd" if len(set(budgets)) > 1 else "cosine"


def default_budgets(space: str) -> tuple[float, ...]:
    """The embedded demo's budgets when they give the space's dearest schedule between
    MIN_STEPS and 100 × MIN_STEPS steps, else three budgets 3× apart from the smallest that
    gives it MIN_STEPS (1 significant digit, rounded up): `--space paper` without --budget plans
    2e13, 6e13 and 1.8e14, `--space tiny` (whose demo trials would take 16,000 steps) 2e8, 6e8
    and 1.8e9."""
    _, dearest = extreme_schedules(load_space(space))
    need = MIN_STEPS * flops_per_step(dearest)
    if need <= min(DEFAULT_BUDGETS) <= DEMO_STEPS_SPAN * need:
        return DEFAULT_BUDGETS
    unit = 10 ** math.floor(math.log10(need))
    low = math.ceil(need * (1 + 1e-9) / unit) * unit
    return (low, 3 * low, 9 * low)


# The fields a step's FLOPs depend on (budgetune.flops), and n_heads, which decides which
# widths are valid; the other fields change what a step costs not at all.
_COST_FIELDS = ("model", "d_model", "n_layers", "n_heads", "d_ff", "seq_len", "batch_size",
                "vocab_size")


def extreme_schedules(space: Space) -> tuple[Schedule, Schedule]:
    """The space's cheapest and dearest schedule per step, over its real corners: every value
    of every choice and both ends of every range of the fields a step's cost depends on (the
    other fields at a valid corner; share_unit only varied when share_fraction > 0)."""
    options = corner_values(space)
    cost = [k for k in options if k in _COST_FIELDS]
    sharing = [(f, u) for f in options.get("share_fraction", [0.0])
               for u in (options.get("share_unit", [1]) if f else [1])]
    rest = {k: v[0] for k, v in options.items()
            if k not in _COST_FIELDS and k not in ("share_fraction", "share_unit")}
    cheapest = dearest = None
    for combo in itertools.product(*(options[k] for k in cost)):
        values = {**rest, **dict(zip(cost, combo))}
        schedule = _first_valid(values, sharing)
        if schedule is None:
            continue
        if cheapest is None or flops_per_step(schedule) < flops_per_step(cheapest):
            cheapest = schedule
        if dearest is None or flops_per_step(schedule) > flops_per_step(dearest):
            dearest = schedule
    if cheapest is None:
        raise ValueError(f"The space {space.name!r} allows no valid schedule at its corners; "
                         "check that d_model is divisible by n_heads and share_unit divides "
                         "n_layers.")
    return cheapest, dearest


def _first_valid(values: dict, sharing: list[tuple]) -> Schedule | None:
    for fraction, unit in sharing:
        try:
            return Schedule(**values, share_fraction=fraction, share_unit=unit)
        except (ValueError, TypeError):
            continue
    return None
