"""The seeds' findings, reproduced at small scale on the built-in corpus (GPT-2 family, fp32 CPU).

(a) sharing: Yang et al. (2021) — train with the blocks shared for the first fraction of the
    steps, then unshare. Each switch fraction in {0.05, 0.1, 0.2, 0.3, 0.5} is trained at
    {0.5, 0.7, 1.0} × C and the never-shared baseline at C, 3 seeds each. Because the learning
    rate is planned from the budget (cosine to its end), "the FLOPs needed to reach the
    baseline's final loss" is measured honestly as the smallest budget whose *final* loss
    (mean over seeds) reaches the baseline's mean final loss, interpolated linearly between the
    budgets tried; the in-run crossing (the first report of the full-budget run at or below
    it) is printed beside it.
(b) size: Li et al. (2020) — at a fixed budget C, models of d_model {32, 64, 128, 256} (depth 4):
    larger ones reach lower loss, up to a point.
(c) compression: from (b)'s trained models and their compression grids (one-shot pruning ×
    int8/int4, no fine-tuning): at equal compressed block-stack size, does the larger model
    compressed harder beat the smaller one compressed lightly? Block-stack bytes are compared
    because budgetune compresses only the block stack; totals are printed too.

Trials run two at a time, one thread each. Prints one JSON object; ``--plots DIR`` writes a PNG
per finding.

    .venv/bin/python benchmarks/seeds.py [--part all|sharing|size] [--plots benchmarks/out]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from pathlib import Path

SHARE_FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.5)
BUDGET_SCALES = (0.5, 0.7, 1.0)
WIDTHS = (32, 64, 128, 256)


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


def _train(job: dict) -> dict:
    """One trial; its reports as (train_flops, val_loss), and its grid when asked."""
    from budgetune.spaces import Schedule
    from budgetune.trainables import (
        Trial,
        TrialConfig,
        block_linears,
        compressed_bytes,
        embedding_bits,
        matrix_bytes,
        token_matrix,
    )

    s = Schedule(**job["schedule"])
    trial = Trial(s, job["budget"], TrialConfig(n_reports=job.get("n_reports", 10),
                                                 eval_tokens=16384))
    curve = [(r.train_flops, r.val_loss) for r in trial.run()]
    out = {**job, "curve": curve, "final": curve[-1][1], "unigram": trial.unigram_loss,
           "n_params_nonemb": trial.report().n_params_nonemb if job.get("grid") else None}
    if job.get("grid"):
        # Outside the block matrices: the token matrix at its bits, the rest fp32. Subtract
        # both to get the block stack's bytes.
        matrices = 4 * sum(m.weight.numel() for m in block_linears(trial.blocks))
        tokens = token_matrix(trial.model, trial.family)
        rest = (compressed_bytes(trial.model, trial.family, 0.0, 32) - matrices
                - 4 * tokens.numel())

        def outside(bits: int) -> int:
            return rest + matrix_bytes(tuple(tokens.shape), tokens.numel(), False,
                                       embedding_bits(bits))
        out["grid"] = [{"sparsity": c.sparsity, "bits": c.quant_bits,
                        "loss": c.val_loss_compressed, "total_bytes": c.compressed_bytes,
                        "block_bytes": c.compressed_bytes - outside(c.quant_bits)}
                       for c in trial.grid()]
    return out


def _run(jobs: list[dict], workers: int) -> list[dict]:
    t0, done = time.perf_counter(), []
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for result in pool.imap_unordered(_train, jobs):
            done.append(result)
            print(f"[{time.perf_counter() - t0:6.0f} s] {len(done)}/{len(jobs)} "
                  f"{result['label']} seed {result['schedule']['seed']}: "
                  f"{result['final']:.4f}", flush=True, file=__import__("sys").stderr)
    return done


def _base(args) -> dict:
    return {"model": "gpt2", "n_heads": 2, "seq_len": 64, "batch_size": 16, "vocab_size": 4096}


def sharing(args) -> dict:
    jobs = []
    for seed in range(args.seeds):
        s = {**_base(args), "d_model": 64, "n_layers": args.depth, "seed": seed}
        jobs.append({"label": "baseline", "fraction": 0.0, "scale": 1.0, "budget": args.budget,
                     "schedule": {**s, "share_fraction": 0.0}, "n_reports": 20})
        for f in SHARE_FRACTIONS:
            for scale in BUDGET_SCALES:
                # Only the full-budget run needs a curve (the in-run crossing).
                jobs.append({"label": f"share {f} at {scale}C", "fraction": f, "scale": scale,
                             "budget": scale * args.budget,
                             "n_reports": 20 if scale == 1 else 1,
                             "schedule": {**s, "share_fraction": f}})
    results = _run(jobs, args.workers)
    base = [r["final"] for r in results if r["label"] == "baseline"]
    target = statistics.mean(base)
    rows = [{"fraction": 0.0, "budget_scale": 1.0, **_spread(base), "needed_scale": 1.0}]
    for f in SHARE_FRACTIONS:
        by_scale = {scale: [r["final"] for r in results
                            if r["fraction"] == f and r["scale"] == scale]
                    for scale in BUDGET_SCALES}
        means = [statistics.mean(by_scale[scale]) for scale in BUDGET_SCALES]
        crossing = [_crossing(r["curve"], target, args.budget) for r in results
                    if r["fraction"] == f and r["scale"] == 1.0]
        rows.append({"fraction": f, "final_by_budget_scale": {
            str(scale): _spread(by_scale[scale]) for scale in BUDGET_SCALES},
            "needed_scale": _needed(BUDGET_SCALES, means, target),
            "in_run_crossing_scale": _spread([c for c in crossing if c is not None])
            if any(c is not None for c in crossing) else None,
            "seeds_crossing": sum(c is not None for c in crossing)})
    return {"budget": args.budget, "d_model": 64, "n_layers": args.depth, "seeds": args.seeds,
            "baseline_final": _spread(base), "unigram": results[0]["unigram"], "rows": rows,
            "_results": results}


def _crossing(curve, target, budget):
    """The first report at or below ``target``, as a fraction of ``budget``; None if none."""
    return next((flops / budget for flops, loss in curve if loss <= target), None)


def _needed(scales, means, target):
    """The smallest budget scale whose mean final loss reaches ``target``, interpolated; None
    if even the full budget does not; "<= smallest" if the smallest already does."""
    if means[0] <= target:
        return f"<= {scales[0]}"
    for (s0, m0), (s1, m1) in zip(zip(scales, means), zip(scales[1:], means[1:])):
        if m1 <= target:
            return round(s0 + (s1 - s0) * (m0 - target) / (m0 - m1), 3)
    return None


def _spread(xs) -> dict:
    return {"mean": round(statistics.mean(xs), 4), "min": round(min(xs), 4),
            "max": round(max(xs), 4)}


def size(args) -> dict:
    jobs = [{"label": f"d{d}", "d_model": d, "budget": args.budget, "grid": True,
             "schedule": {**_base(args), "d_model": d, "n_layers": 4, "seed": seed}}
            for d in WIDTHS for seed in range(args.seeds)]
    results = _run(jobs, args.workers)
    rows = []
    for d in WIDTHS:
        mine = [r for r in results if r["d_model"] == d]
        rows.append({"d_model": d, "n_params_nonemb": mine[0]["n_params_nonemb"],
                     **_spread([r["final"] for r in mine])})
    return {"budget": args.budget, "n_layers": 4, "seeds": args.seeds, "rows": rows,
            "compressed": _compare_compressed(results), "_results": results}


def _compare_compressed(results) -> list[dict]:
    """For each smaller model lightly compressed (dense fp32 or int8), the best cell of each
    larger model at no more block-stack bytes, losses averaged over seeds cell by cell."""
    def cells(d):
        mine = [r for r in results if r["d_model"] == d]
        out = {}
        for r in mine:
            for c in r["grid"]:
                out.setdefault((c["sparsity"], c["bits"]), []).append(c)
        return {k: {"loss": statistics.mean(c["loss"] for c in v),
                    "block_bytes": v[0]["block_bytes"], "total_bytes": v[0]["total_bytes"]}
                for k, v in out.items()}
    rows = []
    for i, small in enumerate(WIDTHS):
        for bits in (32, 8):
            rows += _best_larger(cells, small, bits, WIDTHS[i + 1:])
    return rows


def _best_larger(cells, small: int, bits: int, larger) -> list[dict]:
    light, rows = cells(small)[(0.0, bits)], []
    for large in larger:
        fits = [(k, c) for k, c in cells(large).items()
                if c["block_bytes"] <= light["block_bytes"]]
        if not fits:
            continue
        key, best = min(fits, key=lambda kc: kc[1]["loss"])
        rows.append({"small": f"d{small} int{bits}", "small_loss": round(light["loss"], 4),
                     "small_block_bytes": light["block_bytes"],
                     "large": f"d{large} sparsity {key[0]} int{key[1]}",
                     "large_loss": round(best["loss"], 4),
                     "large_block_bytes": best["block_bytes"],
                     "large_wins": best["loss"] < light["loss"]})
    return rows


def _plot(report: dict, folder: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    if "sharing" in report:
        r = report["sharing"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for row in r["rows"][1:]:
            stats = [row["final_by_budget_scale"][str(s)] for s in BUDGET_SCALES]
            ax.errorbar(BUDGET_SCALES, [x["mean"] for x in stats], marker="o", capsize=3,
                        yerr=[[x["mean"] - x["min"] for x in stats],
                              [x["max"] - x["mean"] for x in stats]],
                        label=f"shared for {row['fraction']:.0%}")
        ax.axhline(r["baseline_final"]["mean"], color="k", ls="--", label="never shared, at C")
        ax.set(xlabel="budget / C", ylabel="final validation loss (nats)",
               title=f"share-then-unshare, d64 L{r['n_layers']}, C = {r['budget']:.0e}")
        ax.legend(fontsize=7)
        fig.savefig(folder / "seeds_sharing.png", dpi=120, bbox_inches="tight")
    if "size" in report:
        r = report["size"]
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
        ax.errorbar([x["n_params_nonemb"] for x in r["rows"]], [x["mean"] for x in r["rows"]],
                    marker="o", capsize=3, yerr=[[x["mean"] - x["min"] for x in r["rows"]],
                                                 [x["max"] - x["mean"] for x in r["rows"]]])
        ax.set(xscale="log", xlabel="non-embedding parameters", ylabel="final val loss (nats)",
               title=f"fixed budget C = {r['budget']:.0e}, depth 4")
        for d in WIDTHS:
            grid = [c for x in r["_results"] if x["d_model"] == d and x["schedule"]["seed"] == 0
                    for c in x["grid"]]
            bx.scatter([c["block_bytes"] / 1e6 for c in grid], [c["loss"] for c in grid],
                       s=12, label=f"d{d}")
        bx.set(xscale="log", xlabel="compressed block stack (MB)", ylabel="val loss (nats)",
               title="compression grid (one-shot), seed 0")
        bx.legend(fontsize=7)
        fig.savefig(folder / "seeds_size.png", dpi=120, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "sharing", "size"), default="all")
    parser.add_argument("--budget", type=float, default=1e12, help="C, in FLOPs")
    parser.add_argument("--depth", type=int, default=6, help="depth of the sharing study")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plots", type=Path, default=None, help="folder for PNG plots")
    args = parser.parse_args()
    t0, report = time.perf_counter(), {"benchmark": "seeds"}
    if args.part in ("all", "sharing"):
        report["sharing"] = sharing(args)
    if args.part in ("all", "size"):
        report["size"] = size(args)
    if args.plots:
        _plot(report, args.plots)
    for part in ("sharing", "size"):
        report.get(part, {}).pop("_results", None)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
