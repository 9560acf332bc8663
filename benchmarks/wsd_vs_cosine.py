"""WSD budget points against standalone cosine runs at the same compute (Hägele et al. 2024).

For each size and seed, one WSD trial is planned for the largest budget and branches a
cooldown (20% of the steps, 1−√t) at each smaller budget: its budget points. Each budget is
also trained on its own with today's cosine schedule (5% warmup, decay to 10% of the peak).
Same schedule otherwise (GPT-2 family, depth 2, sequence 128, batch 16, vocabulary 4096, peak
lr 3e-3, seed = model init and data order), same 16384 validation tokens. Compared, per size
and budget: WSD − cosine, its mean over seeds and the seeds' spread (the standard deviation of
the cosine losses), and the IsoFLOP profile (which size is best at each budget).

    PYTHONPATH=. .venv/bin/python benchmarks/wsd_vs_cosine.py [--jobs 2]

Prints one JSON object; runs one trial per process, one thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

SIZES = (32, 64, 128)  # d_model, depth 2
BUDGETS = (2e11, 6e11, 1.8e12)
BASE = {"model": "gpt2", "n_layers": 2, "n_heads": 2, "seq_len": 128, "batch_size": 16,
        "vocab_size": 4096, "lr": 3e-3}


def _run(job: tuple[str, int, int]) -> list[dict]:
    import torch

    from budgetune.spaces import Schedule
    from budgetune.trainables import Trial, TrialConfig

    torch.set_num_threads(1)
    kind, d_model, seed = job
    schedule = Schedule(**BASE, d_model=d_model, seed=seed, lr_schedule=kind.split(":")[0])
    t0 = time.perf_counter()
    if kind == "wsd":
        trial = Trial(schedule, max(BUDGETS), TrialConfig(points=BUDGETS, eval_tokens=16384,
                                                          n_reports=1))
        rows = [{"kind": "wsd", "budget": r.budget_flops, "val_loss": r.val_loss}
                for r in trial.run() if r.point or r.completed]
        flops = trial.trial_flops
    else:
        budget = float(kind.split(":")[1])
        trial = Trial(schedule, budget, TrialConfig(eval_tokens=16384, n_reports=1))
        rows = [{"kind": "cosine", "budget": budget, "val_loss": r.val_loss}
                for r in trial.run() if r.completed]
        flops = trial.trial_flops
    wall = time.perf_counter() - t0
    return [{**row, "d_model": d_model, "seed": seed, "trained_flops": flops, "wall_s": wall}
            for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    jobs = [(kind, d, seed) for seed in args.seeds for d in SIZES
            for kind in ("wsd", *(f"cosine:{b}" for b in BUDGETS))]
    jobs.sort(key=lambda j: -(max(BUDGETS) if j[0] == "wsd" else float(j[0][7:])))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = [row for rows in pool.map(_run, jobs) for row in rows]
    wall = time.perf_counter() - t0
    cells, profile = [], {}
    for budget in BUDGETS:
        for d in SIZES:
            def loss(kind, seed, budget=budget, d=d):
                return next(r["val_loss"] for r in rows if r["kind"] == kind and
                            r["budget"] == budget and r["d_model"] == d and r["seed"] == seed)
            wsd = [loss("wsd", s) for s in args.seeds]
            cos = [loss("cosine", s) for s in args.seeds]
            diff = [w - c for w, c in zip(wsd, cos)]
            cells.append({
                "budget": budget, "d_model": d, "wsd": [round(x, 4) for x in wsd],
                "cosine": [round(x, 4) for x in cos],
                "mean_diff": round(statistics.mean(diff), 4),
                "diff_sd": round(statistics.stdev(diff), 4) if len(diff) > 1 else None,
                "seed_sd_cosine": round(statistics.stdev(cos), 4) if len(cos) > 1 else None,
                "seed_sd_wsd": round(statistics.stdev(wsd), 4) if len(wsd) > 1 else None,
            })
        for kind in ("wsd", "cosine"):
            means = {d: statistics.mean(c[kind]) for c in cells
                     if c["budget"] == budget for d in [c["d_model"]]}
            profile[f"{kind} {budget:.3g}"] = {"best_d_model": min(means, key=means.get),
                                              "mean_loss": {d: round(v, 4)
                                                            for d, v in means.items()}}
    diffs = [c["mean_diff"] for c in cells]
    flops = {kind: sum(r["trained_flops"] for r in rows if r["kind"] == kind and
                       (kind == "cosine" or r["budget"] == max(BUDGETS)))
             for kind in ("wsd", "cosine")}
    print(json.dumps({
        "benchmark": "wsd_vs_cosine", "base": BASE, "sizes_d_model": SIZES,
        "budgets": BUDGETS, "seeds": args.seeds, "cells": cells, "isoflop": profile,
        "mean_diff_all": round(statistics.mean(diffs), 4),
        "mean_abs_diff": round(statistics.mean(abs(x) for x in diffs), 4),
        "mean_seed_sd_cosine": round(statistics.mean(c["seed_sd_cosine"] or 0 for c in cells),
                                     4),
        "trained_flops": flops, "wall_s": round(wall, 1), "jobs": args.jobs,
    }, indent=1))


if __name__ == "__main__":
    main()
