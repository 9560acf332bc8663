"""Compute-optimal frontiers (Hoffmann et al. 2022's three approaches) from a results table.

The evidence is the budget point (``_candidates.budget_points``); every other report is a curve,
drawn in plots and never fitted (DESIGN.md, evidence rules).

1. The envelope: at each measured budget, the lowest mean loss of a recipe there
   (``pick(...).lowest``: seeds pooled, compressed to fit the size limit when there is one; not
   the smaller recipe ``pick`` may prefer within noise of it, which would bend the frontier
   up), as a running minimum over budgets, and L(C) = E + A·C^(−α) fitted to it. With a size
   limit it is the frontier of what can be deployed under it.
2. IsoFLOP profiles: at each budget, the *uncompressed* loss (``val_loss``) of the best recipe
   per model size N (seeds pooled), against ln N, with a parabola whose vertex is N_opt.
3. The parametric law L(N, D) = E + A/N^α + B/D^β on the same best-per-N points of every
   budget: one N per model, uncompressed; compression has its own frontier (``size_quality``).

IsoFLOP and L(N, D) fit dense-trained points only (``prune_sparsity == 0``): a sparse-trained
model is pruned during training, so its uncompressed ``val_loss`` is the sparse model's, while
its N is the dense count. Points left out are counted in ``FrontierInfo.notes``.

A fit is offered as a number only when it rests on >= 3 measured budgets and converged inside
its bounds; otherwise ``compute_reason``/``scaling_reason`` say why, and callers print that.
Everything here computes result objects; ``plots`` draws them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from budgetune.analysis._candidates import (
    TRAINING_FIELDS,
    budget_points,
    dense_points,
    pick,
    rank_recipes,
)
from budgetune.analysis._fit import (
    ComputeLawFit,
    FitError,
    FitOptions,
    ScalingLawFit,
    fit_compute_law,
    fit_scaling_law,
)
from budgetune.analysis._load import Results
from budgetune.results import ResultsError

MIN_BUDGETS = 3  # a law of compute fitted to fewer measured budgets is a curve through points
E_FLOOR = 0.01  # E below this fraction of the lowest loss: the fit ran E down to its bound


@dataclass(frozen=True)
class Envelope:
    flops: np.ndarray  # (k,) measured budgets where the envelope steps down  # FLOPs
    loss: np.ndarray  # (k,) the lowest recipe mean loss at or below that budget  # nats


@dataclass(frozen=True)
class IsoFlopProfile:
    budget_flops: float
    n: np.ndarray  # non-embedding parameters of each size measured at this budget
    loss: np.ndarray  # the best recipe's uncompressed val_loss at that size (seeds pooled)
    coeffs: tuple[float, float, float] | None  # loss ≈ c2·x² + c1·x + c0, x = ln N
    n_opt: float | None  # the vertex, when the parabola opens upward inside the data
    status: str  # "ok", "too_few_sizes", "no_minimum" or "vertex_outside_data"


@dataclass(frozen=True)
class FrontierInfo:
    model: str
    max_bytes: float | None  # the envelope's size limit (L(N, D) is uncompressed: none)
    envelope: Envelope
    compute_fit: ComputeLawFit | None
    compute_reason: str | None  # why L(C) is not to be quoted as a number; None when it is
    scaling_fit: ScalingLawFit | None
    scaling_reason: str | None  # the same for L(N, D)
    isoflops: list[IsoFlopProfile]
    fitted: pd.DataFrame  # L(N, D)'s points: budget_flops, N, D, val_loss (best per N)
    points: pd.DataFrame  # every budget point of the family (drawn)
    curves: pd.DataFrame  # every other report: drawn, never fitted or offered
    # The pick (winner) at each measured budget: budget_flops, train_flops, loss_mean, ...,
    # and lowest_loss (the lowest mean there, which the envelope follows)
    best: pd.DataFrame
    measured_budgets: tuple[float, ...]  # distinct budgets with a budget point, ascending
    notes: tuple[str, ...]

    @property
    def largest_budget(self) -> float:
        return self.measured_budgets[-1]


def envelope(flops: np.ndarray, loss: np.ndarray) -> Envelope:
    """Running minimum of loss over increasing compute, kept where it improves."""
    if len(flops) == 0:  # no budget point yet (every trial stopped early, or none finished)
        return Envelope(np.empty(0), np.empty(0))
    order = np.argsort(flops, kind="stable")
    compute, best = np.asarray(flops)[order], np.minimum.accumulate(np.asarray(loss)[order])
    improves = np.r_[True, best[1:] < best[:-1]]
    return Envelope(compute[improves], best[improves])


def isoflop_profile(budget: float, n: np.ndarray, loss: np.ndarray) -> IsoFlopProfile:
    """Fit a parabola in ln N; its vertex is the budget's compute-optimal size."""
    if len(np.unique(n)) < 3:
        return IsoFlopProfile(budget, n, loss, None, None, "too_few_sizes")
    c2, c1, c0 = np.polyfit(np.log(n), loss, 2)
    if c2 <= 0:
        return IsoFlopProfile(budget, n, loss, (c2, c1, c0), None, "no_minimum")
    x_opt = -c1 / (2 * c2)
    inside = np.log(n.min()) <= x_opt <= np.log(n.max())
    return IsoFlopProfile(budget, n, loss, (c2, c1, c0), float(np.exp(x_opt)),
                          "ok" if inside else "vertex_outside_data")


