"""Results tables (current schema) written through budgetune.results from laws or by hand.

Tokens come from the trainer's own FLOPs per token (``budgetune.flops``), not 6·N: a trial of
schedule s at budget C trains ``plan_steps(s, C)`` steps of ``tokens_per_step(s)`` tokens.
"""

from __future__ import annotations

import numpy as np

from budgetune.flops import flops_per_step, n_params_nonemb_computed, plan_steps, tokens_per_step
from budgetune.results import SCHEMA_VERSION, ResultsWriter
from budgetune.spaces import Schedule

TRUE_LAW = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.28}
SEARCH_ID = "synthetic0001"
# One shape family: d_model = 32·n_layers, head width 32, d_ff = 4·d_model (N = 12·L·d²).
FAMILY = [Schedule(d_model=32 * n, n_layers=n, n_heads=n, seq_len=128, batch_size=32)
          for n in (2, 3, 4, 6, 8, 11, 16)]


def law(n, d, p=TRUE_LAW):
    return p["E"] + p["A"] / np.power(n, p["alpha"]) + p["B"] / np.power(d, p["beta"])


def _base(experiment: str, trial_id: str, budget: float, schedule: Schedule,
          corpus_id: str, search_id: str) -> dict:
    return {"search_id": search_id, "experiment": experiment, "trial_id": trial_id,
            "budget_flops": budget, "corpus_id": corpus_id, "schema_version": SCHEMA_VERSION,
            "budgetune_version": "test", **schedule.to_dict()}


def trial_rows(experiment, trial_id, budget, n, final_loss, *, status="done",
               stop_reason="budget", schedule=None, steps=(1, 2, 3), bytes_=None,
               sparsity=0.0, corpus_id="c0", loss_curve=None, search_id=SEARCH_ID,
               val_loss=None, se=0.01, diff_se=0.0):
    """Reports (one per step) and a trials row for one trial.

    ``n`` is the reported ``n_params_nonemb``; tokens follow the trainer's plan for
    ``schedule`` at ``budget``. A completed trial (status done, stop reason budget) reports a
    budget point at its last step; a stopped one reports only part of its budget, no point.
    ``val_loss`` (uncompressed) defaults to the compressed loss; ``diff_se`` is the target's
    paired standard error against it (0: the target is the model as is)."""
    schedule = schedule or Schedule()
    base = _base(experiment, trial_id, budget, schedule, corpus_id, search_id)
    total_steps = plan_steps(schedule, budget, min_steps=1)
    done = status == "done" and stop_reason == "budget"
    reach = 1.0 if done else 1 / 3  # a stopped trial got a third of the way (ASHA's rung)
    reports = []
    for k, step in enumerate(steps):
        frac = reach * step / steps[-1]
        loss = loss_curve(frac) if loss_curve else final_loss + 0.3 * (1 - frac)
        uncompressed = val_loss if (val_loss is not None and frac == 1.0) else loss
        n_steps = max(1, int(total_steps * frac))
        flops = n_steps * flops_per_step(schedule)
        reports.append({
            **base, "point": done and frac == 1.0, "step": n_steps,
            "tokens": n_steps * tokens_per_step(schedule), "epochs": 0.1 * frac,
            "train_flops": flops, "spent_flops": flops, "eval_flops": 1e9 * (k + 1),
            "eval_tokens": 8192, "wall_s": 1.0 + k, "train_s": 0.9 + k, "current_lr": 1e-3,
            "train_loss": loss, "n_params": int(n * 1.2), "n_params_nonemb": int(n),
            "shared": False, "val_loss": uncompressed, "val_loss_se": se, "unigram_loss": 7.0,
            "val_loss_compressed": loss, "val_loss_diff_se": diff_se,
            "compressed_bytes": int(bytes_ or 4 * n * 1.2),
            "sparsity": sparsity, "feasible": True, "completed": done and frac == 1.0,
            "share_fraction_effective": float(schedule.share_fraction),
            "main_line_flops": float(budget),
        })
    last = reports[-1]
    trial = {**base, "status": status, "stop_reason": stop_reason, "last_step": last["step"],
             "train_flops": last["train_flops"], "spent_flops": last["spent_flops"],
             "val_loss_compressed": last["val_loss_compressed"], "node": "node-0"}
    return reports, trial


