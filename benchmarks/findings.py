"""The seeds' findings (b), (c), (d) and the compression-aware law, from one multi-budget table.

Issue 14's CPU-scale setup (``cpu_setup.py``): GPT-2 family, depth 2, 2 heads, V = 1024, T =
128, B = 16, the `python` corpus (``--corpus``), a learning rate per width. Every trial is
trained with WSD to C and branches a cooldown at each budget point C/32 … C/2, so one trial per
(width, seed) gives six annealed models. Trials are ``budgetune search`` grids (FIFO, no early
stopping), one search per group of widths that share a learning rate, all into one results
folder; the analysis reads it with ``budgetune.analysis`` as ``budgetune best`` does:

- seed spread: max − min over the 3 seeds of each dense width's annealed loss, per budget;
- (b) Li et al. 2020, "larger models win up to a point": per budget, the IsoFLOP profile
  (mean over seeds per width, a parabola in ln N; ``isoflop_profile``) over all the widths
  and over the lowest width and its two neighbours, its vertex N_opt, whether it lies inside
  the sampled widths, and N_opt ∝ C^a fitted over the budgets whose vertex is inside (the
  interval: 1,000 draws resampling each width's seeds, one draw for every budget);
- (c) Li et al. 2020, "large and compressed beats small and light": at budget C, for each
  whole-model size limit, the best (width, bits, sparsity) within it (losses mean over seeds)
  against the best model stored at 8 or 32 bits and trained dense, and by how much (with the
  seed spread beside it);
- (d) the frontier L(C) = E + A·C^−α fitted on the envelope at budgets ≤ C/4 (4 budgets),
  against the best loss measured at C;
- the compression-aware law (``compression_law``) on the same table: the factor e of each
  trained cell (bits at the trained sparsity 0 or 0.5) with its bootstrap interval; once on
  every budget, once on the budgets from 1.6e12 FLOPs, past most widths' plateau.

    PYTHONPATH=. .venv/bin/python benchmarks/findings.py --results /tmp/findings \\
        --plots benchmarks/figures > benchmarks/figures/findings.json

``--analyse-only`` reads a results folder written before. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

C = 6.4e12
BUDGETS = tuple(C / 2**k for k in (5, 4, 3, 2, 1, 0))  # 2e11 … 6.4e12
BASE = {"model": "gpt2", "n_layers": 2, "n_heads": 2, "seq_len": 128, "batch_size": 16,
        "vocab_size": 1024, "share_fraction": 0.0, "share_unit": 1, "quant_bits": 32}
# (name, widths, learning rate, trained sparsities, seeds): one search each. Learning rates
# from cpu_setup.py (one seed, 1.6e12 FLOPs): the best of 7e-4 … 1e-2 per width, shared by
# neighbouring widths where they were within its noise. The sparse arm (trained to 50%) is
# the law's evidence for its sparsity factor, at two widths.
PARTS = (("narrow", [24, 32, 48], 5e-3, [0.0], [0, 1, 2]),
         ("d64", [64], 2.5e-3, [0.0, 0.5], [0, 1, 2]),
         ("d96", [96], 1.5e-3, [0.0], [0, 1, 2]),
         ("sparse-d32", [32], 5e-3, [0.5], [0, 1]))
SIZE_LIMITS_KB = (40, 60, 80, 120, 160, 240, 320, 480)
EVAL_TOKENS = 16384
LAW_BOOTSTRAP = 200  # refits of the compression-aware law, resampling whole models


def search(root: Path, corpus: str) -> float:
    import yaml

    from budgetune.search import SearchSpec, run_search

    t0 = time.perf_counter()
    for name, widths, lr, sparsities, seeds in PARTS:
        space = root / f"{name}.yaml"
        space.write_text(yaml.safe_dump({**BASE, "d_model": widths, "lr": lr,
                                         "prune_sparsity": sparsities, "seed": seeds}))
        spec = SearchSpec(space=str(space), budgets=BUDGETS, searcher="grid",
                          scheduler="fifo", max_mb=None, results=str(root), name=name,
                          lr_schedule="wsd", eval_tokens=EVAL_TOKENS, repeats=0,
                          keep_models=0, corpus=corpus)
        run_search(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
        print(f"[{time.perf_counter() - t0:6.0f} s] {name} done", file=sys.stderr, flush=True)
    return time.perf_counter() - t0


def _key(b: float) -> str:
    return f"{b:.3g}"


def seed_spread(points) -> dict:
    dense = points[points["prune_sparsity"].astype(float) == 0]
    out = {}
    for (d, b), g in dense.groupby(["d_model", "budget_flops"]):
        out.setdefault(f"d{d}", {})[_key(b)] = {
            "mean": round(float(g["val_loss"].mean()), 4),
            "spread": round(float(g["val_loss"].max() - g["val_loss"].min()), 4),
            "seeds": int(len(g))}
    worst = {_key(b): max(v[_key(b)]["spread"] for v in out.values() if _key(b) in v)
             for b in BUDGETS}
    return {"by_width": out, "largest_spread_by_budget": worst}


def _vertices(dense, seeds: dict | None = None, local: bool = False) -> dict[float, tuple]:
    """Per budget: (N_opt or None, status, sizes, mean losses). ``seeds``: width -> the seeds
    to average (a bootstrap draw; one draw serves every budget, as one trial per width and
    seed gives all of them). ``local``: the parabola through the lowest width and its two
    neighbours only (Hoffmann et al.'s approach 2 fits near the minimum), "edge" when the
    lowest is the smallest or the largest width."""
    from budgetune.analysis import isoflop_profile

    out = {}
    for b, g in dense.groupby("budget_flops"):
        ns, losses = [], []
        for d, w in g.groupby("d_model"):
            by_seed = w.set_index("seed")["val_loss"]
            v = by_seed.to_numpy() if seeds is None else by_seed.loc[seeds[d]].to_numpy()
            ns.append(float(w["n_params_nonemb"].iloc[0]))
            losses.append(float(v.mean()))
        k = int(np.argmin(losses))
        if local and k in (0, len(ns) - 1):
            out[float(b)] = (None, "edge", ns, losses)
            continue
        part = slice(k - 1, k + 2) if local else slice(None)
        prof = isoflop_profile(float(b), np.array(ns[part]), np.array(losses[part]))
        out[float(b)] = (prof.n_opt, prof.status, ns, losses)
    return out


def _exponent(vertices: dict, budgets: list[float] | None = None) -> tuple[float | None, list]:
    """N_opt ∝ C^a by least squares in log–log over the budgets whose vertex lies inside the
    sizes (at least 3); given ``budgets``, over those only (None if any has no vertex)."""
    if budgets is None:
        budgets = [b for b, v in sorted(vertices.items()) if v[1] == "ok"]
    if len(budgets) < 3 or any(vertices[b][1] != "ok" for b in budgets):
        return None, budgets
    x, y = np.log(budgets), np.log([vertices[b][0] for b in budgets])
    return float(np.polyfit(x, y, 1)[0]), budgets


def larger_models(points, draws: int = 1000) -> dict:
    """The IsoFLOP profiles, their vertices and the exponent, once over all the widths and once
    near each budget's minimum. The interval: ``draws`` resamples of each width's seeds (the
    same draw at every budget); a draw that moves a vertex out of the sizes at one of the
    point estimate's budgets gives no exponent, and the share of such draws is reported."""
    dense = points[points["prune_sparsity"].astype(float) == 0]
    widths = {d: sorted(w["seed"].unique()) for d, w in dense.groupby("d_model")}
    out = {}
    for name, local in (("all_widths", False), ("near_minimum", True)):
        vertices = _vertices(dense, local=local)
        a, used = _exponent(vertices)
        rng, boot, failed = np.random.default_rng(0), [], 0
        for _ in range(draws if a is not None else 0):
            pick = {d: list(rng.choice(s, size=len(s), replace=True)) for d, s in widths.items()}
            a_k, _ = _exponent(_vertices(dense, pick, local), used)
            if a_k is None:
                failed += 1
            else:
                boot.append(a_k)
        out[name] = {
            "profiles": {_key(b): {"n_opt": None if v[0] is None else round(v[0]),
                                   "status": v[1],
                                   "by_size": {str(int(n)): round(loss, 4)
                                               for n, loss in zip(v[2], v[3])}}
                         for b, v in sorted(vertices.items())},
            "exponent_a": None if a is None else round(a, 3),
            "exponent_interval": ([round(float(np.percentile(boot, q)), 3) for q in (2.5, 97.5)]
                                  if len(boot) >= 100 else None),
            "exponent_budgets": [_key(b) for b in used],
            "draws": draws if a is not None else 0, "draws_without_a_vertex": failed}
    return out


def compressed_vs_light(results) -> list[dict]:
    """At C, per size limit: the best cell of any width within it, against the best model
    that is dense-trained and stored at 8 or 32 bits (lightly compressed)."""
    from budgetune.analysis import compressed_variants

    v = compressed_variants(results)
    v = v[np.isclose(v["budget_flops"].astype(float), C, rtol=1e-6)]
    cells = (v.groupby(["d_model", "prune_sparsity", "sparsity", "quant_bits", "one_shot"])
             .agg(loss=("loss", "mean"), lo=("loss", "min"), hi=("loss", "max"),
                  kb=("compressed_bytes", lambda s: float(s.max()) / 1e3),
                  seeds=("loss", "size")).reset_index())
    rows = []
    for limit in SIZE_LIMITS_KB:
        fit = cells[cells["kb"] <= limit]
        light = fit[(fit["sparsity"] == 0) & (fit["quant_bits"] >= 8)]
        if fit.empty:
            continue
        best = fit.loc[fit["loss"].idxmin()]
        row = {"limit_kb": limit, "best": _cell(best)}
        if not light.empty:
            lb = light.loc[light["loss"].idxmin()]
            row["best_light"] = _cell(lb)
            row["gain_nats"] = round(float(lb["loss"] - best["loss"]), 4)
            row["larger_and_compressed_wins"] = bool(best["d_model"] > lb["d_model"]
                                                     and best["loss"] < lb["loss"])
        rows.append(row)
    return rows


def _cell(r) -> dict:
    return {"d_model": int(r["d_model"]), "trained_sparsity": float(r["prune_sparsity"]),
            "sparsity": round(float(r["sparsity"]), 3), "bits": int(r["quant_bits"]),
            "one_shot": bool(r["one_shot"]), "kb": round(float(r["kb"]), 1),
            "loss": round(float(r["loss"]), 4),
            "seed_range": [round(float(r["lo"]), 4), round(float(r["hi"]), 4)]}


def extrapolation(points) -> dict:
    from budgetune.analysis import envelope, fit_compute_law

    dense = points[points["prune_sparsity"].astype(float) == 0]
    means = dense.groupby(["budget_flops", "d_model"])["val_loss"].mean()
    best = means.groupby(level=0).min()
    seen = [b for b in best.index if b <= C / 4 * (1 + 1e-9)]
    env = envelope(np.array(seen), best.loc[seen].to_numpy())
    fit = fit_compute_law(env.flops, env.loss)
    measured, predicted = float(best.loc[best.index.max()]), float(fit.loss(C))
    return {"fit_budgets": [_key(b) for b in seen],
            "fit": {k: fit.to_dict()[k] for k in ("E", "A", "alpha", "status", "n_points")},
            "best_by_budget": {_key(b): round(float(x), 4) for b, x in best.items()},
            "predicted_at_C": round(predicted, 4), "measured_at_C": round(measured, 4),
            "relative_error": round(abs(predicted - measured) / measured, 4)}


def law(results, from_budget: float = 0.0) -> dict:
    """The compression-aware law on the budget points at or above ``from_budget``."""
    from budgetune.analysis import FitOptions, Results, compression_law

    if from_budget:
        keep = [f[f["budget_flops"].astype(float) >= from_budget * (1 - 1e-9)]
                for f in (results.reports, results.grid)]
        results = Results(keep[0], results.trials, keep[1])
    law = compression_law(results, FitOptions(bootstrap=LAW_BOOTSTRAP))
    return {"from_budget": from_budget, "reason": law.reason, "notes": list(law.notes),
            "fit": None if law.fit is None else law.fit.to_dict()}


def plots(out: dict, folder: Path) -> None:
    import matplotlib.figure
    import matplotlib.ticker

    fig = matplotlib.figure.Figure(figsize=(11, 4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for b, prof in out["larger_models"]["all_widths"]["profiles"].items():
        ns = [int(n) for n in prof["by_size"]]
        ax1.plot(ns, list(prof["by_size"].values()), "o-", label=f"{b} FLOPs")
        local = out["larger_models"]["near_minimum"]["profiles"][b]["n_opt"]
        if local:
            ax1.axvline(local, ls="--", lw=0.8, color=ax1.lines[-1].get_color())
        if prof["n_opt"]:
            ax1.axvline(prof["n_opt"], ls=":", lw=0.8, color=ax1.lines[-1].get_color())
    ax1.set(xscale="log", xlabel="non-embedding parameters N", ylabel="val loss (mean of 3 seeds)",
            title="(b) IsoFLOP; vertex: all (:), near min (--)")
    ax1.legend(fontsize=7)
    rows = [r for r in out["compressed_vs_light"] if "best_light" in r]
    ax2.plot([r["limit_kb"] for r in rows], [r["best"]["loss"] for r in rows], "o-",
             label="best within the limit")
    ax2.plot([r["limit_kb"] for r in rows], [r["best_light"]["loss"] for r in rows], "s--",
             label="best dense, 8 or 32 bits")
    ax2.set(xscale="log", xlabel="whole-model size limit (kB)", ylabel="val loss at C",
            title=f"(c) at C = {C:.3g} FLOPs")
    ax2.legend(fontsize=7)
    ex = out["extrapolation"]
    bs = [float(b) for b in ex["best_by_budget"]]
    ax3.plot(bs, list(ex["best_by_budget"].values()), "o", label="best measured")
    f = ex["fit"]
    grid = np.geomspace(min(bs), C, 50)
    ax3.plot(grid, f["E"] + f["A"] * grid ** -f["alpha"], "-",
             label=f"fit on ≤ C/4: {ex['relative_error']:.1%} off at C")
    ax3.set(xscale="log", xlabel="budget (FLOPs)", ylabel="val loss", title="(d) frontier")
    ax3.legend(fontsize=7)
    for ax in (ax1, ax2, ax3):  # log axes: no labels on the minor ticks
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    fig.savefig(folder / "findings.png", dpi=110)


def main() -> None:
    from budgetune.analysis import budget_points, load_results

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, required=True, help="where the searches write")
    p.add_argument("--corpus", default="python", help="what the trials train on (--corpus)")
    p.add_argument("--analyse-only", action="store_true")
    p.add_argument("--plots", type=Path)
    a = p.parse_args()
    a.results.mkdir(parents=True, exist_ok=True)
    wall = None if a.analyse_only else round(search(a.results, a.corpus), 1)
    results = load_results(a.results)
    points = budget_points(results)
    out = {"benchmark": "findings", "corpus": a.corpus, "C": C, "budgets": list(BUDGETS),
           "base": BASE, "parts": [list(x) for x in PARTS], "eval_tokens": EVAL_TOKENS,
           "search_wall_s": wall,
           "seed_spread": seed_spread(points), "larger_models": larger_models(points),
           "compressed_vs_light": compressed_vs_light(results),
           "extrapolation": extrapolation(points), "compression_law": law(results),
           # past the plateau for most widths (8 of the 15 width × budget cells there within
           # 0.05 nats over seeds, d64 and d96 not)
           "compression_law_from_1.6e12": law(results, 1.6e12)}
    if a.plots:
        plots(out, a.plots)
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