def best_per_size(points: pd.DataFrame) -> pd.DataFrame:
    """Per (budget, N): the dense-trained recipe of lowest uncompressed loss, seeds pooled.

    Sparse-trained points (``prune_sparsity > 0``) are left out (``dense_points``).
    Columns ``budget_flops``, ``N``, ``D`` (tokens), ``val_loss`` (mean over seeds)."""
    points = dense_points(points)
    recipes = (points.groupby(["budget_flops", *TRAINING_FIELDS], dropna=False)
               .agg(N=("n_params_nonemb", "mean"), D=("tokens", "mean"),
                    val_loss=("val_loss", "mean")).reset_index())
    best = recipes.loc[recipes.groupby(["budget_flops", "N"])["val_loss"].idxmin()]
    return best[["budget_flops", "N", "D", "val_loss"]].sort_values(
        ["budget_flops", "N"]).reset_index(drop=True)


def fit_reason(fit, n_budgets: int, what: str, lowest_loss: float,
               n_params: int | None = None) -> str | None:
    """Why a fit is not to be quoted as a number (None when it may be): it rests on fewer
    than ``MIN_BUDGETS`` budgets, has no more points than parameters (an exact curve through
    them, with a zero-width bootstrap interval), or stopped at a bound. ``n_params``: the
    fit's parameter count (default 3 for L(C), 5 for L(N, D)).

    Besides the optimiser's own status, an irreducible loss E below 1% of the lowest loss
    measured counts as stopped at a bound: E → 0 is the log-space parameter e running down
    towards its bound while the gradient vanishes, so L-BFGS-B reports convergence, but no
    language model has a loss floor of zero nats."""
    if n_budgets < MIN_BUDGETS:
        return (f"{what} rests on {n_budgets} measured budget{'s' * (n_budgets != 1)}; it "
                f"needs >= {MIN_BUDGETS}: search more budgets")
    n_params = n_params or (3 if isinstance(fit, ComputeLawFit) else 5)
    if fit.n_points <= n_params:
        return (f"{what} passes exactly through its {fit.n_points} points ({n_params} "
                "parameters): nothing is left to judge it by, and its interval is empty; "
                "search more budgets")
    if fit.status == "hit_bound" or fit.E < E_FLOOR * lowest_loss:
        return (f"{what} stopped at a bound of its parameters (E = {fit.E:.3g}, α = "
                f"{fit.alpha:.3g}): not a fitted value; search more budgets")
    if fit.status != "converged":
        return f"{what} did not converge ({fit.status})"
    return None


def frontier(results: Results, model: str | None = None, max_bytes: float | None = None,
             options: FitOptions = FitOptions()) -> FrontierInfo:
    """All three frontiers for one model family; the envelope within ``max_bytes``."""
    results = results.for_model(model)
    model = model or results.models[0]
    points = budget_points(results)
    if points.empty:
        raise ResultsError("The results hold no budget point yet (no trial has trained its "
                           "whole budget); wait for one, or check the search's log.")
    budgets = tuple(sorted(float(b) for b in points["budget_flops"].unique()))
    ranked = rank_recipes(results)
    best_rows = []
    for b in budgets:
        try:
            p = pick(ranked, b, max_bytes)
        except ResultsError:
            continue  # nothing within the size limit at or below this budget
        best_rows.append({**p.winner, "budget_asked": b,
                          "lowest_loss": float(p.lowest["loss_mean"])})
    best = pd.DataFrame(best_rows)
    notes, compute_fit, scaling_fit = [], None, None
    if len(best):
        env = envelope(best["budget_asked"].to_numpy(), best["lowest_loss"].to_numpy())
    else:
        env = Envelope(np.array([]), np.array([]))
    if len(env.flops) < MIN_BUDGETS:  # one envelope point per budget: too few to fit
        compute_reason = fit_reason(None, len(env.flops), "the L(C) fit", math.nan)
        if len(env.flops) < len(budgets):
            compute_reason = compute_reason.replace(
                "measured budget", f"budget where the envelope improves (of {len(budgets)} "
                "measured)", 1)
    else:
        try:
            compute_fit = fit_compute_law(env.flops, env.loss, options)
            compute_reason = fit_reason(compute_fit, len(env.flops), "the L(C) fit",
                                        float(env.loss.min()))
        except FitError as e:
            compute_reason = f"no L(C) fit: {e}"
    fitted = best_per_size(points)
    n_sparse = len(points) - len(dense_points(points))
    if n_sparse:
        notes.append(f"{n_sparse} budget point{'s' * (n_sparse != 1)} of sparse-trained "
                     "recipes (prune_sparsity > 0) left out of the IsoFLOP and L(N, D) fits: "
                     "their val_loss is of the pruned model, not of N parameters")
    n_fit_budgets = fitted["budget_flops"].nunique()
    try:
        scaling_fit = fit_scaling_law(fitted["N"], fitted["D"], fitted["val_loss"], options)
        scaling_reason = fit_reason(scaling_fit, n_fit_budgets, "the L(N, D) fit",
                                    float(fitted["val_loss"].min()))
    except FitError as e:
        scaling_reason = f"no L(N, D) fit: {e}"
    notes += [r for r in (compute_reason, scaling_reason) if r]
    profiles = [isoflop_profile(b, g["N"].to_numpy(), g["val_loss"].to_numpy())
                for b, g in fitted.groupby("budget_flops")]
    curves = results.reports[~results.reports["point"].astype(bool)]
    return FrontierInfo(model, max_bytes, env, compute_fit, compute_reason, scaling_fit,
                        scaling_reason, profiles, fitted, points, curves, best, budgets,
                        tuple(notes))
