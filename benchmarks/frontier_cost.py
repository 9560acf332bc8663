"""The cost of a 3-budget frontier: one WSD search against three cosine searches, same trials.

Both train every schedule of a small grid (GPT-2 family, 4 sizes, no sharing or
compression, one learning rate) at every budget, without early stopping (FIFO), so they train
the same trials: WSD as one Tune experiment whose trials are planned for the largest budget
and branch a cooldown at each smaller one; cosine as one experiment per budget, one after
another. Compared: training FLOPs spent (``spent_flops``, branches included), wall time, and
the best loss each finds per budget. The FLOPs ratio is fixed by the budgets alone:
(C_max + cooldown_fraction · Σ smaller C) / Σ C.

    PYTHONPATH=. .venv/bin/python benchmarks/frontier_cost.py [--budget 2e11 6e11 1.8e12]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from budgetune.analysis import budget_best, load_results
from budgetune.results import read_table
from budgetune.search import SearchSpec, run_search

SPACE = {"model": "gpt2", "d_model": [32, 64], "n_layers": [1, 2], "n_heads": 2,
         "seq_len": 64, "batch_size": 16, "vocab_size": 4096, "share_fraction": 0.0,
         "prune_sparsity": 0.0, "quant_bits": 32, "lr": 3e-3}


def _search(root: str, space: Path, budgets: tuple[float, ...], lr_schedule: str) -> dict:
    spec = SearchSpec(space=str(space), budgets=budgets, searcher="grid", scheduler="fifo",
                      max_mb=None, results=root, name=lr_schedule, lr_schedule=lr_schedule,
                      eval_tokens=8192)
    t0 = time.perf_counter()
    run_search(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    trials = read_table(spec.folder(), "trials")
    best = budget_best(load_results(root, lr_schedule), sorted(budgets), None)
    return {"wall_s": round(wall, 1), "trials": int(len(trials)),
            "experiments": sorted(set(trials["experiment"])),
            "spent_flops": float(trials["spent_flops"].sum()),
            "best": {f"{b.budget_flops:.3g}": {"d_model": b.d_model, "n_layers": b.n_layers,
                                               "val_loss": round(b.loss_mean, 4)}
                     for b in best}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, nargs="+", default=[2e11, 6e11, 1.8e12])
    args = parser.parse_args()
    budgets = tuple(sorted(args.budget))
    with tempfile.TemporaryDirectory() as root:
        space = Path(root, "sizes.yaml")
        space.write_text(yaml.safe_dump(SPACE))
        runs = {kind: _search(root, space, budgets, kind) for kind in ("wsd", "cosine")}
    expected = (budgets[-1] + 0.2 * sum(budgets[:-1])) / sum(budgets)
    print(json.dumps({
        "benchmark": "frontier_cost", "budgets": budgets, "space": SPACE, **runs,
        "flops_ratio": round(runs["wsd"]["spent_flops"] / runs["cosine"]["spent_flops"], 3),
        "flops_ratio_expected": round(expected, 3),
        "wall_ratio": round(runs["wsd"]["wall_s"] / runs["cosine"]["wall_s"], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
