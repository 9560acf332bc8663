"""Frontier extrapolation: fit L(C) on budgets up to C/4, predict the best loss at C.

One ``budgetune search`` trains a grid of model sizes (GPT-2 family, d_model × depth, no
sharing or compression, one learning rate) to completion (FIFO) at budgets C/16, C/8, C/4 and at
C. The envelope of the runs at budgets ≤ C/4 is fitted with L(C) = E + A·C^(−α)
(``budgetune.analysis.frontier``, Huber in log space as Hoffmann et al. 2022), and its value
at C is compared with the best final loss measured at C: the relative error on the loss, and
on its reducible part L − E. Prints one JSON object.

    .venv/bin/python benchmarks/frontier_extrapolation.py [--budget 2.4e12]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from budgetune.analysis import Results, frontier, load_results
from budgetune.search import SearchSpec, run_search

SPACE = {"model": "gpt2", "d_model": [32, 64, 96], "n_layers": [2, 4], "n_heads": 2,
         "seq_len": 64, "batch_size": 16, "vocab_size": 4096, "share_fraction": 0.0,
         "prune_sparsity": 0.0, "quant_bits": 32, "lr": 3e-3}
FRACTIONS = (1 / 16, 1 / 8, 1 / 4)  # of C: the budgets the fit sees


def _up_to(results: Results, budget: float) -> Results:
    keep = results.trials.loc[results.trials["budget_flops"] <= budget,
                              ["experiment", "trial_id"]]
    return Results(results.reports.merge(keep, on=["experiment", "trial_id"]),
                   results.trials.merge(keep, on=["experiment", "trial_id"]),
                   results.grid.merge(keep, on=["experiment", "trial_id"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.4e12, help="C, in FLOPs")
    args = parser.parse_args()
    c = args.budget
    budgets = (*[f * c for f in FRACTIONS], c)
    with tempfile.TemporaryDirectory() as root:
        space = Path(root, "sizes.yaml")
        space.write_text(yaml.safe_dump(SPACE))
        spec = SearchSpec(space=str(space), budgets=budgets, searcher="grid",
                          scheduler="fifo", max_mb=None, results=root, name="frontier")
        t0 = time.perf_counter()
        run_search(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
        wall = time.perf_counter() - t0
        results = load_results(root, "frontier")
    fit = frontier(_up_to(results, c / 4), column="val_loss").compute_fit
    done = results.trials[(results.trials["status"] == "done")]
    best = done.groupby("budget_flops")["val_loss_compressed"].min()  # = val_loss: no compression
    measured = float(best[c])
    predicted = float(fit.loss(c))
    print(json.dumps({
        "benchmark": "frontier_extrapolation", "C": c, "fit_budgets": list(budgets[:-1]),
        "space": SPACE, "fit": {k: fit.to_dict()[k] for k in ("E", "A", "alpha", "status",
                                                             "n_points")},
        "best_by_budget": {f"{b:.3g}": round(float(v), 4) for b, v in best.items()},
        "predicted_at_C": round(predicted, 4), "measured_at_C": round(measured, 4),
        "relative_error_loss": round(abs(predicted - measured) / measured, 4),
        "relative_error_reducible": round(abs(predicted - measured) / (measured - fit.E), 4),
        "trials": int(len(results.trials)), "wall_s": round(wall, 1),
    }))


if __name__ == "__main__":
    main()
