"""Every answer the service gives, as the bytes it sends: one adapter over what the CLI calls.

The service holds no analysis of its own. ``best_json`` and ``status_json`` call the very
functions ``budgetune best --json`` and ``budgetune status --json`` print
(``budgetune.analysis.answer_best``, ``best_json``, ``status_json``), so an answer is the CLI's
output byte for byte: the tests compare them. Frontier and plots draw through the same
``budgetune.analysis.draw_plot`` as ``budgetune plot``, in memory: the service writes no file.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

PLOT_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


def search_names(root: str | Path) -> list[str]:
    from budgetune.results import search_folders

    return [f.name for f in search_folders(root)]


def check_search(root: str | Path, search: str | None) -> str | None:
    """``search`` must name a search folder under ``root`` (None: all of them)."""
    if search is None:
        return None
    names = search_names(root)
    if search not in names:
        raise ValueError(f"The value of `search` is {search!r}, but must be one of {names}.")
    return search


def status_json(root: str | Path, search: str | None = None, statuses=None) -> str:
    """What ``budgetune status --json [--name SEARCH]`` prints; ``statuses``: a kept
    ``search_status`` answer for these tables (``statuses_of``)."""
    from budgetune.analysis import status_json

    return status_json(root, check_search(root, search), statuses) + "\n"


def statuses_of(root: str | Path, search: str | None = None) -> list:
    """``search_status`` for ``status_json``: what the tables say, kept by the service."""
    from budgetune.analysis import search_status

    return search_status(root, check_search(root, search))


def searches_json(root: str | Path) -> str:
    """The searches under ``root``: settings, trial counts and a state read from the tables."""
    from budgetune.analysis import search_status

    out = []
    for s in search_status(root):
        counts: dict[str, int] = {}
        for e in s.experiments:
            for k, v in e.counts.items():
                counts[k] = counts.get(k, 0) + int(v)
        state = ("running" if counts.get("running") else "finished" if counts
                 else "starting")
        spec = s.spec or {}
        out.append({"name": s.name, "state": state, "trials": counts,
                    "train_flops": s.train_flops, "space": spec.get("space"),
                    "budgets": spec.get("budgets"), "max_mb": spec.get("max_mb"),
                    "max_total_flops": spec.get("max_total_flops")})
    return json.dumps({"searches": out}, default=str) + "\n"


def parse_positive(name: str, text: str | None, required: bool) -> float | None:
    """A query parameter that must be a positive finite number (None when absent)."""
    if text is None or text == "":
        if required:
            raise ValueError(f"The parameter `{name}` is missing; pass a positive number, "
                             f"e.g. {name}=1e12.")
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"The value of `{name}` is {text!r}, but must be a positive finite "
                         "number.")
    return value


def load(root: str | Path, search: str | None = None, corpus_id: str | None = None):
    from budgetune.analysis import load_results

    return load_results(root, check_search(root, search), corpus_id)


def best_json(root: str | Path, budget: float, max_mb: float | None, model: str | None,
              search: str | None = None, corpus_id: str | None = None, results=None,
              frontiers: dict | None = None) -> str:
    """What ``budgetune best --json --budget B [--max-mb M] [--model F] [--name S]`` prints:
    without ``max_mb``, the search's own saved size limit, as the command does. ``results``
    and ``frontiers``: the service's cached tables and fits (see ``answer_best``)."""
    from budgetune.analysis import answer_best, best_json

    best = answer_best(root, budget, max_mb, False, model, check_search(root, search),
                       corpus_id, results, frontiers)
    return best_json(best) + "\n"


def frontier_info(root: str | Path, results, model: str | None, search: str | None = None):
    """The family's frontiers as ``budgetune plot`` fits them: under the search's own size
    limit, with the plots' bootstrap."""
    from budgetune.analysis import DEFAULT_PLOT_BOOTSTRAP, FitOptions, frontier, size_limit

    try:
        max_bytes, _ = size_limit(root, search)
    except ValueError:  # searches saved with different limits: the frontier says it has none
        max_bytes = None
    return frontier(results.for_model(model), model, max_bytes,
                    options=FitOptions(bootstrap=DEFAULT_PLOT_BOOTSTRAP))


def _finite(value):
    """JSON for browsers: NaN and infinities become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def frontier_json(info) -> str:
    """The fitted laws (or why one is not quoted) and the budget points they rest on."""
    points = info.points[["search_id", "experiment", "trial_id", "budget_flops", "train_flops",
                          "n_params_nonemb", "tokens", "val_loss", "val_loss_compressed",
                          "compressed_bytes"]]
    out = {
        "model": info.model, "max_bytes": info.max_bytes,
        "measured_budgets": list(info.measured_budgets),
        # A fit the analysis does not quote is no number here either: only its reason.
        "compute_fit": info.compute_fit.to_dict()
        if info.compute_fit and not info.compute_reason else None,
        "compute_reason": info.compute_reason,
        "scaling_fit": info.scaling_fit.to_dict()
        if info.scaling_fit and not info.scaling_reason else None,
        "scaling_reason": info.scaling_reason,
        "envelope": {"flops": info.envelope.flops.tolist(),
                     "loss": info.envelope.loss.tolist()},
        "isoflops": [{"budget_flops": p.budget_flops, "n_opt": p.n_opt, "status": p.status,
                      "coeffs": list(p.coeffs) if p.coeffs is not None else None}
                     for p in info.isoflops],
        "best": info.best.to_dict(orient="records"),
        "points": points.to_dict(orient="records"),
        "n_curve_reports": int(len(info.curves)),
        "notes": list(info.notes),
    }
    return json.dumps(_finite(out), allow_nan=False) + "\n"


def plot_names(results) -> list[str]:
    """The plots ``budgetune plot`` would write for these results, without extension."""
    from budgetune.analysis import PLOT_KINDS

    return [f"{model}_{kind}" for model in results.models for kind in PLOT_KINDS]


def draw_plot(results, info_of, name: str, fmt: str) -> bytes:
    """One plot, drawn in memory. ``name`` must be one of ``plot_names(results)``; it is looked
    up, never used as a path. ``info_of(model)`` gives the family's frontier."""
    from budgetune.analysis import PLOT_KINDS, draw_plot

    if fmt not in PLOT_FORMATS:
        raise ValueError(f"The plot format is {fmt!r}, but must be one of "
                         f"{list(PLOT_FORMATS)}.")
    known = plot_names(results)
    if name not in known:
        raise ValueError(f"There is no plot {name!r}; the plots are {known}.")
    model, kind = next((m, k) for m in results.models for k in PLOT_KINDS
                       if f"{m}_{k}" == name)
    fig = draw_plot(kind, results.for_model(model), info_of(model)).figure
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()
