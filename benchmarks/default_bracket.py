"""Does the embedded default's space bracket the compute-optimal size at its budgets?

One ``budgetune search`` (grid, FIFO, WSD: one trial per size, each giving a budget point at
2e11, 6e11 and 1.8e12 FLOPs) over the `default` space's widths at depth 2, dense, fp32, its
vocabulary, sequence and batch, one learning rate (3e-3) and ``--seeds`` seeds; then
``budgetune.analysis.frontier``'s IsoFLOP profiles: a parabola in ln N per budget, whose vertex
is the budget's compute-optimal size, and whether it lies inside the sizes measured
(``status`` "ok") or beyond them ("vertex_outside_data").

The embedded default's own ASHA search cannot show this: ASHA lets one trial in three past each
rung and the pruned ones are left out of the profiles, so its larger budgets hold points of one
or two dense sizes. This grid trains every size to every budget.

    PYTHONPATH=. .venv/bin/python benchmarks/default_bracket.py [--widths 8 16 32 64]

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

from budgetune.analysis import frontier, load_results
from budgetune.search import DEFAULT_BUDGETS, SearchSpec, run_search
from budgetune.spaces import load_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    fixed = {k: v for k, v in load_space("default").dims.items() if not hasattr(v, "values")}
    space = {**fixed, "d_model": args.widths, "n_layers": 2, "share_fraction": 0.0,
             "prune_sparsity": 0.0, "quant_bits": 32, "lr": 3e-3, "seed": args.seeds}
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "sizes.yaml")
        path.write_text(yaml.safe_dump(space))
        spec = SearchSpec(space=str(path), budgets=DEFAULT_BUDGETS, searcher="grid",
                          scheduler="fifo", max_mb=None, results=root, name="bracket",
                          lr_schedule="wsd")
        t0 = time.perf_counter()
        run_search(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
        wall = time.perf_counter() - t0
        info = frontier(load_results(root, "bracket"))
    print(json.dumps({
        "benchmark": "default_bracket", "space": space, "budgets": DEFAULT_BUDGETS,
        "isoflop": [{"budget": p.budget_flops, "status": p.status,
                     "n_opt": None if p.n_opt is None else round(p.n_opt),
                     "sizes": [int(n) for n in p.n], "loss": [round(float(x), 4)
                                                              for x in p.loss]}
                    for p in info.isoflops],
        "wall_s": round(wall, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
