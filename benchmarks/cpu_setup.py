"""Choosing a CPU-scale setup where seeds agree: a learning rate per size, then the seed spread.

Issue 14 asks for a setup (vocabulary, sequence length, a learning rate per size) where the
dense baseline's seeds agree within 0.05 nats at the smallest budget used, so that the seeds'
findings can be re-tested on differences larger than the noise. Fixed here: GPT-2 family,
depth 2, 2 heads, V = 1024, T = 128, B = 16 (the embedded default's shape, which
``default_bracket.py`` showed brackets the compute-optimal width at 6e11–1.8e12 FLOPs), the
built-in corpus (``--corpus``), WSD with budget points.

- ``--part lr``: each width × each learning rate, one seed, trained with WSD to ``--budget``
  with budget points at ``--points``; the annealed loss at every point.
- ``--part seeds``: each width at its chosen learning rate (``--lr-of d=lr ...``) × ``--seeds``
  seeds: the spread (max − min) of the annealed loss at every point.

Trials run ``--workers`` at a time (one thread each), with no Ray: the choice of setup is not a
test of the search. Prints one JSON object.

    PYTHONPATH=. .venv/bin/python benchmarks/cpu_setup.py --part lr --widths 16 32 64 \\
        --lrs 1.5e-3 3e-3 6e-3 --budget 1.6e12 --points 4e11 8e11
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time

BASE = {"model": "gpt2", "n_layers": 2, "n_heads": 2, "seq_len": 128, "batch_size": 16,
        "vocab_size": 1024, "lr_schedule": "wsd"}
EVAL_TOKENS = 32768


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


def _train(job: dict) -> dict:
    from budgetune.spaces import Schedule
    from budgetune.trainables import Trial, TrialConfig

    t0 = time.perf_counter()
    s = Schedule(**BASE, d_model=job["d_model"], lr=job["lr"], seed=job["seed"])
    points = tuple(p for p in job["points"] if p < job["budget"])
    trial = Trial(s, job["budget"], TrialConfig(points=points, eval_tokens=EVAL_TOKENS,
                                                n_reports=1, corpus=job["corpus"]))
    losses = {f"{r.budget_flops:.3g}": round(r.val_loss, 4) for r in trial.run()
              if r.point or r.completed}
    return {**job, "losses": losses, "unigram": round(trial.unigram_loss, 4),
            "wall_s": round(time.perf_counter() - t0, 1)}


def _run(jobs: list[dict], workers: int) -> list[dict]:
    t0, done = time.perf_counter(), []
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for r in pool.imap_unordered(_train, jobs):
            done.append(r)
            print(f"[{time.perf_counter() - t0:6.0f} s] {len(done)}/{len(jobs)} d{r['d_model']} "
                  f"lr {r['lr']:g} seed {r['seed']}: {r['losses']} ({r['wall_s']} s)",
                  file=sys.stderr, flush=True)
    return sorted(done, key=lambda r: (r["d_model"], r["lr"], r["seed"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["lr", "seeds"], required=True)
    p.add_argument("--widths", type=int, nargs="+", default=[16, 32, 48, 64, 96])
    p.add_argument("--lrs", type=float, nargs="+", default=[1.5e-3, 3e-3, 6e-3])
    p.add_argument("--lr-of", nargs="*", default=[], help="seeds: d=lr for each width")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget", type=float, default=1.6e12)
    p.add_argument("--points", type=float, nargs="*", default=[4e11, 8e11])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--corpus", default="builtin", help="what the trials train on (--corpus)")
    a = p.parse_args()
    from budgetune.trainables import load_data, prepare_corpus

    corpus = prepare_corpus(a.corpus, [BASE["vocab_size"]])  # python: built once, here
    load_data(corpus, BASE["vocab_size"])  # tokenized once, before the workers read it
    common = {"budget": a.budget, "points": a.points, "corpus": corpus}
    if a.part == "lr":
        jobs = [{**common, "d_model": d, "lr": lr, "seed": 0} for d in a.widths for lr in a.lrs]
    else:
        lr_of = {int(k): float(v) for k, v in (x.split("=") for x in a.lr_of)}
        jobs = [{**common, "d_model": d, "lr": lr_of.get(d, 3e-3), "seed": seed}
                for d in a.widths for seed in range(a.seeds)]
    t0 = time.perf_counter()
    rows = _run(jobs, a.workers)
    out = {"benchmark": "cpu_setup", "part": a.part, "corpus": a.corpus, "base": BASE,
           "eval_tokens": EVAL_TOKENS, "budget": a.budget, "points": a.points, "rows": rows,
           "wall_s": round(time.perf_counter() - t0, 1)}
    if a.part == "seeds":
        spread = {}
        for r in rows:
            for b, v in r["losses"].items():
                spread.setdefault(f"d{r['d_model']}", {}).setdefault(b, []).append(v)
        out["spread"] = {d: {b: {"mean": round(sum(v) / len(v), 4),
                                 "spread": round(max(v) - min(v), 4)} for b, v in by.items()}
                         for d, by in spread.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