def grid_row(experiment, trial_id, budget, sparsity, bits, loss, nbytes, one_shot,
             corpus_id="c0", search_id=SEARCH_ID, diff_se=float("nan")):
    return {"search_id": search_id, "experiment": experiment, "trial_id": trial_id,
            "budget_flops": budget, "corpus_id": corpus_id, "schema_version": SCHEMA_VERSION,
            "budgetune_version": "t", "sparsity": sparsity, "quant_bits": bits,
            "val_loss_compressed": loss, "val_loss_diff_se": diff_se,
            "compressed_bytes": nbytes, "one_shot": one_shot}


def hand_made_rows():
    """Three completed trials and one stopped early, with compression grids."""
    rows, trials, grid = [], [], []
    specs = [  # trial, budget, N, final loss, bytes, d_model
        ("small", 1e12, 1e5, 4.0, 1_000_000, 64),
        ("large", 1e12, 1e6, 3.5, 8_000_000, 256),
        ("bigger_budget", 1e13, 1e6, 3.0, 8_000_000, 256),
    ]
    for tid, budget, n, loss, nbytes, d in specs:
        r, t = trial_rows("e", tid, budget, n, loss, bytes_=nbytes,
                          schedule=Schedule(d_model=d, n_heads=4))
        rows += r
        trials.append(t)
    # The large model compressed hard fits in 1.5 MB and still beats the small one.
    grid += [grid_row("e", "large", 1e12, 0.75, 4, 3.8, 1_400_000, True),
             grid_row("e", "large", 1e12, 0.5, 8, 3.6, 3_000_000, True),
             grid_row("e", "small", 1e12, 0.5, 8, 4.2, 400_000, True)]
    # A trial stopped early with a lower loss must never be offered.
    r, t = trial_rows("e", "stopped", 1e12, 1e6, 2.0, status="stopped", stop_reason="asha",
                      schedule=Schedule(d_model=256, n_heads=4, lr=1e-3))
    return rows + r, trials + [t], grid


def write(root, name, reports, trials, grid=()):
    with ResultsWriter(root, name) as w:
        w.append("reports", list(reports))
        w.append("trials", list(trials))
        w.append("grid", list(grid))


def law_results(root, noise=0.005, seed=0, budgets=(1e15, 3e15, 1e16, 3e16, 1e17),
                family=FAMILY, name="synthetic", stopped=True, compressed_penalty=None,
                twin_penalty=None, pruned_penalty=None):
    """A search drawn from TRUE_LAW with multiplicative noise: budgets × the shape family.

    N is the family's 12·L·d², D the trainer's tokens for that shape and budget. At every
    budget one more trial of each of two sizes was stopped early by ASHA (no budget point, a
    loss below the law's optimum that must never be fitted or offered).
    ``compressed_penalty(n)``: nats added to val_loss_compressed only (as a 4-bit, 90%-sparse
    target would), val_loss stays lawful. ``twin_penalty(n)``: a second recipe at every size
    (another lr) whose val_loss is that much worse: the same N twice at one budget.
    ``pruned_penalty(n)``: at every budget, sparse-trained recipes (prune_sparsity 0.5) of
    shapes between the family's (n_layers 5 and 10): as in the trainer, pruning happens in
    training, so their val_loss is the sparse model's, that much worse than the law at their
    dense N (which they report)."""
    rng = np.random.default_rng(seed)
    reports, trials = [], []
    for b in budgets:
        for s in family:
            n = n_params_nonemb_computed(s)
            d = plan_steps(s, b, min_steps=1) * tokens_per_step(s)
            twins = [(s, 0.0)] + ([(s.replace(lr=1e-3), twin_penalty(n))] if twin_penalty
                                  else [])
            for schedule, extra in twins:
                final = float(law(n, d) * np.exp(rng.normal(0, noise))) + extra
                penalty = compressed_penalty(n) if compressed_penalty else 0.0

                def curve(frac, n=n, d=d, extra=extra, final=final, penalty=penalty):
                    if frac == 1.0:
                        return final + penalty
                    return float(law(n, d * frac)) + extra + penalty

                r, t = trial_rows(f"exp-{b:.0e}", f"t{len(trials):03d}", b, n, None,
                                  steps=(1, 2, 3, 4), loss_curve=curve, schedule=schedule,
                                  val_loss=final)
                reports += r
                trials.append(t)
        if stopped:
            for s in family[:2]:
                r, t = trial_rows(f"exp-{b:.0e}", f"t{len(trials):03d}", b,
                                  n_params_nonemb_computed(s), None, status="stopped",
                                  stop_reason="asha", schedule=s, steps=(1, 2),
                                  loss_curve=lambda frac: 1.0)
                reports += r
                trials.append(t)
        if pruned_penalty:
            for layers in (5, 10):
                s = family[0].replace(d_model=32 * layers, n_layers=layers, n_heads=layers,
                                      prune_sparsity=0.5)
                n = n_params_nonemb_computed(s)
                d = plan_steps(s, b, min_steps=1) * tokens_per_step(s)
                sparse = float(law(n, d)) + pruned_penalty(n)
                r, t = trial_rows(f"exp-{b:.0e}", f"t{len(trials):03d}", b, n, sparse,
                                  steps=(1, 2, 3, 4), schedule=s, sparsity=0.5)
                reports += r
                trials.append(t)
    write(root, name, reports, trials)
    return root


