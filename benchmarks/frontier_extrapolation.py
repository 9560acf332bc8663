"""Frontier extrapolation from WSD budget points: fit L(C) on points up to C/4, predict C.

A grid of model sizes (GPT-2 family, d_model × depth, no sharing or compression, one learning
rate) is trained with WSD, each trial planned for C with a budget point (a cooldown branch) at
C/32, C/16, C/8 and C/4: one main line per size gives all five annealed losses. The best
loss per budget (the envelope, ``budgetune.analysis.envelope``) at budgets ≤ C/4 is fitted with
L(C) = E + A·C^(−α) (``fit_compute_law``: Huber in log space, as Hoffmann et al. 2022), and its
value at C is compared with the best loss measured at C.

Two ways to train the same trials:
- ``--runner search`` (default): one ``budgetune search`` (grid, FIFO, ``--lr-schedule wsd``):
  one Tune experiment on local Ray.
- ``--runner direct``: the same ``Trial``s in a process pool (``--jobs``), no Ray: for a
  machine without Ray, e.g. a GPU (``--device cuda``), where the budgets past the unigram
  plateau take minutes instead of hours.

    PYTHONPATH=. .venv/bin/python benchmarks/frontier_extrapolation.py [--budget 1.6e13]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SPACE = {"model": "gpt2", "d_model": [48, 96], "n_layers": [2, 4], "n_heads": 2,
         "seq_len": 64, "batch_size": 16, "vocab_size": 4096, "share_fraction": 0.0,
         "prune_sparsity": 0.0, "quant_bits": 32, "lr": 3e-3}
FRACTIONS = (1 / 32, 1 / 16, 1 / 8, 1 / 4)  # of C: the budget points the fit sees
EVAL_TOKENS = 16384


def _train(job: tuple[int, int, tuple[float, ...], str]) -> list[dict]:
    import torch

    from budgetune.spaces import Schedule
    from budgetune.trainables import Trial, TrialConfig

    torch.set_num_threads(1)
    d_model, n_layers, budgets, device = job
    fixed = {k: v for k, v in SPACE.items() if k not in ("d_model", "n_layers")}
    schedule = Schedule(**fixed, d_model=d_model, n_layers=n_layers, lr_schedule="wsd")
    trial = Trial(schedule, max(budgets), TrialConfig(points=budgets, eval_tokens=EVAL_TOKENS,
                                                      n_reports=1, device=device))
    return [{"d_model": d_model, "n_layers": n_layers, "budget_flops": r.budget_flops,
             "val_loss": r.val_loss} for r in trial.run() if r.point or r.completed]


def _direct(budgets: tuple[float, ...], jobs: int, device: str) -> list[dict]:
    from budgetune.trainables import load_data

    load_data("builtin", SPACE["vocab_size"])  # tokenize once, before the workers read it
    grid = [(d, n, budgets, device) for d in SPACE["d_model"] for n in SPACE["n_layers"]]
    with ProcessPoolExecutor(jobs) as pool:
        return [row for rows in pool.map(_train, grid) for row in rows]


def _search(budgets: tuple[float, ...]) -> list[dict]:
    import yaml

    from budgetune.results import read_table
    from budgetune.search import SearchSpec, run_search

    with tempfile.TemporaryDirectory() as root:
        space = Path(root, "sizes.yaml")
        space.write_text(yaml.safe_dump(SPACE))
        spec = SearchSpec(space=str(space), budgets=budgets, searcher="grid",
                          scheduler="fifo", max_mb=None, results=root, name="frontier",
                          lr_schedule="wsd", eval_tokens=EVAL_TOKENS)
        run_search(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
        reports = read_table(spec.folder(), "reports")
    points = reports[reports["point"].astype(bool)]
    return points[["d_model", "n_layers", "budget_flops", "val_loss"]].to_dict("records")


def main() -> None:
    from budgetune.analysis import envelope, fit_compute_law

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.6e13, help="C, in FLOPs")
    parser.add_argument("--runner", default="search", choices=["search", "direct"])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="direct only")
    parser.add_argument("--device", default="cpu", help="direct only: cpu, cuda or auto")
    args = parser.parse_args()
    c = args.budget
    budgets = (*[f * c for f in FRACTIONS], c)
    t0 = time.perf_counter()
    rows = (_search(budgets) if args.runner == "search"
            else _direct(budgets, args.jobs, args.device))
    wall = time.perf_counter() - t0
    best = {}
    for row in rows:
        key = float(f"{row['budget_flops']:.6g}")
        best[key] = min(best.get(key, float("inf")), row["val_loss"])
    seen = sorted(b for b in best if b <= c / 4 * (1 + 1e-9))
    env = envelope(np.array(seen), np.array([best[b] for b in seen]))
    fit = fit_compute_law(env.flops, env.loss)
    measured, predicted = best[float(f"{c:.6g}")], float(fit.loss(c))
    print(json.dumps({
        "benchmark": "frontier_extrapolation", "runner": args.runner, "device": args.device,
        "C": c, "fit_budgets": seen, "space": SPACE, "eval_tokens": EVAL_TOKENS,
        "fit": {k: fit.to_dict()[k] for k in ("E", "A", "alpha", "status", "n_points")},
        "best_by_budget": {f"{b:.3g}": round(v, 4) for b, v in sorted(best.items())},
        "by_size": sorted((r["d_model"], r["n_layers"], f"{r['budget_flops']:.3g}",
                           round(r["val_loss"], 4)) for r in rows),
        "predicted_at_C": round(predicted, 4), "measured_at_C": round(measured, 4),
        "relative_error_loss": round(abs(predicted - measured) / measured, 4),
        "relative_error_reducible": round(abs(predicted - measured) / (measured - fit.E), 4),
        "wall_s": round(wall, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
