"""Search efficiency: the training FLOPs each strategy spends before it finds a schedule within
1% of the exhaustive grid's best, on the ``quick`` space at one budget.

1. The exhaustive grid (every schedule of the space, trained to the budget: FIFO) once; its best
   completed val_loss_compressed is the target, and its total FLOPs the yardstick.
2. ASHA + TPE, ASHA + random, and random without ASHA (FIFO), ``--seeds`` searcher seeds each,
   ``--num-samples`` trials each.

"FLOPs to find" counts every trial in the order the searcher proposed it (the counter of
Tune's experiment tags), each with all the FLOPs it trained (until ASHA stopped it or it
completed), up to and including the first completed trial within 1% of the target. Trials
running beside it that were proposed later are not counted: this is what a sequential search
would spend. A run that never gets within 1% counts as its whole spend and is marked.

Training is seeded per schedule, so one schedule reaches the same loss in every run. Prints
one JSON object.

    .venv/bin/python benchmarks/search_efficiency.py [--budget 5e11] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from budgetune.results import read_table
from budgetune.search import SearchSpec, run_search

EVAL_TOKENS = 2048  # the same validation windows for every trial; trials here are short
STRATEGIES = {"asha_tpe": ("tpe", "asha"), "asha_random": ("random", "asha"),
              "random_fifo": ("random", "fifo")}


def _search(root: str, name: str, budget: float, **kwargs):
    spec = SearchSpec(space="quick", budgets=(budget,), max_mb=None, results=root, name=name,
                      eval_tokens=EVAL_TOKENS, **kwargs)
    t0 = time.perf_counter()
    run_search(spec, progress=lambda line: None)
    wall = time.perf_counter() - t0
    trials = read_table(spec.folder(), "trials")
    order = _proposal_order(spec.folder())
    trials = trials.sort_values("trial_id", key=lambda ids: ids.map(order))
    return trials, wall


def _proposal_order(folder: Path) -> dict[str, int]:
    """trial_id -> the order Tune created it in: the counter that starts each trial's
    experiment_tag, read from Tune's experiment state (JSON; nothing is unpickled)."""
    state = sorted(folder.glob("tune/*/experiment_state-*.json"))[-1]
    trials = [json.loads(t[0]) for t in json.loads(state.read_text())["trial_data"]]
    return {t["trial_id"]: int(t["experiment_tag"].split("_", 1)[0]) for t in trials}


def _flops_to_find(trials, target: float) -> tuple[float, bool, int]:
    spent = 0.0
    for k, row in enumerate(trials.itertuples(), start=1):
        spent += row.train_flops
        if row.status == "done" and row.val_loss_compressed <= 1.01 * target:
            return spent, True, k
    return spent, False, len(trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=5e11)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=12)
    args = parser.parse_args()
    out = {"benchmark": "search_efficiency", "space": "quick", "budget": args.budget,
           "num_samples": args.num_samples}
    with tempfile.TemporaryDirectory() as root:
        grid, wall = _search(root, "grid", args.budget, searcher="grid", scheduler="fifo")
        done = grid[grid["status"] == "done"]
        target, grid_flops = float(done["val_loss_compressed"].min()), float(
            grid["train_flops"].sum())
        within = int((done["val_loss_compressed"] <= 1.01 * target).sum())
        out["grid"] = {"trials": len(grid), "flops": grid_flops, "best": round(target, 4),
                       "schedules_within_1pct": within, "wall_s": round(wall, 1)}
        print(f"grid: {len(grid)} trials, best {target:.4f}, {within} within 1%, "
              f"{wall:.0f} s", file=sys.stderr, flush=True)
        for label, (searcher, scheduler) in STRATEGIES.items():
            runs = []
            for seed in range(args.seeds):
                trials, wall = _search(root, f"{label}-{seed}", args.budget, seed=seed,
                                       searcher=searcher, scheduler=scheduler,
                                       num_samples=args.num_samples)
                flops, found, k = _flops_to_find(trials, target)
                runs.append({"seed": seed, "flops_to_find": flops, "found": found,
                             "trials_to_find": k, "fraction_of_grid": round(
                                 flops / grid_flops, 4),
                             "total_flops": float(trials["train_flops"].sum()),
                             "best": round(float(trials.loc[trials["status"] == "done",
                                                            "val_loss_compressed"].min()), 4),
                             "wall_s": round(wall, 1)})
                print(f"{label} seed {seed}: {runs[-1]}", file=sys.stderr, flush=True)
            out[label] = {"median_fraction_of_grid": statistics.median(
                r["fraction_of_grid"] for r in runs), "runs": runs}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
