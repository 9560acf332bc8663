"""(a) Share-then-unshare (Yang et al. 2021), re-tested in issue 14's CPU-scale setup with WSD.

GPT-2 family, d_model 32, depth 6, 2 heads, V = 1024, T = 128, B = 16, lr 3e-3 (below the 5e-3
``cpu_setup.py`` found best for d_model 32 at depth 2, as deeper models take lower rates; not
tuned here), the `python` corpus (``--corpus``). Each switch fraction f trains one WSD main
line of C FLOPs whose first f of the steps are shared (every block one set of weights), and
branches a cooldown at 0.5·C, 0.6·C … 0.9·C: each branch is the model annealed at that budget,
with the switch where the main line put it (``main_line_flops``), as one run of Yang et al.'s
protocol. The never-shared baseline trains the same way. "FLOPs to reach the baseline" is the
smallest budget point whose loss, mean over seeds, is at or below the baseline's at C (linear
between points); the goal is ≤ 70% of C.

Trials run ``--workers`` at a time on one thread each, with no Ray. Prints one JSON object;
``--plots DIR`` writes sharing.png.

    PYTHONPATH=. .venv/bin/python benchmarks/sharing.py --budget 4e12 --plots benchmarks/figures
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

BASE = {"model": "gpt2", "d_model": 32, "n_layers": 6, "n_heads": 2, "seq_len": 128,
        "batch_size": 16, "vocab_size": 1024, "lr": 3e-3, "lr_schedule": "wsd"}
FRACTIONS = (0.0, 0.1, 0.25, 0.5)
SCALES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
EVAL_TOKENS = 16384


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


def _train(job: dict) -> dict:
    from budgetune.spaces import Schedule
    from budgetune.trainables import Trial, TrialConfig

    t0 = time.perf_counter()
    s = Schedule(**BASE, share_fraction=job["fraction"], seed=job["seed"])
    c = job["budget"]
    trial = Trial(s, c, TrialConfig(points=tuple(f * c for f in SCALES[:-1]), n_reports=1,
                                    eval_tokens=EVAL_TOKENS, corpus=job["corpus"]))
    losses = {f"{r.budget_flops / c:.2f}": r.val_loss for r in trial.run()
              if r.point or r.completed}
    return {**job, "losses": losses, "wall_s": round(time.perf_counter() - t0, 1)}


def _needed(means: dict[float, float], target: float) -> float | str | None:
    """The smallest budget scale whose mean loss reaches ``target``, linear between points."""
    scales = sorted(means)
    if means[scales[0]] <= target:
        return f"<= {scales[0]}"
    for s0, s1 in zip(scales, scales[1:]):
        if means[s1] <= target:
            return round(s0 + (s1 - s0) * (means[s0] - target) / (means[s0] - means[s1]), 3)
    return None


def main() -> None:
    from budgetune.trainables import prepare_corpus

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=4e12, help="C, in FLOPs")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--corpus", default="python", help="what the trials train on (--corpus)")
    p.add_argument("--plots", type=Path)
    a = p.parse_args()
    corpus = prepare_corpus(a.corpus, [BASE["vocab_size"]])  # built once, before the workers
    jobs = [{"fraction": f, "seed": s, "budget": a.budget, "corpus": corpus}
            for f in FRACTIONS for s in range(a.seeds)]
    t0, rows = time.perf_counter(), []
    with mp.get_context("spawn").Pool(a.workers, initializer=_init_worker) as pool:
        for r in pool.imap_unordered(_train, jobs):
            rows.append(r)
            print(f"[{time.perf_counter() - t0:6.0f} s] {len(rows)}/{len(jobs)} fraction "
                  f"{r['fraction']} seed {r['seed']}: "
                  f"{ {k: round(v, 4) for k, v in r['losses'].items()} }",
                  file=sys.stderr, flush=True)
    table = {}
    for f in FRACTIONS:
        mine = [r for r in rows if r["fraction"] == f]
        table[f] = {s: [r["losses"][f"{s:.2f}"] for r in mine] for s in SCALES}
    target = statistics.mean(table[0.0][1.0])
    out = {"benchmark": "sharing", "corpus": a.corpus, "base": BASE, "C": a.budget,
           "seeds": a.seeds, "eval_tokens": EVAL_TOKENS, "baseline_at_C": round(target, 4),
           "baseline_seed_spread_at_C": round(max(table[0.0][1.0]) - min(table[0.0][1.0]), 4),
           "rows": [{"fraction": f, "needed_scale": _needed(
               {s: statistics.mean(v) for s, v in table[f].items()}, target),
               "by_scale": {f"{s:.2f}": {"mean": round(statistics.mean(v), 4),
                                          "min": round(min(v), 4), "max": round(max(v), 4)}
                            for s, v in table[f].items()}} for f in FRACTIONS],
           "wall_s": round(time.perf_counter() - t0, 1)}
    if a.plots:
        import matplotlib.figure

        fig = matplotlib.figure.Figure(figsize=(6, 4))
        ax = fig.subplots()
        for row in out["rows"]:
            xs = [float(s) for s in row["by_scale"]]
            ys = [v["mean"] for v in row["by_scale"].values()]
            lo = [v["mean"] - v["min"] for v in row["by_scale"].values()]
            hi = [v["max"] - v["mean"] for v in row["by_scale"].values()]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=2,
                        label=f"shared for {row['fraction']:.0%}" if row["fraction"]
                        else "never shared")
        ax.axhline(target, ls=":", color="k", lw=0.8, label="baseline at C")
        ax.set(xlabel="budget point / C", ylabel="val loss (mean, seed range)",
               title=f"(a) share-then-unshare, d{BASE['d_model']} depth {BASE['n_layers']}, "
               f"C = {a.budget:.3g}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(a.plots / "sharing.png", dpi=110)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
