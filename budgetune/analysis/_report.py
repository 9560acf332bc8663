"""Files for people: the plots of a results directory, and a Markdown report around them."""

from __future__ import annotations

from pathlib import Path

from budgetune.analysis._compression_law import CompressionLaw, compression_law, factor_entry
from budgetune.analysis._compression_query import factors_text
from budgetune.analysis._fit import FitOptions
from budgetune.analysis._frontier import FrontierInfo, frontier
from budgetune.analysis._load import Results
from budgetune.analysis._query import describe_limit, extrapolation_text
from budgetune.analysis._status import BEST_HEADER, budget_best, format_best_line
from budgetune.analysis._tradeoffs import share_effect, size_quality

DEFAULT_PLOT_BOOTSTRAP = 100


PLOT_KINDS = ("frontier", "isoflops", "size_quality", "share_fraction")  # per model family


def draw_plot(kind: str, results: Results, info: FrontierInfo):
    """One plot of one family (``results`` of that family alone, ``info`` its frontier), drawn
    on a new ``Figure``; returns its Axes. ``budgetune plot`` and ``budgetune serve`` both draw
    through here."""
    from budgetune.analysis import plots

    drawings = {
        "frontier": lambda: plots.plot_frontier(info),
        "isoflops": lambda: plots.plot_isoflops(info),
        "size_quality": lambda: plots.plot_size_quality(size_quality(results)),
        "share_fraction": lambda: plots.plot_share_effect(share_effect(results)),
    }
    return drawings[kind]()


def write_plots(results: Results, out: str | Path, fmt: str = "png",
                options: FitOptions = FitOptions(bootstrap=DEFAULT_PLOT_BOOTSTRAP),
                max_bytes: float | None = None) -> tuple[list[Path], dict[str, FrontierInfo]]:
    """Write the four plots per model family into ``out``; return their paths and frontiers
    (the envelope within ``max_bytes``)."""
    from budgetune.analysis import plots

    if fmt not in plots.FORMATS:
        raise ValueError(f"The value of `format` is {fmt!r}, but must be one of "
                         f"{list(plots.FORMATS)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths, infos = [], {}
    for model in results.models:
        subset = results.for_model(model)
        info = infos[model] = frontier(subset, model, max_bytes, options=options)
        for kind in PLOT_KINDS:
            paths.append(plots.save(draw_plot(kind, subset, info),
                                    out / f"{model}_{kind}.{fmt}"))
    return paths, infos


def _fit_lines(info: FrontierInfo) -> list[str]:
    lines = []
    f = info.compute_fit
    if f is not None:
        lines.append(f"- Envelope law (within the size limit): L(C) = {f.E:.3f} + {f.A:.4g}·"
                     f"C^(−{f.alpha:.3f}) ({f.status}, {f.n_points} budgets)"
                     + (f": not quoted: {info.compute_reason}" if info.compute_reason else ""))
    f = info.scaling_fit
    if f is not None:
        iv = f.intervals

        def ci(k: str) -> str:
            return f" [{iv[k].low:.3f}, {iv[k].high:.3f}]" if k in iv else ""

        lines.append(f"- Parametric law (uncompressed val_loss, best per N per budget): "
                     f"L(N, D) = {f.E:.3f}{ci('E')} + {f.A:.4g}/N^{f.alpha:.3f}{ci('alpha')} + "
                     f"{f.B:.4g}/D^{f.beta:.3f}{ci('beta')} ({f.status}, {f.n_points} points, "
                     f"{len(info.measured_budgets)} budgets)"
                     + (f": not quoted: {info.scaling_reason}" if info.scaling_reason else ""))
    lines += [f"- {reason}" for fit, reason in ((info.compute_fit, info.compute_reason),
                                                 (info.scaling_fit, info.scaling_reason))
              if fit is None]
    for p in info.isoflops:
        n_opt = f"N_opt ≈ {p.n_opt:.3g}" if p.n_opt else "no N_opt"
        lines.append(f"- IsoFLOP {p.budget_flops:.3g} FLOPs: {n_opt} ({p.status})")
    return lines


def _law_lines(law: CompressionLaw) -> list[str]:
    """The compression-aware law: its factors with intervals and what they rest on."""
    head = ("- Compression-aware law L(N, D, c) = E + A/(N·e_c)^α + B/D^β (Frantar et al. "
            "2025; one effective-size factor e_c per cell c = bits × trained sparsity, N the "
            "dense count)")
    notes = [f"- {note}" for note in law.notes]
    f = law.fit
    if f is None or law.reason is not None:
        return [f"{head}: not quoted: {law.reason}", *notes]
    iv = f.intervals

    def ci(k: str) -> str:
        return f" [{iv[k].low:.3f}, {iv[k].high:.3f}]" if k in iv else ""

    return [f"{head}: {f.n_models} models at {len(f.budgets)} budgets, {len(f.factors)} cells, "
            f"{f.n_points} losses; α = {f.alpha:.3f}{ci('alpha')}, β = {f.beta:.3f}"
            f"{ci('beta')}, E = {f.E:.3f}{ci('E')} ({f.status}); 95% bootstrap intervals "
            "over resampled models. Factors:",
            *[f"  - {line}" for line in factors_text([factor_entry(f, c) for c in f.factors])],
            *notes]


def write_report(results: Results, out: str | Path, fmt: str = "png",
                 max_bytes: float | None = None, limit_source: str | None = None) -> Path:
    """A Markdown report: best schedule per budget (the one pick, within ``max_bytes``),
    fitted laws and every plot."""
    out = Path(out)
    options = FitOptions(bootstrap=DEFAULT_PLOT_BOOTSTRAP)
    paths, infos = write_plots(results, out, fmt, options, max_bytes=max_bytes)
    lines = ["# budgetune report", "",
             f"Size limit: {describe_limit(max_bytes, limit_source)}.", ""]
    for model, info in infos.items():
        subset = results.for_model(model)
        n_runs = info.points[["search_id", "experiment", "trial_id"]].drop_duplicates()
        lines += [f"## {model}", "",
                  f"{len(info.points)} budget points from {len(n_runs)} trials at "
                  f"{len(info.measured_budgets)} budgets "
                  f"({extrapolation_text(1, info.largest_budget)}); other reports are drawn, "
                  "never fitted or recommended.", "",
                  "### Best schedule per budget", "", "```", BEST_HEADER,
                  *[format_best_line(b) for b in budget_best(subset, info.measured_budgets,
                                                              max_bytes)],
                  "```", "", "### Fitted laws", "", *_fit_lines(info),
                  *_law_lines(compression_law(subset, options)), "", "### Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in paths if p.name.startswith(model + "_")]
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
