"""Files for people: the plots of a results directory, and a Markdown report around them."""

from __future__ import annotations

from pathlib import Path

from budgetune.analysis._fit import FitOptions
from budgetune.analysis._frontier import FrontierInfo, frontier
from budgetune.analysis._load import Results
from budgetune.analysis._tradeoffs import share_effect, size_quality

DEFAULT_PLOT_BOOTSTRAP = 100


def write_plots(results: Results, out: str | Path, fmt: str = "png",
                options: FitOptions = FitOptions(bootstrap=DEFAULT_PLOT_BOOTSTRAP)
                ) -> tuple[list[Path], dict[str, FrontierInfo]]:
    """Write the four plots per model family into ``out``; return their paths and frontiers."""
    from budgetune.analysis import plots

    if fmt not in plots.FORMATS:
        raise ValueError(f"The value of `format` is {fmt!r}, but must be one of "
                         f"{list(plots.FORMATS)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths, infos = [], {}
    for model in results.models:
        subset = results.for_model(model)
        info = infos[model] = frontier(subset, model, options=options)
        drawings = {
            "frontier": lambda: plots.plot_frontier(info),
            "isoflops": lambda: plots.plot_isoflops(info),
            "size_quality": lambda: plots.plot_size_quality(size_quality(subset)),
            "share_fraction": lambda: plots.plot_share_effect(share_effect(subset)),
        }
        for name, draw in drawings.items():
            paths.append(plots.save(draw(), out / f"{model}_{name}.{fmt}"))
    return paths, infos


def _fit_lines(info: FrontierInfo) -> list[str]:
    lines = []
    if info.compute_fit is not None:
        f = info.compute_fit
        lines.append(f"- Envelope law: L(C) = {f.E:.3f} + {f.A:.4g}·C^(−{f.alpha:.3f}) "
                     f"({f.status}, {f.n_points} envelope points)")
    if info.scaling_fit is not None:
        f = info.scaling_fit
        iv = f.intervals

        def ci(k: str) -> str:
            return f" [{iv[k].low:.3f}, {iv[k].high:.3f}]" if k in iv else ""

        lines.append(f"- Parametric law: L(N, D) = {f.E:.3f}{ci('E')} + {f.A:.4g}/N^"
                     f"{f.alpha:.3f}{ci('alpha')} + {f.B:.4g}/D^{f.beta:.3f}{ci('beta')}; "
                     f"N_opt ∝ C^{f.a:.3f}, D_opt ∝ C^{f.b:.3f} ({f.status}, "
                     f"{f.n_points} completed trials)")
    lines += [f"- {note}" for note in info.notes]
    for p in info.isoflops:
        n_opt = f"N_opt ≈ {p.n_opt:.3g}" if p.n_opt else "no N_opt"
        lines.append(f"- IsoFLOP {p.budget_flops:.3g} FLOPs: {n_opt} ({p.status})")
    return lines


def _best_table(info: FrontierInfo) -> list[str]:
    rows = ["| budget (FLOPs) | model | d_model | n_layers | share_fraction | sparsity | bits "
            "| val_loss_compressed | MB |", "|---|---|---|---|---|---|---|---|---|"]
    best = info.completed.loc[info.completed.groupby("budget_flops")[info.column].idxmin()]
    for _, r in best.iterrows():
        rows.append(f"| {r['budget_flops']:.3g} | {r['model']} | {r['d_model']} | "
                    f"{r['n_layers']} | {r['share_fraction']:.2f} | {r['prune_sparsity']:.2f} "
                    f"| {r['quant_bits']} | {r[info.column]:.4f} | "
                    f"{r['compressed_bytes'] / 1e6:.3f} |")
    return rows


def write_report(results: Results, out: str | Path, fmt: str = "png") -> Path:
    """A Markdown report: best schedule per budget, fitted laws and every plot."""
    out = Path(out)
    paths, infos = write_plots(results, out, fmt)
    lines = ["# budgetune report", ""]
    for model, info in infos.items():
        n_early = info.early[["experiment", "trial_id"]].drop_duplicates().shape[0]
        lines += [f"## {model}", "",
                  f"{len(info.completed)} completed trials, {n_early} stopped early "
                  "(drawn, never recommended).", "", "### Best schedule per budget", "",
                  *_best_table(info), "", "### Fitted laws", "", *_fit_lines(info), "",
                  "### Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in paths if p.name.startswith(model + "_")]
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
