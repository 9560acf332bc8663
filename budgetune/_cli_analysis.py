"""The analysis subcommands of ``budgetune``: fit, best, plot, report. Thin calls into analysis."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

DEFAULT_RESULTS = "results"


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
    tokens.add_argument("--flops-col", help="column of training FLOPs C (D = C / 6N)")
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
    p.add_argument("--max-mb", type=float, default=None,
                   help="size limit of the compressed model (1 MB = 10^6 bytes)")
    p.add_argument("--model", choices=["gpt2", "bert"], default=None,
                   help="model family (needed when the results hold both)")
    _results_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_best)


def _run_best(args) -> int:
    from budgetune.analysis import best_schedule, load_results
    from budgetune.spaces import validate_budget

    validate_budget(args.budget)
    if args.max_mb is not None and not (args.max_mb > 0 and math.isfinite(args.max_mb)):
        raise ValueError(f"The value of `max_mb` is {args.max_mb}, but must be > 0.")
    results = load_results(args.results, args.name, args.corpus_id)
    best = best_schedule(results, args.budget,
                         None if args.max_mb is None else args.max_mb * 1e6, args.model)
    if args.json:
        print(json.dumps(best.to_dict()))
        return 0
    s = best.schedule
    print(f"Best measured for {best.budget_flops:.3g} FLOPs"
          + (f" within {args.max_mb:g} MB" if args.max_mb else "")
          + f" ({best.model}, {best.n_candidates} candidates):")
    print(f"  train {s['model']} d_model={s['d_model']} n_layers={s['n_layers']} "
          f"n_heads={s['n_heads']} share_fraction={s['share_fraction']} "
          f"share_unit={s['share_unit']} lr={s['lr']} for {best.trained_budget_flops:.3g} "
          f"FLOPs, then compress to sparsity {best.sparsity:.2f} at {best.quant_bits} bits"
          + (" (one-shot beyond the trained sparsity)" if best.one_shot else ""))
    print(f"  val_loss_compressed {best.val_loss_compressed:.4f} nats, "
          f"{best.compressed_bytes / 1e6:.3f} MB  [{best.experiment}/{best.trial_id}]")
    if best.frontier_loss is not None:
        iv = best.frontier_interval
        band = f", 95% [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else ""
        print(f"  frontier L(C) at this budget: {best.frontier_loss:.4f}{band}")
    rec = best.recommendation
    if rec is not None:
        tag = "EXTRAPOLATED beyond the measured budgets" if rec.extrapolated else "fitted"
        print(f"  L(N, D) law ({tag}): N ≈ {rec.n_params_nonemb:.3g} non-embedding parameters,"
              f" D ≈ {rec.tokens:.3g} tokens, expected loss {rec.expected_loss:.4f}")
    return 0


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="write the frontier, IsoFLOP, size/quality and "
                       "share_fraction plots")
    _results_flags(p)
    p.add_argument("--out", default=None, help="output folder (default RESULTS/plots)")
    p.add_argument("--format", default="png", choices=["png", "svg", "pdf"])
    p.set_defaults(run=_run_plot)


def _run_plot(args) -> int:
    from budgetune.analysis import load_results, write_plots

    results = load_results(args.results, args.name, args.corpus_id)
    paths, _ = write_plots(results, args.out or Path(args.results) / "plots", args.format)
    for path in paths:
        print(path)
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write a Markdown report with plots and fitted laws")
    _results_flags(p)
    p.add_argument("--out", default=None, help="output folder (default RESULTS/report)")
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from budgetune.analysis import load_results, write_report

    results = load_results(args.results, args.name, args.corpus_id)
    print(write_report(results, args.out or Path(args.results) / "report"))
    return 0
