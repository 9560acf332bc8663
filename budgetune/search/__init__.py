"""Everything Ray: the Tune trainable, ASHA on the FLOPs axis, Optuna, clusters and Jobs.

Ray is imported only when a search runs, so the rest of budgetune works without starting it.
"""

from budgetune.search._jobs import submit_job
from budgetune.search._search import (
    DEFAULT_BUDGETS,
    DEFAULT_MAX_MB,
    FlopsLedger,
    SearchSpec,
    run_search,
)
from budgetune.search._trainable import INFEASIBLE, asha_rungs, objective

__all__ = [
    "DEFAULT_BUDGETS", "DEFAULT_MAX_MB", "INFEASIBLE", "FlopsLedger", "SearchSpec",
    "asha_rungs", "objective", "run_search", "submit_job",
]
