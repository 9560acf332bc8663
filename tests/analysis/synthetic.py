"""Results tables written through budgetune.results from known laws or by hand."""

from __future__ import annotations

import numpy as np

from budgetune.results import SCHEMA_VERSION, ResultsWriter
from budgetune.spaces import Schedule

SEARCH_ID = "synthetic0001"
TRUE_LAW = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.28}


def law(n, d, p=TRUE_LAW):
    return p["E"] + p["A"] / np.power(n, p["alpha"]) + p["B"] / np.power(d, p["beta"])


def _base(experiment: str, trial_id: str, budget: float, schedule: Schedule,
          corpus_id: str) -> dict:
    return {"search_id": SEARCH_ID, "experiment": experiment, "trial_id": trial_id,
            "budget_flops": budget, "corpus_id": corpus_id, "schema_version": SCHEMA_VERSION,
            "budgetune_version": "test", **schedule.to_dict()}


def trial_rows(experiment, trial_id, budget, n, final_loss, *, status="done",
               stop_reason="budget", schedule=None, steps=(1, 2, 3), bytes_=None,
               sparsity=0.0, corpus_id="c0", loss_curve=None):
    """Reports (one per step) and a trials row for one trial of N = n and a final loss."""
    schedule = schedule or Schedule()
    base = _base(experiment, trial_id, budget, schedule, corpus_id)
    tokens_final = budget / (6 * n)
    reports = []
    for k, step in enumerate(steps):
        frac = step / steps[-1]
        loss = loss_curve(frac) if loss_curve else final_loss + 0.3 * (1 - frac)
        reports.append({
            **base, "step": step, "tokens": int(tokens_final * frac), "epochs": 0.1 * frac,
            "train_flops": budget * frac, "spent_flops": budget * frac, "eval_tokens": 8192,
            "point": frac == 1.0 and status == "done", "val_loss_se": 0.01,
            "eval_flops": 1e9 * (k + 1), "wall_s": 1.0 + k,
            "train_s": 0.9 + k, "current_lr": 1e-3, "train_loss": loss, "n_params": int(n * 1.2),
            "n_params_nonemb": int(n), "shared": False, "val_loss": loss, "unigram_loss": 7.0,
            "val_loss_compressed": loss, "compressed_bytes": int(bytes_ or 4 * n * 1.2),
            "sparsity": sparsity, "feasible": True, "completed": frac == 1.0,
        })
    trial = {**base, "status": status, "stop_reason": stop_reason, "last_step": steps[-1],
             "train_flops": budget, "spent_flops": budget,
             "val_loss_compressed": reports[-1]["val_loss_compressed"],
             "node": "node-0"}
    return reports, trial


def grid_row(experiment, trial_id, budget, sparsity, bits, loss, nbytes, one_shot,
             corpus_id="c0"):
    return {"search_id": SEARCH_ID, "experiment": experiment, "trial_id": trial_id,
            "budget_flops": budget, "corpus_id": corpus_id, "schema_version": SCHEMA_VERSION,
            "budgetune_version": "t",
            "sparsity": sparsity, "quant_bits": bits, "val_loss_compressed": loss,
            "compressed_bytes": nbytes, "one_shot": one_shot}


def write(root, name, reports, trials, grid=()):
    with ResultsWriter(root, name) as w:
        w.append("reports", list(reports))
        w.append("trials", list(trials))
        w.append("grid", list(grid))


def law_results(root, noise=0.005, seed=0, budgets=(1e15, 3e15, 1e16, 3e16, 1e17),
                sizes=np.logspace(5.5, 8, 7), name="synthetic"):
    """A search drawn from TRUE_LAW with multiplicative noise: 5 budgets × 7 sizes."""
    rng = np.random.default_rng(seed)
    reports, trials = [], []
    for b in budgets:
        for n in sizes:
            d = b / (6 * n)
            tid = f"t{len(trials):03d}"
            def curve(frac, n=n, d=d):
                return float(law(n, d * frac) * np.exp(rng.normal(0, noise)))

            r, t = trial_rows(f"exp-{b:.0e}", tid, b, n, None, steps=(1, 2, 3, 4),
                              loss_curve=curve)
            reports += r
            trials.append(t)
    write(root, name, reports, trials)
    return root
