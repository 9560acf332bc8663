"""The answers as users receive them: what ``best --json`` and ``status --json`` print, and
what ``budgetune serve`` sends. One function per answer, so the command line and the HTTP
service cannot drift apart (tests/service compares them byte for byte).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

from budgetune.analysis._compression_law import compression_law
from budgetune.analysis._fit import FitOptions
from budgetune.analysis._frontier import frontier
from budgetune.analysis._load import Results, load_results
from budgetune.analysis._query import (
    DEFAULT_QUERY_BOOTSTRAP,
    BestSchedule,
    best_schedule,
    json_safe,
)
from budgetune.analysis._status import SearchStatus, disk_use, saved_size_limit, search_status
from budgetune.spaces import validate_budget


def size_limit(root: str | Path, name: str | None = None, max_mb: float | None = None,
               no_size_limit: bool = False) -> tuple[float | None, str]:
    """(max_bytes, where it came from): ``no_size_limit``, ``max_mb``, else the searches' own
    saved ``--max-mb`` (``saved_size_limit``)."""
    if no_size_limit:
        return None, "--no-size-limit"
    if max_mb is not None:
        if not (max_mb > 0 and math.isfinite(max_mb)):
            raise ValueError(f"The value of `max_mb` is {max_mb}, but must be > 0.")
        return max_mb * 1e6, "--max-mb"
    return saved_size_limit(root, name)


def answer_best(root: str | Path, budget_flops: float, max_mb: float | None = None,
                no_size_limit: bool = False, model: str | None = None, name: str | None = None,
                corpus_id: str | None = None, results: Results | None = None,
                frontiers: dict | None = None) -> BestSchedule:
    """``budgetune best``: the pick for a budget under the size limit ``size_limit`` gives.

    A long-lived caller (``budgetune serve``) may pass the ``results`` it has read and a dict
    in which the frontiers fitted for them are kept, keyed by (model, max_bytes): the fit is
    the slow part, and it does not depend on the budget asked about (nor, for the
    compression-aware law, kept under (model, "compression-law"), on the size limit). The
    answer is the same."""
    validate_budget(budget_flops)
    max_bytes, source = size_limit(root, name, max_mb, no_size_limit)
    results = load_results(root, name, corpus_id) if results is None else results
    info = law = None
    if frontiers is not None:
        options = FitOptions(bootstrap=DEFAULT_QUERY_BOOTSTRAP)
        key, law_key = (model, max_bytes), (model, "compression-law")
        if key not in frontiers:
            frontiers[key] = frontier(results.for_model(model), model, max_bytes,
                                      options=options)
        if law_key not in frontiers:
            frontiers[law_key] = compression_law(results.for_model(model), options)
        info, law = frontiers[key], frontiers[law_key]
    return best_schedule(results, budget_flops, max_bytes, model, info=info,
                         limit_source=source, law=law)


def best_json(best: BestSchedule) -> str:
    """``best --json``'s one line (without its newline)."""
    return json.dumps(best.to_dict())


def status_json(root: str | Path, name: str | None = None,
                statuses: list[SearchStatus] | None = None) -> str:
    """``status --json``'s one line (without its newline): each search's settings, trial
    counts, spent FLOPs, disk use and best recipe per budget under its size limit. A caller
    that keeps ``search_status``'s answer (the service) passes it as ``statuses``: the disk use
    is then measured again, since it changes without the tables (an ended trial's checkpoints
    are deleted after its rows are written)."""
    statuses = (search_status(root, name) if statuses is None
                else [replace(s, disk=disk_use(s.folder)) for s in statuses])
    return json.dumps(json_safe([
        {"name": s.name, "spec": s.spec, "train_flops": s.train_flops,
         "max_bytes": s.max_bytes, "size_limit": s.size_limit,
         "experiments": [asdict(e) for e in s.experiments],
         "best": [asdict(b) for b in s.best], "disk": s.disk}
        for s in statuses]), default=str)
