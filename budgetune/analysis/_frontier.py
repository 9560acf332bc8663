"""Compute-optimal frontiers (Hoffmann et al. 2022's three approaches) from a results table.

1. The envelope: the lowest loss reached at or below each compute, over every report of the
   completed trials, and L(C) = E + A·C^(−α) fitted to it.
2. IsoFLOP profiles: at each training budget, final loss against log N with a parabola whose
   vertex is N_opt for that budget.
3. The parametric law L(N, D) = E + A/N^α + B/D^β over completed trials' final evaluations.

Everything here computes result objects; ``_plot`` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from budgetune.analysis._fit import (
    ComputeLawFit,
    FitError,
    FitOptions,
    ScalingLawFit,
    fit_compute_law,
    fit_scaling_law,
)
from budgetune.analysis._load import Results, completed_trials, early_stopped_reports


@dataclass(frozen=True)
class Envelope:
    flops: np.ndarray  # (k,) compute at which the envelope steps down  # FLOPs
    loss: np.ndarray  # (k,) lowest loss reached at or below that compute  # nats


@dataclass(frozen=True)
class IsoFlopProfile:
    budget_flops: float
    n: np.ndarray  # final non-embedding parameters of each completed trial at this budget
    loss: np.ndarray  # their final losses
    coeffs: tuple[float, float, float] | None  # loss ≈ c2·x² + c1·x + c0, x = ln N
    n_opt: float | None  # the vertex, when the parabola opens upward inside the data
    status: str  # "ok", "too_few_sizes", "no_minimum" or "vertex_outside_data"


@dataclass(frozen=True)
class FrontierInfo:
    model: str
    column: str  # the loss column the frontier is of
    envelope: Envelope
    compute_fit: ComputeLawFit | None
    scaling_fit: ScalingLawFit | None
    isoflops: list[IsoFlopProfile]
    completed: pd.DataFrame  # one row per completed trial (final report, N, D, C)
    early: pd.DataFrame  # reports of trials stopped early
    all_reports: pd.DataFrame  # reports of completed trials
    notes: tuple[str, ...]  # why a fit is missing, and similar


def envelope(flops: np.ndarray, loss: np.ndarray) -> Envelope:
    """Running minimum of loss over increasing compute, kept where it improves."""
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


def frontier(results: Results, model: str | None = None, column: str = "val_loss_compressed",
             options: FitOptions = FitOptions()) -> FrontierInfo:
    """All three frontiers for one model family."""
    results = results.for_model(model)
    model = model or results.models[0]
    completed = completed_trials(results)
    keys = completed[["experiment", "trial_id"]]
    reports = results.reports.merge(keys, on=["experiment", "trial_id"])
    env = envelope(reports["train_flops"].to_numpy(), reports[column].to_numpy())
    notes, compute_fit, scaling_fit = [], None, None
    try:
        compute_fit = fit_compute_law(env.flops, env.loss, options)
    except FitError as e:
        notes.append(f"no L(C) fit: {e}")
    try:
        scaling_fit = fit_scaling_law(completed["N"], completed["D"], completed[column], options)
    except FitError as e:
        notes.append(f"no L(N, D) fit: {e}")
    profiles = [isoflop_profile(b, g["N"].to_numpy(), g[column].to_numpy())
                for b, g in completed.groupby("budget_flops")]
    return FrontierInfo(model, column, env, compute_fit, scaling_fit, profiles, completed,
                        early_stopped_reports(results), reports, tuple(notes))
