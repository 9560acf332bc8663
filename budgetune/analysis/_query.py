"""The query users come for: the best schedule for a budget, under a size limit.

The winner is ``_candidates.pick`` (the one definition of "best": budget points, seeds pooled,
the smallest deploy size among the recipes within noise of the lowest loss). Beside it, two
figures from fits, each labelled with what it rests on:

- the envelope law L(C) at the budget, under the same size limit, with its bootstrap interval;
- the parametric law's allocation (N, D, expected loss), with D planned by the trainer's own
  FLOPs per token for that N (``_allocate``), never 6·N;
- the compression-aware law's effective-size factors, and beyond the data under a size limit
  its prediction for the best compression cell (``_compression_query``).

A figure for a budget beyond the largest measured one is marked extrapolated, with the factor.
A fit that rests on fewer than three budgets, or stopped at a bound, gives no number: its value
is None and a reason says why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from budgetune.analysis._allocate import allocate
from budgetune.analysis._candidates import RECIPE_KEY, pick, plain, rank_recipes
from budgetune.analysis._compression_law import CompressionLaw, compression_law
from budgetune.analysis._compression_query import CompressionAnswer, compression_answer
from budgetune.analysis._fit import FitOptions
from budgetune.analysis._frontier import FrontierInfo, frontier
from budgetune.analysis._load import Results
from budgetune.spaces import schedule_fields, validate_budget

DEFAULT_QUERY_BOOTSTRAP = 100
_RECIPE_STATS = ["loss_mean", "loss_se", "loss_low", "loss_high", "n_seeds", "seeds",
                 "one_shot", "compressed_bytes", "search_id", "experiment", "trial_id"]


@dataclass(frozen=True)
class FrontierValue:
    """L(C) of the envelope law at the budget, within the size limit."""

    loss: float | None  # nats; None when the fit is not to be quoted (see reason)
    interval: tuple[float, float] | None  # 95% bootstrap interval of loss
    extrapolated: bool  # the budget lies beyond the largest measured budget
    factor: float  # budget / largest measured budget
    reason: str | None  # why there is no number; None when there is one


@dataclass(frozen=True)
class Recommendation:
    """The parametric law's allocation for the budget, costed by the trainer's FLOPs."""

    n_params_nonemb: int | None  # N of the recommended shape
    tokens: int | None  # D: the trainer's planned steps × tokens per step
    train_flops: float | None  # steps × flops_per_step: <= the budget, < one step short
    shape: dict[str, int] | None  # d_model, n_layers, n_heads, d_ff (the winner's family)
    expected_loss: float | None  # the law at (N, D), uncompressed  # nats
    extrapolated: bool
    factor: float
    reason: str | None  # why there is no allocation; None when there is one


@dataclass(frozen=True)
class BestSchedule:
    """The answer of ``best_schedule``; ``to_dict()`` is ``budgetune best --json``, a stable
    object (served as is over HTTP). Its fields:

    - ``budget_flops``: the budget asked about. ``max_bytes``: the size limit applied (null:
      none); ``size_limit``: how it was chosen, in words ("3 MB (the search's --max-mb)").
    - ``model``: the model family. ``schedule``: every ``Schedule`` field of the winning
      recipe (``quant_bits`` is the winning cell's, ``seed`` its best seed's);
      ``trained_budget_flops``: the budget it was trained for (<= ``budget_flops``);
      ``main_line_flops``: the budget its trial was planned for (a WSD point is the cooldown
      branched from that main line: ``budgetune train --main-line`` re-runs it exactly; for
      cosine the trained budget itself); ``share_fraction_effective``: the share of its
      steps trained with shared blocks (under WSD the switch sits on the main line).
    - ``sparsity``, ``quant_bits``, ``one_shot``, ``compressed_bytes``: the compression cell
      that wins (``one_shot``: pruned beyond what it was trained to, no fine-tuning).
    - ``val_loss_compressed``: the winner's mean loss over its seeds; ``loss_interval``: its
      95% interval [low, high]; ``loss_se``; ``n_seeds``, ``seeds``; ``basis``: "single seed"
      (the interval is the evaluation's alone) or "mean of k seeds". Where the table holds no
      standard error (a single seed evaluated by an older trainer) the interval's bounds and
      ``loss_se`` are null. Every non-finite number in the object is null.
    - ``search_id``, ``experiment``, ``trial_id``: where the winner's best seed lies.
    - ``within_noise``: every recipe within noise of the lowest mean (the winner included),
      each with its training fields, cell and loss statistics; ``lowest_loss``: the lowest
      mean; ``smaller_preferred``: the winner is a smaller recipe within noise of the lowest;
      ``n_candidates``: recipes within the budget and the size limit.
    - ``largest_measured_budget``: the largest budget with a budget point; ``extrapolated``:
      the budget lies beyond it; ``factor``: budget / that budget.
    - ``frontier``: {``loss``, ``interval``, ``extrapolated``, ``factor``, ``reason``}: the
      envelope law at the budget under the same limit; loss null with a reason when the fit
      rests on < 3 budgets or stopped at a bound.
    - ``recommendation``: {``n_params_nonemb``, ``tokens``, ``train_flops``, ``shape``,
      ``expected_loss``, ``extrapolated``, ``factor``, ``reason``}: the L(N, D) law's
      allocation, tokens planned with the trainer's FLOPs per token; nulls and a reason when
      the law cannot be quoted.
    - ``compression_law``: {``factors`` (per cell: ``quant_bits``, ``sparsity``, ``e`` the
      effective-size factor in L = E + A/(N·e)^α + B/D^β, its 95% bootstrap ``interval``,
      ``n_models``, ``at_bound``, ``reference``: the uncompressed cell, e = 1), ``alpha``,
      ``beta`` and their ``alpha_interval``, ``beta_interval``, ``n_models``,
      ``n_budgets``, ``n_cells``, ``reason`` (why the law is not quoted; factors null then),
      ``notes`` (what was left out), ``prediction`` and ``prediction_reason``}: beyond the
      largest measured budget under a size limit, ``prediction`` is the law's best cell and
      shape within the limit (``sparsity``, ``quant_bits``, ``e``, ``e_interval``,
      ``n_params_nonemb``, ``tokens``, ``train_flops``, ``shape``, ``compressed_bytes``,
      ``expected_loss``, ``extrapolated``, ``factor``), else null with the reason.
    """

    budget_flops: float
    max_bytes: float | None
    size_limit: str
    model: str
    schedule: dict[str, object]
    trained_budget_flops: float
    main_line_flops: float
    share_fraction_effective: float
    sparsity: float
    quant_bits: int
    one_shot: bool
    compressed_bytes: int
    val_loss_compressed: float
    loss_interval: tuple[float, float]
    loss_se: float
    n_seeds: int
    seeds: tuple[int, ...]
    basis: str
    search_id: str
    experiment: str
    trial_id: str
    within_noise: list[dict]
    lowest_loss: float
    smaller_preferred: bool
    n_candidates: int
    largest_measured_budget: float
    extrapolated: bool
    factor: float
    frontier: FrontierValue
    recommendation: Recommendation
    compression_law: CompressionAnswer

    def to_dict(self) -> dict[str, object]:
        """Plain JSON types; a figure that is not a finite number (no standard error was
        recorded) is null."""
        return json_safe(asdict(self))


def json_safe(value: object) -> object:
    """``value`` with every non-finite float as None (JSON has no NaN), tuples as lists."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def describe_limit(max_bytes: float | None, source: str | None = None) -> str:
    """The size limit in words, e.g. "3 MB (the search's --max-mb)" or "none"."""
    text = "none" if max_bytes is None else f"{max_bytes / 1e6:g} MB"
    return f"{text} ({source})" if source else text


def best_schedule(results: Results, budget_flops: float, max_bytes: float | None = None,
                  model: str | None = None,
                  options: FitOptions = FitOptions(bootstrap=DEFAULT_QUERY_BOOTSTRAP),
                  info: FrontierInfo | None = None, limit_source: str | None = None,
                  law: CompressionLaw | None = None) -> BestSchedule:
    """``info``: the family's frontier under the same ``max_bytes`` when the caller has it
    (fitting it is the slow part of the query), else it is fitted here; ``law``: the family's
    compression-aware law likewise (it does not depend on the size limit)."""
    budget_flops = validate_budget(budget_flops)
    if max_bytes is not None and not (max_bytes > 0 and math.isfinite(max_bytes)):
        raise ValueError(f"The value of `max_bytes` is {max_bytes}, but must be > 0.")
    results = results.for_model(model)
    if info is None or info.max_bytes != max_bytes:
        info = frontier(results, model, max_bytes, options=options)
    if law is None:
        law = compression_law(results, options)
    p = pick(rank_recipes(results), budget_flops, max_bytes)
    w = p.winner
    schedule = {f.name: w.get(f.name) for f in schedule_fields()}
    schedule["seed"] = int(w["best_seed"])  # the seed of trial_id
    factor = budget_flops / info.largest_budget
    beyond = factor > 1
    return BestSchedule(
        budget_flops=budget_flops, max_bytes=max_bytes,
        size_limit=describe_limit(max_bytes, limit_source), model=info.model,
        schedule=schedule, trained_budget_flops=float(w["budget_flops"]),
        main_line_flops=float(w["main_line_flops"]),
        share_fraction_effective=float(w["share_fraction_effective"]),
        sparsity=float(w["sparsity"]), quant_bits=int(w["quant_bits"]),
        one_shot=bool(w["one_shot"]), compressed_bytes=int(w["compressed_bytes"]),
        val_loss_compressed=float(w["loss_mean"]),
        loss_interval=(float(w["loss_low"]), float(w["loss_high"])),
        loss_se=float(w["loss_se"]), n_seeds=int(w["n_seeds"]),
        seeds=tuple(int(s) for s in w["seeds"]), basis=p.basis,
        search_id=str(w["search_id"]), experiment=str(w["experiment"]),
        trial_id=str(w["trial_id"]),
        within_noise=[{k: plain(r[k]) for k in RECIPE_KEY + _RECIPE_STATS}
                      for r in p.within_noise],
        lowest_loss=float(p.lowest["loss_mean"]), smaller_preferred=p.smaller_preferred,
        n_candidates=p.n_candidates, largest_measured_budget=info.largest_budget,
        extrapolated=beyond, factor=factor,
        frontier=_frontier_value(info, budget_flops, factor),
        recommendation=_recommend(info, budget_flops, factor, w),
        compression_law=compression_answer(law, budget_flops, factor, max_bytes, w))


def _frontier_value(info: FrontierInfo, budget: float, factor: float) -> FrontierValue:
    fit, reason = info.compute_fit, info.compute_reason
    if fit is None or reason is not None:
        return FrontierValue(None, None, factor > 1, factor, reason or "no L(C) fit")
    return FrontierValue(float(fit.loss(budget)), fit.loss_interval(budget), factor > 1,
                         factor, None)


def _recommend(info: FrontierInfo, budget: float, factor: float,
               winner: dict) -> Recommendation:
    fit, reason = info.scaling_fit, info.scaling_reason
    if fit is not None and reason is None:
        try:
            a = allocate(fit, budget, winner)
        except ValueError as e:  # the budget buys no step of the recommended shape
            reason = f"no allocation: {e}"
        else:
            s = a.schedule
            shape = {"d_model": s.d_model, "n_layers": s.n_layers, "n_heads": s.n_heads,
                     "d_ff": s.d_ff}
            return Recommendation(a.n_params_nonemb, a.tokens, a.train_flops, shape,
                                  a.expected_loss, factor > 1, factor, None)
    return Recommendation(None, None, None, None, None, factor > 1, factor,
                          reason or "no L(N, D) fit")


def extrapolation_text(factor: float, largest_budget: float) -> str:
    """"EXTRAPOLATED 3,333× beyond 3e11, ..." for a budget past the data, else "within"."""
    largest = f"{largest_budget:.3g}".replace("e+", "e")
    if factor <= 1:
        return f"within the measured budgets (the largest is {largest})"
    times = f"{factor:,.0f}" if factor >= 10 else f"{factor:.2g}"
    return f"EXTRAPOLATED {times}× beyond {largest}, the largest measured budget"
