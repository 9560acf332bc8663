"""Frontiers, fits and the best-schedule query, on the results table alone (no ray, no torch).

Compute first, draw second: ``frontier(...)`` returns a ``FrontierInfo`` and ``best_schedule``
a ``BestSchedule``; ``budgetune.analysis.plots`` draws them.
"""

from budgetune.analysis._candidates import (
    Pick,
    budget_points,
    compressed_variants,
    pick,
    rank_recipes,
)
from budgetune.analysis._fit import (
    CHINCHILLA_GRID,
    ComputeLawFit,
    FitError,
    FitOptions,
    Interval,
    ScalingLawFit,
    fit_compute_law,
    fit_scaling_law,
)
from budgetune.analysis._frontier import (
    Envelope,
    FrontierInfo,
    IsoFlopProfile,
    envelope,
    frontier,
    isoflop_profile,
)
from budgetune.analysis._load import (
    Results,
    completed_trials,
    early_stopped_reports,
    load_results,
)
from budgetune.analysis._query import BestSchedule, Recommendation, best_schedule
from budgetune.analysis._report import write_plots, write_report
from budgetune.analysis._tradeoffs import (
    ShareEffect,
    SizeQuality,
    pareto_front,
    share_effect,
    size_quality,
)

__all__ = [
    "Pick", "budget_points", "compressed_variants", "pick", "rank_recipes",
    "CHINCHILLA_GRID", "BestSchedule", "ComputeLawFit", "Envelope", "FitError", "FitOptions",
    "FrontierInfo", "Interval", "IsoFlopProfile", "Recommendation", "Results",
    "ScalingLawFit", "best_schedule", "completed_trials", "early_stopped_reports", "envelope",
    "fit_compute_law", "fit_scaling_law", "frontier", "isoflop_profile", "load_results",
    "ShareEffect", "SizeQuality", "pareto_front", "share_effect", "size_quality",
    "write_plots", "write_report",
]
