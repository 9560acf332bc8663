"""Frontiers, fits and the best-schedule query, on the results table alone (no ray, no torch).

Compute first, draw second: ``frontier(...)`` returns a ``FrontierInfo`` and ``best_schedule``
a ``BestSchedule``; ``budgetune.analysis.plots`` draws them.
"""

from budgetune.analysis._allocate import Allocation, allocate, allocate_within
from budgetune.analysis._answers import answer_best, best_json, size_limit, status_json
from budgetune.analysis._candidates import (
    Pick,
    budget_points,
    compressed_variants,
    pick,
    rank_recipes,
)
from budgetune.analysis._compression_law import (
    BASE_CELL,
    CompressionLaw,
    CompressionLawFit,
    compression_law,
    compression_points,
    fit_compression_law,
)
from budgetune.analysis._compression_query import (
    CompressedPrediction,
    CompressionAnswer,
    compression_answer,
    factors_text,
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
    best_per_size,
    envelope,
    frontier,
    isoflop_profile,
)
from budgetune.analysis._load import Results, load_results
from budgetune.analysis._query import (
    BestSchedule,
    FrontierValue,
    Recommendation,
    best_schedule,
    describe_limit,
    extrapolation_text,
    json_safe,
)
from budgetune.analysis._report import (
    DEFAULT_PLOT_BOOTSTRAP,
    PLOT_KINDS,
    draw_plot,
    write_plots,
    write_report,
)
from budgetune.analysis._status import (
    BEST_HEADER,
    BudgetBest,
    ExperimentStatus,
    SearchStatus,
    budget_best,
    format_best_line,
    format_status,
    saved_size_limit,
    search_status,
)
from budgetune.analysis._tradeoffs import (
    ShareEffect,
    SizeQuality,
    pareto_front,
    share_effect,
    size_quality,
)

__all__ = [
    "DEFAULT_PLOT_BOOTSTRAP", "PLOT_KINDS", "draw_plot",
    "answer_best", "best_json", "size_limit", "status_json",
    "Allocation", "allocate", "allocate_within",
    "BASE_CELL", "CompressedPrediction", "CompressionAnswer", "CompressionLaw",
    "CompressionLawFit", "compression_answer", "compression_law", "compression_points",
    "factors_text", "fit_compression_law",
    "BEST_HEADER", "BudgetBest", "ExperimentStatus", "SearchStatus", "budget_best",
    "format_best_line", "format_status",
    "saved_size_limit", "search_status",
    "FrontierValue", "best_per_size", "describe_limit", "extrapolation_text", "json_safe",
    "Pick", "budget_points", "compressed_variants", "pick", "rank_recipes",
    "CHINCHILLA_GRID", "BestSchedule", "ComputeLawFit", "Envelope", "FitError", "FitOptions",
    "FrontierInfo", "Interval", "IsoFlopProfile", "Recommendation", "Results",
    "ScalingLawFit", "best_schedule", "envelope",
    "fit_compute_law", "fit_scaling_law", "frontier", "isoflop_profile", "load_results",
    "ShareEffect", "SizeQuality", "pareto_front", "share_effect", "size_quality",
    "write_plots", "write_report",
]
