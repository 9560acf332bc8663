"""Everything Ray: the Tune trainable, ASHA on the FLOPs axis, Optuna, clusters and Jobs.

Ray is imported only when a search runs, so the rest of budgetune works without starting it.
Ray reads ``RAY_AUTH_MODE`` when it is first imported, so token authentication is switched on
here, before any module of this package imports Ray (SECURITY.md).
"""

import os

os.environ.setdefault("RAY_AUTH_MODE", "token")

from budgetune.search._jobs import submit_job  # noqa: E402
from budgetune.search._ray import check_address, cluster_address  # noqa: E402
from budgetune.search._search import FlopsLedger, run_search  # noqa: E402
from budgetune.search._spec import DEFAULT_BUDGETS, DEFAULT_MAX_MB, SearchSpec  # noqa: E402
from budgetune.search._trainable import INFEASIBLE, asha_rungs, objective  # noqa: E402

__all__ = [
    "DEFAULT_BUDGETS", "DEFAULT_MAX_MB", "INFEASIBLE", "FlopsLedger", "SearchSpec",
    "asha_rungs", "check_address", "cluster_address", "objective", "run_search", "submit_job",
]
