"""Search overhead: how much of the machine a search spends inside training steps.

overhead = 1 − (time inside training steps) / (wall time × CPUs). Beside it: the share spent in
trial-side evaluation (reports, compressed evaluation, the grid: each trial's wall_s minus its
train_s) and the rest (Ray start-up, actor start-up, corpus loading, checkpointing, Tune's
bookkeeping, idle CPUs). Prints one JSON object.

The first setting: 16 trials of about 30 s each on the machine's CPUs (the default space at
6e11 FLOPs), proposed by TPE, with ASHA or, with ``--scheduler fifo``, without.
``--embedded`` measures instead the embedded default itself, as ``budgetune search`` with no
arguments runs it (one WSD experiment for its three budgets, then its repeats).

    .venv/bin/python benchmarks/search_overhead.py [--scheduler asha|fifo] [--budget 6e11]
        [--num-samples 16] [--eval-tokens 8192] [--embedded]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from budgetune.results import read_table
from budgetune.search import SearchSpec, run_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="default")
    parser.add_argument("--budget", type=float, nargs="+", default=[6e11])
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--scheduler", default="asha", choices=["asha", "fifo"])
    parser.add_argument("--eval-tokens", type=int, default=SearchSpec.eval_tokens)
    parser.add_argument("--embedded", action="store_true",
                        help="the embedded default, as `budgetune search` runs it")
    parser.add_argument("--keep", default=None,
                        help="write the search under this folder (kept), not a temporary one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or tmp
        if args.embedded:
            from budgetune._cli_search import _spec_from_args
            from budgetune.cli import build_parser

            spec = _spec_from_args(build_parser().parse_args(
                ["search", "--results", root, "--name", "bench"]))
        else:
            spec = SearchSpec(space=args.space, budgets=tuple(args.budget), results=root,
                              num_samples=args.num_samples, scheduler=args.scheduler,
                              name="bench", eval_tokens=args.eval_tokens)
        t0 = time.perf_counter()
        run_search(spec, progress=lambda line: None)
        wall = time.perf_counter() - t0
        reports = read_table(spec.folder(), "reports")
    # each trial's last report in time (a WSD point and a main-line report can share a step)
    last = reports.sort_values("wall_s").groupby("trial_id").tail(1)
    cpus = os.cpu_count()
    train_s, trial_wall = float(last["train_s"].sum()), float(last["wall_s"].sum())
    capacity = wall * cpus
    print(json.dumps({
        "benchmark": "search_overhead", "space": args.space, "budgets": list(spec.budgets),
        "scheduler": spec.scheduler, "eval_tokens": spec.eval_tokens,
        "lr_schedule": spec.lr_schedule, "repeats": spec.repeats,
        "trials": int(last.shape[0]), "cpus": cpus, "wall_s": round(wall, 1),
        "train_s": round(train_s, 1),
        "overhead": round(1 - train_s / capacity, 3),
        "evaluation_share": round((trial_wall - train_s) / capacity, 3),
        "rest_share": round(1 - trial_wall / capacity, 3),
        "train_flops": float(last["train_flops"].sum()),
        "spent_flops": float(last["spent_flops"].sum()),
    }))


if __name__ == "__main__":
    main()
