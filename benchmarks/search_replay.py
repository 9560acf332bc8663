"""Search efficiency on a space that separates the strategies: TPE against random search.

1. The exhaustive grid of the space's *training* recipes (width × depth × learning rate ×
   pruning target) is trained once with ``budgetune search --searcher grid`` (FIFO, one budget).
   Quantization is post-training: each trial's compression grid already holds its loss at 8 and
   4 bits, so the table covers every schedule of the full space (× quant_bits) from the trials
   of the training grid alone, exactly as a search that trained that schedule would measure it
   (same weights, same validation windows).
2. Each strategy is replayed against that table: Optuna's sampler, configured as
   ``budgetune search`` configures it (TPE: seeded, constant liar, the same startup trials;
   random: seeded), asks for schedules one at a time through the search's own
   ``define_by_run``, and is told each one's ``val_loss_compressed``. A schedule proposed again
   costs nothing (the search tells the searcher its known result, DedupSearcher); every new one
   costs the budget. "FLOPs to find" = FLOPs spent up to the first schedule within 1% of the
   table's best, as a fraction of the whole space's grid (every schedule × the budget).

Sequential (one trial at a time) and FIFO: ASHA is not replayed. ``--seeds`` replays per
strategy. Prints one JSON object.

    PYTHONPATH=. .venv/bin/python benchmarks/search_replay.py [--budget 3e11] [--seeds 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

TRAINING = {"model": "gpt2", "d_model": [32, 64], "n_layers": [1, 2], "n_heads": 2,
            "seq_len": 64, "batch_size": 16, "vocab_size": 4096, "share_fraction": 0.0,
            "lr": [3e-4, 1e-3, 3e-3, 1e-2], "prune_sparsity": [0.0, 0.5, 0.75],
            "quant_bits": 32}
QUANT_BITS = [32, 8, 4]  # the full space adds this choice to TRAINING
KEY = ("d_model", "n_layers", "lr", "prune_sparsity", "quant_bits")


def _table(budget: float) -> tuple[dict[tuple, float], float]:
    """(schedule key -> val_loss_compressed) for the full space, and the grid's wall."""
    from budgetune.analysis import load_results
    from budgetune.search import SearchSpec, run_search

    with tempfile.TemporaryDirectory() as root:
        space = Path(root, "training.yaml")
        space.write_text(yaml.safe_dump(TRAINING))
        spec = SearchSpec(space=str(space), budgets=(budget,), searcher="grid",
                          scheduler="fifo", max_mb=None, results=root, name="training",
                          eval_tokens=8192)
        t0 = time.perf_counter()
        run_search(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
        wall = time.perf_counter() - t0
        results = load_results(root, "training")
    trials, grid = results.trials, results.grid
    cells = grid.merge(trials[["trial_id", *KEY[:-1]]], on="trial_id")
    trained = cells[~cells["one_shot"].astype(bool)]  # at the trained sparsity
    table = {(int(r.d_model), int(r.n_layers), float(r.lr), float(r.prune_sparsity),
              int(r.quant_bits)): float(r.val_loss_compressed) for r in trained.itertuples()}
    return table, wall


def _replay(table: dict[tuple, float], strategy: str, seed: int, n_max: int,
            budget: float, target: float) -> dict:
    import optuna

    from budgetune.spaces import define_by_run, load_space

    full = Path(tempfile.mkdtemp(), "full.yaml")
    full.write_text(yaml.safe_dump({**TRAINING, "quant_bits": QUANT_BITS}))
    ask = define_by_run(load_space(str(full)))
    sampler = (optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                          n_startup_trials=min(10, max(3, n_max // 3)))
               if strategy == "tpe" else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(sampler=sampler, direction="minimize")
    seen, spent = set(), 0.0
    for k in range(1, n_max + 1):
        trial = study.ask()
        config = {**ask(trial), **trial.params}
        key = tuple(type(v)(config[name]) for name, v in zip(KEY, (0, 0, 0.0, 0.0, 0)))
        if key not in seen:
            seen.add(key)
            spent += budget
        loss = table[key]
        study.tell(trial, loss)
        if loss <= 1.01 * target:
            return {"seed": seed, "found": True, "proposals": k, "trained": len(seen),
                    "flops": spent}
    return {"seed": seed, "found": False, "proposals": n_max, "trained": len(seen),
            "flops": spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=3e11)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--num-samples", type=int, default=48,
                        help="proposals per replayed search at most")
    args = parser.parse_args()
    table, wall = _table(args.budget)
    target = min(table.values())
    grid_flops = len(table) * args.budget
    within = sorted(k for k, v in table.items() if v <= 1.01 * target)
    out = {"benchmark": "search_replay", "budget": args.budget, "training_space": TRAINING,
           "quant_bits": QUANT_BITS, "schedules": len(table), "grid_train_wall_s": round(
               wall, 1), "best": round(target, 4), "within_1pct": within}
    for strategy in ("tpe", "random"):
        runs = [_replay(table, strategy, seed, args.num_samples, args.budget, target)
                for seed in range(args.seeds)]
        fractions = [r["flops"] / grid_flops for r in runs]
        out[strategy] = {"found": sum(r["found"] for r in runs),
                         "median_fraction_of_grid": round(statistics.median(fractions), 4),
                         "mean_fraction_of_grid": round(statistics.mean(fractions), 4),
                         "median_trained": statistics.median(r["trained"] for r in runs),
                         "runs": runs}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
