"""Every answer the service gives, as the bytes it sends: one adapter over what the CLI calls.

The service holds no analysis of its own. ``best_json`` mirrors ``budgetune best --json`` and
``status_json`` mirrors ``budgetune status --json`` call for call (the CLI's ``_run_best`` and
``_run_status``), so an answer is the CLI's output byte for byte: the tests compare them. When
those commands change, this module alone follows them. Frontier and plots draw on the same
``budgetune.analysis`` functions as ``budgetune plot`` (``write_plots``), in memory: the service
writes no file.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

PLOT_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
PLOT_KINDS = ("frontier", "isoflops", "size_quality", "share_fraction")  # as `budgetune plot`


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


def status_json(root: str | Path, search: str | None = None) -> str:
    """What ``budgetune status --json [--name SEARCH]`` prints (``_run_status``)."""
    from budgetune.results import search_status

    statuses = search_status(root, check_search(root, search))
    return json.dumps([{"name": s.name, "spec": s.spec, "train_flops": s.train_flops,
                        "experiments": [vars(e) for e in s.experiments]}
                       for s in statuses], default=str) + "\n"


def searches_json(root: str | Path) -> str:
    """The searches under ``root``: settings, trial counts and a state read from the tables."""
    from budgetune.results import search_status

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
              search: str | None = None, corpus_id: str | None = None) -> str:
    """What ``budgetune best --json --budget B [--max-mb M] [--model F] [--name S]`` prints:
    the same calls as the CLI's ``_run_best``, in the same order."""
    from budgetune.analysis import best_schedule, load_results
    from budgetune.spaces import validate_budget

    validate_budget(budget)
    if max_mb is not None and not (max_mb > 0 and math.isfinite(max_mb)):
        raise ValueError(f"The value of `max_mb` is {max_mb}, but must be > 0.")
    results = load_results(root, check_search(root, search), corpus_id)
    best = best_schedule(results, budget, None if max_mb is None else max_mb * 1e6, model)
    return json.dumps(best.to_dict()) + "\n"


def frontier_info(results, model: str | None):
    """The family's frontiers, fitted with the options ``budgetune plot`` uses."""
    from budgetune.analysis import frontier
    from budgetune.analysis._fit import FitOptions
    from budgetune.analysis._report import DEFAULT_PLOT_BOOTSTRAP

    subset = results.for_model(model)
    return frontier(subset, model, options=FitOptions(bootstrap=DEFAULT_PLOT_BOOTSTRAP))


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
    """The fitted laws and the points they rest on (completed trials only; DESIGN.md)."""
    done = info.completed
    points = done[["experiment", "trial_id", "budget_flops", "train_flops", "N", "D",
                   info.column]].rename(columns={info.column: "loss"})
    out = {
        "model": info.model, "column": info.column,
        "compute_fit": info.compute_fit.to_dict() if info.compute_fit else None,
        "scaling_fit": info.scaling_fit.to_dict() if info.scaling_fit else None,
        "envelope": {"flops": info.envelope.flops.tolist(),
                     "loss": info.envelope.loss.tolist()},
        "isoflops": [{"budget_flops": p.budget_flops, "n_opt": p.n_opt, "status": p.status,
                      "coeffs": list(p.coeffs) if p.coeffs is not None else None}
                     for p in info.isoflops],
        "points": points.to_dict(orient="records"),
        "n_early_reports": int(len(info.early)),
        "notes": list(info.notes),
    }
    return json.dumps(_finite(out), allow_nan=False) + "\n"


def plot_names(results) -> list[str]:
    """The plots ``budgetune plot`` would write for these results, without extension."""
    return [f"{model}_{kind}" for model in results.models for kind in PLOT_KINDS]


def draw_plot(results, info_of, name: str, fmt: str) -> bytes:
    """One plot, drawn in memory. ``name`` must be one of ``plot_names(results)``; it is looked
    up, never used as a path. ``info_of(model)`` gives the family's frontier."""
    from budgetune.analysis import plots, share_effect, size_quality

    if fmt not in PLOT_FORMATS:
        raise ValueError(f"The plot format is {fmt!r}, but must be one of "
                         f"{list(PLOT_FORMATS)}.")
    known = plot_names(results)
    if name not in known:
        raise ValueError(f"There is no plot {name!r}; the plots are {known}.")
    model, kind = next((m, k) for m in results.models for k in PLOT_KINDS
                       if f"{m}_{k}" == name)
    subset = results.for_model(model)
    drawings = {
        "frontier": lambda: plots.plot_frontier(info_of(model)),
        "isoflops": lambda: plots.plot_isoflops(info_of(model)),
        "size_quality": lambda: plots.plot_size_quality(size_quality(subset)),
        "share_fraction": lambda: plots.plot_share_effect(share_effect(subset)),
    }
    ax = drawings[kind]()
    fig = ax.figure
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()
