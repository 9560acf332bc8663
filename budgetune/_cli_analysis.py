"""The analysis subcommands of ``budgetune``: fit, best, plot, report. Thin calls into analysis."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

DEFAULT_RESULTS = "results"
WITHIN_NOISE_SHOWN = 10  # recipes listed as within noise of the lowest; --json has every one


def add_analysis_commands(sub) -> None:
    _add_fit(sub)
    _add_best(sub)
    _add_plot(sub)
    _add_report(sub)


def _results_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"results directory (default ./{DEFAULT_RESULTS})")
    p.add_argument("--name", default=None, help="only this search (default: all under it)")
    p.add_argument("--corpus-id", default=None,
                   help="choose one corpus when the results mix several")


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit L(N, D) = E + A/N^α + B/D^β to any CSV table",
                       description="Fit L(N, D) = E + A/N^alpha + B/D^beta as the Chinchilla "
                       "replication did (log-space, Huber 1e-3, L-BFGS-B from a grid).")
    p.add_argument("--csv", required=True, help="the table")
    p.add_argument("--n-col", required=True, help="column of parameter counts N")
    tokens = p.add_mutually_exclusive_group(required=True)
    tokens.add_argument("--d-col", help="column of training tokens D")
    tokens.add_argument("--flops-col",
                        help="column of training FLOPs C; D = C / (6N), Chinchilla's "
                        "approximation for a table from elsewhere (budgetune's own searches "
                        "record D exactly: use --d-col tokens)")
    p.add_argument("--loss-col", required=True, help="column of losses")
    p.add_argument("--exclude-top", type=int, default=0,
                   help="leave out the K highest-loss points")
    p.add_argument("--bootstrap", type=int, default=0, help="resamples for intervals")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_fit)


def _read_csv_columns(args) -> tuple:
    import pandas as pd

    path = Path(args.csv)
    if not path.is_file():
        raise ValueError(f"The CSV file {args.csv!r} does not exist; check --csv.")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{args.csv!r} is not a readable CSV table ({e}).") from None
    wanted = [args.n_col, args.d_col or args.flops_col, args.loss_col]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise ValueError(f"The CSV has no column(s) {missing}; its columns are "
                         f"{list(df.columns)}.")
    try:
        df = df[wanted].astype(float)
    except ValueError:
        raise ValueError(f"Columns {wanted} of {args.csv!r} must be numbers.") from None
    if args.exclude_top < 0 or args.exclude_top >= len(df):
        raise ValueError(f"The value of `exclude_top` is {args.exclude_top}, but must be in "
                         f"[0, {len(df) - 1}].")
    df = df.sort_values(args.loss_col, kind="stable").iloc[: len(df) - args.exclude_top]
    n = df[args.n_col].to_numpy()
    d = df[args.d_col].to_numpy() if args.d_col else df[args.flops_col].to_numpy() / (6 * n)
    return n, d, df[args.loss_col].to_numpy()


def _run_fit(args) -> int:
    from budgetune.analysis import FitError, FitOptions, fit_scaling_law

    if args.bootstrap < 0:
        raise ValueError(f"The value of `bootstrap` is {args.bootstrap}, but must be >= 0.")
    n, d, loss = _read_csv_columns(args)
    try:
        fit = fit_scaling_law(n, d, loss, FitOptions(bootstrap=args.bootstrap))
    except FitError as e:
        raise ValueError(str(e)) from None
    out = fit.to_dict()
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"L(N, D) = {fit.E:.4g} + {fit.A:.4g}/N^{fit.alpha:.4g} + {fit.B:.4g}/D^"
          f"{fit.beta:.4g}   ({fit.status}, {fit.n_points} points)")
    print(f"N_opt ∝ C^{fit.a:.4f}, D_opt ∝ C^{fit.b:.4f}")
    for key, iv in fit.intervals.items():
        print(f"  {key:>5}: 95% [{iv.low:.4g}, {iv.high:.4g}], std {iv.std:.3g}")
    return 0


def _add_best(sub) -> None:
    p = sub.add_parser("best", help="the best measured schedule for a budget (and size limit)")
    p.add_argument("--budget", type=float, required=True, help="training FLOPs")
    _limit_flags(p)
    p.add_argument("--model", choices=["gpt2", "bert"], default=None,
                   help="model family (needed when the results hold both)")
    _results_flags(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (fields: budgetune.analysis.BestSchedule)")
    p.set_defaults(run=_run_best)


def _limit_flags(p: argparse.ArgumentParser) -> None:
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--max-mb", type=float, default=None,
                       help="size limit of the compressed model (1 MB = 10^6 bytes); default: "
                       "the search's own --max-mb (saved in its search.json)")
    limit.add_argument("--no-size-limit", action="store_true",
                       help="no size limit, whatever the search used")


def _run_best(args) -> int:
    from budgetune.analysis import answer_best, best_json

    best = answer_best(args.results, args.budget, args.max_mb, args.no_size_limit, args.model,
                       args.name, args.corpus_id)
    print(best_json(best) if args.json else format_best(best))
    return 0


def _recipe_text(r: dict) -> str:
    return (f"d_model={r['d_model']} n_layers={r['n_layers']} share_fraction="
            f"{r['share_fraction']} lr={r['lr']:.3g} at {r['budget_flops']:.3g} FLOPs, sparsity "
            f"{r['sparsity']:.2f} at {r['quant_bits']} bits: {r['loss_mean']:.4f} "
            f"[{r['loss_low']:.4f}, {r['loss_high']:.4f}], {r['compressed_bytes'] / 1e6:.3f} MB"
            f" ({r['n_seeds']} seed{'s' * (r['n_seeds'] != 1)})")


def _wsd_lines(best) -> list[str]:
    """How a WSD point was trained: a cooldown branched from a longer main line."""
    s = best.schedule
    if s["lr_schedule"] != "wsd" or best.main_line_flops <= best.trained_budget_flops:
        return []
    shared = (f"; {best.share_fraction_effective:.2f} of its steps shared (the switch is "
              f"placed on the main line)" if s["share_fraction"] else "")
    return [f"  a cooldown branched from a main line planned for {best.main_line_flops:.3g} "
            f"FLOPs{shared}; `budgetune train` with this schedule, `--lr-schedule wsd --budget "
            f"{best.trained_budget_flops:.4g} --main-line {best.main_line_flops:.4g}` re-runs "
            "it"]


def format_best(best) -> str:
    """``budgetune best`` as text: the pick, what it rests on, and the fits, each labelled."""
    from budgetune.analysis import extrapolation_text

    s = best.schedule
    lo, hi = best.loss_interval
    lines = [
        f"Best measured for {best.budget_flops:.3g} FLOPs ({best.model}), size limit "
        f"{best.size_limit}, {best.n_candidates} candidates:",
        f"  train {s['model']} d_model={s['d_model']} n_layers={s['n_layers']} "
        f"n_heads={s['n_heads']} share_fraction={s['share_fraction']} share_unit="
        f"{s['share_unit']} lr={s['lr']} ({s['lr_schedule']}) for "
        f"{best.trained_budget_flops:.3g} FLOPs, then "
        f"compress to sparsity {best.sparsity:.2f} at {best.quant_bits} bits"
        + (" (one-shot beyond the trained sparsity)" if best.one_shot else ""),
        *_wsd_lines(best),
        f"  val_loss_compressed {best.val_loss_compressed:.4f} nats, "
        + (f"95% [{lo:.4f}, {hi:.4f}] ({best.basis}" + (
            ": the interval is the evaluation's alone, not seed noise" if best.n_seeds == 1
            else "") if lo is not None and math.isfinite(lo) else
           f"no interval ({best.basis}, no standard error recorded")
        + f"), {best.compressed_bytes / 1e6:.3f} MB  "
        f"[{best.search_id}/{best.experiment}/{best.trial_id}]"]
    if len(best.within_noise) > 1:
        lines.append(f"  {len(best.within_noise)} recipes are within noise of the lowest loss "
                     f"({best.lowest_loss:.4f})" + ("; the smallest is preferred" if
                                                    best.smaller_preferred else "") + ":")
        lines += [f"    {_recipe_text(r)}" for r in best.within_noise[:WITHIN_NOISE_SHOWN]]
        if len(best.within_noise) > WITHIN_NOISE_SHOWN:
            lines.append(f"    ... and {len(best.within_noise) - WITHIN_NOISE_SHOWN} more "
                         "(best --json lists them all)")
    lines.append(f"  budget {best.budget_flops:.3g}: "
                 + extrapolation_text(best.factor, best.largest_measured_budget))
    f = best.frontier
    if f.loss is None:
        lines.append(f"  frontier L(C) at this budget: not given: {f.reason}")
    else:
        band = f", 95% [{f.interval[0]:.4f}, {f.interval[1]:.4f}]" if f.interval else ""
        tag = " (EXTRAPOLATED)" if f.extrapolated else ""
        lines.append(f"  frontier L(C) at this budget{tag}: {f.loss:.4f}{band}")
    r = best.recommendation
    if r.n_params_nonemb is None:
        lines.append(f"  L(N, D) law's allocation: not given: {r.reason}")
    else:
        tag = "EXTRAPOLATED" if r.extrapolated else "within the measured budgets"
        sh = r.shape
        lines.append(f"  L(N, D) law ({tag}): d_model={sh['d_model']} n_layers={sh['n_layers']}"
                     f" n_heads={sh['n_heads']}, N = {r.n_params_nonemb:.3g} non-embedding "
                     f"parameters, D = {r.tokens:.3g} tokens ({r.train_flops:.3g} FLOPs by the "
                     f"trainer's count), expected val_loss {r.expected_loss:.4f}")
    return "\n".join(lines + compression_lines(best.compression_law, best.factor,
                                                 best.largest_measured_budget, best.max_bytes))


def compression_lines(c, factor: float, largest_budget: float,
                      max_bytes: float | None) -> list[str]:
    """The compression-aware law in ``best``'s text: its factors with their intervals and
    what they rest on, then (beyond the data, under a size limit) its prediction."""
    from budgetune.analysis import extrapolation_text, factors_text

    if c.factors is None:
        return [f"  compression-aware law L = E + A/(N·e)^α + B/D^β: not given: {c.reason}"]
    lines = [f"  compression-aware law L = E + A/(N·e)^α + B/D^β ({c.n_models} models, "
             f"{c.n_budgets} budgets, {c.n_cells} cells; α = {c.alpha:.3f}"
             f"{_band(c.alpha_interval)}, β = {c.beta:.3f}{_band(c.beta_interval)}), "
             "effective-size factors e:",
             *[f"    {line}" for line in factors_text(c.factors)]]
    p = c.prediction
    if p is None:
        lines.append(f"  compression-aware law's best cell at this budget: not given: "
                     f"{c.prediction_reason}")
        return lines
    band = f" [{p.e_interval[0]:.3f}, {p.e_interval[1]:.3f}]" if p.e_interval else ""
    sh = p.shape
    lines.append(
        f"  compression-aware law ({extrapolation_text(factor, largest_budget)}"
        f"): within {max_bytes / 1e6:g} MB, train d_model={sh['d_model']} n_layers="
        f"{sh['n_layers']} n_heads={sh['n_heads']} to sparsity {p.sparsity:g} at "
        f"{p.quant_bits} bits (e = {p.e:.3f}{band}): N = {p.n_params_nonemb:.3g}, D = "
        f"{p.tokens:.3g} tokens, {p.compressed_bytes / 1e6:.3f} MB, expected "
        f"val_loss_compressed {p.expected_loss:.4f}")
    return lines


def _band(interval) -> str:
    return f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="write the frontier, IsoFLOP, size/quality and "
                       "share_fraction plots")
    _results_flags(p)
    p.add_argument("--out", default=None, help="output folder (default RESULTS/plots)")
    p.add_argument("--format", default="png", choices=["png", "svg", "pdf"])
    _limit_flags(p)
    p.set_defaults(run=_run_plot)


def _size_limit(args) -> tuple[float | None, str]:
    from budgetune.analysis import size_limit

    return size_limit(args.results, args.name, args.max_mb, args.no_size_limit)


def _run_plot(args) -> int:
    from budgetune.analysis import load_results, write_plots

    max_bytes, _ = _size_limit(args)
    results = load_results(args.results, args.name, args.corpus_id)
    paths, _ = write_plots(results, args.out or Path(args.results) / "plots", args.format,
                           max_bytes=max_bytes)
    for path in paths:
        print(path)
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write a Markdown report with plots and fitted laws")
    _results_flags(p)
    p.add_argument("--out", default=None, help="output folder (default RESULTS/report)")
    _limit_flags(p)
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from budgetune.analysis import load_results, write_report

    max_bytes, source = _size_limit(args)
    results = load_results(args.results, args.name, args.corpus_id)
    print(write_report(results, args.out or Path(args.results) / "report",
                       max_bytes=max_bytes, limit_source=source))
    return 0