def true_allocation(budget: float, family_member: Schedule = FAMILY[0]) -> float:
    """The N that minimises TRUE_LAW at ``budget`` along the family's shapes, with D from the
    trainer's FLOPs per token (a fine scan over continuous n_layers; d = 32·n_layers)."""
    from types import SimpleNamespace

    from budgetune.flops import flops_per_token

    s = family_member
    layers = np.exp(np.linspace(np.log(0.5), np.log(400), 20000))
    d_model = 32.0 * layers
    n = 12 * layers * d_model**2
    fpt = np.array([flops_per_token(SimpleNamespace(
        model=s.model, n_layers=L, d_model=d, d_ff=4 * d, seq_len=s.seq_len,
        vocab_size=s.vocab_size)) for L, d in zip(layers, d_model)])
    return float(n[np.argmin(law(n, budget / fpt))])


# Effective-size factors of cells (quant_bits, trained sparsity), after Frantar et al. 2025.
TRUE_FACTORS = {(32, 0.0): 1.0, (8, 0.0): 1.0, (4, 0.0): 0.92,
                (32, 0.5): 0.87, (8, 0.5): 0.87, (4, 0.5): 0.80}
# One-shot pruning beyond the trained sparsity (no fine-tuning) is far worse than training to
# it, and not one factor of the cell: the compression-aware law must leave it out.
ONE_SHOT_FACTORS = {0.5: 0.5, 0.75: 0.2, 0.9: 0.05}


def compression_results(root, factors=TRUE_FACTORS, noise=0.005, cell_noise=0.002, seed=0,
                        budgets=(1e15, 3e15, 1e16, 3e16, 1e17), family=FAMILY,
                        name="compressed"):
    """A search drawn from TRUE_LAW with compression: every shape of ``family`` at every
    budget, trained dense and trained to 50% sparsity, each budget point with its grid.

    A trained cell c = (bits, trained sparsity) has loss L(N·e_c, D)·exp(m + ε): m the model's
    own noise (shared by its cells), ε the cell's; the point's val_loss is its 32-bit cell (a
    sparse-trained model's val_loss is the pruned model's). Cells pruned one-shot beyond the
    trained sparsity follow ``ONE_SHOT_FACTORS`` × the bits' factor instead. Sizes are
    ``budgetune.sizes.schedule_bytes`` of each shape."""
    from budgetune.sizes import schedule_bytes

    rng = np.random.default_rng(seed)
    reports, trials, grid = [], [], []
    for b in budgets:
        for s in family:
            n = n_params_nonemb_computed(s)
            d = plan_steps(s, b, min_steps=1) * tokens_per_step(s)
            for trained in sorted({sp for _, sp in factors}):
                schedule = s.replace(prune_sparsity=trained)
                tid, m = f"t{len(trials):03d}", rng.normal(0, noise)
                loss = {bits: float(law(n * factors[(bits, trained)], d)
                                    * np.exp(m + rng.normal(0, cell_noise)))
                        for bits, sp in factors if sp == trained}
                r, t = trial_rows(f"exp-{b:.0e}", tid, b, n, loss[32], schedule=schedule,
                                  val_loss=loss[32], sparsity=trained,
                                  bytes_=schedule_bytes(schedule, trained, 32), search_id=name)
                reports += r
                trials.append(t)
                for bits, value in loss.items():
                    grid.append(grid_row(f"exp-{b:.0e}", tid, b, trained, bits, value,
                                         schedule_bytes(schedule, trained, bits), False,
                                         search_id=name))
                for sp, e in ONE_SHOT_FACTORS.items():
                    for bits in loss if sp > trained else ():
                        value = float(law(n * e * factors.get((bits, 0.0), 1.0), d) * np.exp(m))
                        grid.append(grid_row(f"exp-{b:.0e}", tid, b, sp, bits, value,
                                             schedule_bytes(schedule, sp, bits), True,
                                             search_id=name))
    write(root, name, reports, trials, grid)
    return root
