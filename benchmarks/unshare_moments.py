"""AdamW's moments at the unsharing switch: copied as they are, or scaled to one depth's share.

While B depths share a parameter, autograd sums their gradients into it, so AdamW's moments
hold the sum: m ≈ B·ḡ, v ≈ B²·ḡ². After the switch each depth's own gradient is about ḡ, so a
copy taken as is makes steps m/√v that shrink towards 1/B as m forgets its past (~1/(1−β₁)
steps) while v still remembers B²·ḡ² (~1/(1−β₂) steps). The other convention divides the copies
by one depth's share: m/B, v/B².

Paired: each seed trains once up to the switch; that state is saved and continued under each
convention, so both see the same weights, batches and learning rates. Compared: the mean
training loss over the ``--window`` steps after the switch, the validation loss at the end of
that window, and the final validation loss at the end of the budget.

    PYTHONPATH=. .venv/bin/python benchmarks/unshare_moments.py [--seeds 0 1 2]

Prints one JSON object. GPT-2 family, d_model 64, depth 4, sequence 64, batch 16, 1 thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

CONVENTIONS = {"as_is": False, "per_depth": True}


def _unshare(trial, divide: bool) -> None:
    """``Trial.unshare`` with the convention chosen here."""
    from budgetune.trainables import transfer_optimizer_state, unshare_blocks
    from budgetune.trainables._trial import _make_optimizer

    blocks, mapping = unshare_blocks(trial.blocks)
    trial.family.set_blocks(trial.model, blocks)
    optimizer = _make_optimizer(trial.model, trial.schedule)
    transfer_optimizer_state(trial.optimizer, optimizer, mapping, per_depth=divide)
    trial.optimizer = optimizer


def _seed(args, seed: int) -> dict:
    from budgetune.flops import flops_per_step
    from budgetune.spaces import Schedule
    from budgetune.trainables import Trial, TrialConfig

    s = Schedule(d_model=args.d_model, n_layers=args.n_layers, n_heads=2, seq_len=64,
                 batch_size=16, share_fraction=args.share_fraction, lr=args.lr, seed=seed)
    budget = (args.steps + 0.5) * flops_per_step(s)
    config = TrialConfig(eval_tokens=args.eval_tokens, n_reports=1)
    trial = Trial(s, budget, config)
    while trial.step < trial.switch_step:
        trial._train_step()
    state = trial.state_dict()
    out = {"switch_step": trial.switch_step, "total_steps": trial.total_steps}
    for name, divide in CONVENTIONS.items():
        run = Trial(s, budget, config)
        run.load_state_dict(state)
        _unshare(run, divide)
        losses = []
        for _ in range(args.window):
            run._train_step()
            losses.append(run.last_train_loss)
        window_val = run.evaluate()
        while run.step < run.total_steps:
            run._train_step()
        out[name] = {"train_loss_window": statistics.fmean(losses), "val_loss_window_end":
                     window_val, "val_loss_final": run.evaluate()}
    return out


def _summary(per_seed: list[dict]) -> dict:
    out = {}
    for metric in ("train_loss_window", "val_loss_window_end", "val_loss_final"):
        diffs = [r["per_depth"][metric] - r["as_is"][metric] for r in per_seed]
        row = {name: {"mean": statistics.fmean(r[name][metric] for r in per_seed),
                      "min": min(r[name][metric] for r in per_seed),
                      "max": max(r[name][metric] for r in per_seed)} for name in CONVENTIONS}
        row["per_depth_minus_as_is"] = {"mean": statistics.fmean(diffs), "min": min(diffs),
                                        "max": max(diffs)}
        out[metric] = row
    return out


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--share-fraction", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=0.0)  # the family default
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--eval-tokens", type=int, default=8192)
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    per_seed = [{"seed": seed, **_seed(args, seed)} for seed in args.seeds]
    print(json.dumps({"setting": vars(args), "per_seed": per_seed,
                      "summary": _summary(per_seed),
                      "wall_s": round(time.perf_counter() - t0, 1)}, indent=1))


if __name__ == "__main__":
    main()
