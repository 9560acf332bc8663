"""Which recipe is best for a budget: the one definition that every command uses.

``budgetune search``'s summary, ``status``, ``best``, ``report`` (and ``search --repeats``, to
choose what to repeat) all call ``rank_recipes`` and ``pick``; none has a rule of its own.

1. **Budget points** are the evidence (DESIGN.md): reports whose learning rate was annealed for
   exactly their ``budget_flops`` (``point`` is true: the end of a cosine trial that trained its
   whole budget, or a WSD cooldown branch). Other reports are curves, never recipes.
2. A **recipe** is a schedule *without its seed*, trained for a budget point's budget, then
   compressed to one (sparsity, bits) cell: the trial's own target, or a cell of its compression
   grid. Each seed of a recipe is one measurement of it.
3. A recipe's loss is the **mean over its seeds**. Its standard error is the spread between
   seeds, s/√n, when there are two or more; with one seed it is the evaluation's own standard
   error (``val_loss_se``: the tokens evaluated), which says nothing of seed noise, so such an
   answer is labelled "single seed". The 95% interval is mean ± t(n−1)·se (± 1.96·se for one).
4. Candidates for a query (budget C, size limit M) are recipes with ``budget_flops`` ≤ C whose
   ``compressed_bytes`` ≤ M. The lowest mean leads; a candidate is **within noise** of it when
   the difference of means is within the 95% half-width of that difference, measured as the
   two recipes were measured:

   - **paired**, when both are cells of the same training recipe (same budget and training
     fields) on the same seeds: they are the same trained models on the same validation
     tokens, differing only in compression. With n ≥ 2 seeds the per-seed differences d_s give
     se = sd(d)/√n and the half-width t(n−1)·se; with one seed se = √(δ₁² + δ₂²), δ being each
     cell's ``val_loss_diff_se`` (the standard error of its per-token difference from the
     uncompressed model, 0 for that model itself), and the half-width 1.96·se. A cell whose
     δ was not recorded (NaN: schema-1 tables) falls back to the independent rule;
   - **independent** otherwise (different training or different seeds): 1.96·√(se₁² + se₂²)
     with the recipes' own standard errors (rule 3).

   Among those within noise the **smallest deploy size** is chosen (the lowest mean among
   equals), and the answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from budgetune.analysis._load import Results
from budgetune.results import ResultsError
from budgetune.spaces import training_fields

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
POINT_KEY = ["search_id", "experiment", "trial_id", "budget_flops"]
# What decides the trained model, besides its seed: quantization is applied after training, so
# the schedule's quant_bits is a compression cell like any other, not part of the training.
TRAINING_FIELDS = training_fields()
RECIPE_KEY = ["budget_flops", *TRAINING_FIELDS, "sparsity", "quant_bits"]


def budget_points(results: Results) -> pd.DataFrame:
    """One row per budget point: its report (the final one, if a point was re-reported)."""
    points = results.reports[results.reports["point"].astype(bool)]
    return points.sort_values("step").groupby(POINT_KEY, as_index=False).tail(1)


def dense_points(points: pd.DataFrame) -> pd.DataFrame:
    """Budget points of dense-trained recipes (``prune_sparsity == 0``): the only ones whose
    ``val_loss`` is of a model of ``n_params_nonemb`` parameters (a sparse-trained model's is
    the pruned model's)."""
    return points[points["prune_sparsity"].astype(float) == 0]


def compressed_variants(results: Results) -> pd.DataFrame:
    """Every (budget point, compression cell) measured: the point's own target and its grid.

    Columns: the point's key, ``seed`` and training fields (``TRAINING_FIELDS``), the cell's
    ``sparsity`` and ``quant_bits``, ``one_shot`` (pruned beyond what it was trained to),
    ``loss`` (val_loss_compressed), ``loss_se`` (the point's evaluation standard error),
    ``diff_se`` (the cell's paired standard error against the uncompressed model,
    ``val_loss_diff_se``), ``compressed_bytes``, and the point's ``n_params_nonemb``,
    ``tokens``, ``train_flops``."""
    points = budget_points(results)
    base = points[POINT_KEY + ["seed", *TRAINING_FIELDS, "n_params_nonemb", "tokens",
                               "train_flops", "share_fraction_effective", "main_line_flops"]
                  ].assign(loss_se=points["val_loss_se"])
    own = base.assign(sparsity=points["prune_sparsity"].astype(float),
                      quant_bits=points["quant_bits"].astype(int), one_shot=False,
                      loss=points["val_loss_compressed"],
                      diff_se=points["val_loss_diff_se"].astype(float),
                      compressed_bytes=points["compressed_bytes"])
    cells = results.grid[POINT_KEY + ["sparsity", "quant_bits", "one_shot",
                                      "val_loss_compressed", "val_loss_diff_se",
                                      "compressed_bytes"]]
    grid = base.merge(cells.rename(columns={"val_loss_compressed": "loss",
                                            "val_loss_diff_se": "diff_se"}), on=POINT_KEY)
    variants = pd.concat([own, grid], ignore_index=True)
    # A grid cell at the trial's own target is the same measurement as its report: keep one.
    variants = variants.drop_duplicates(POINT_KEY + ["sparsity", "quant_bits"], keep="first")
    return variants.reset_index(drop=True)


def rank_recipes(results: Results, max_bytes: float | None = None) -> pd.DataFrame:
    """Recipes (seeds pooled), best first, within ``max_bytes`` when given.

    Columns: ``RECIPE_KEY`` (the training fields, then the cell's sparsity and bits),
    ``loss_mean``, ``loss_se``, ``loss_low``, ``loss_high``, ``n_seeds``, ``seeds`` (tuple),
    ``seed_losses`` and ``seed_diff_se`` (dicts seed -> that seed's loss, and its paired
    standard error against the uncompressed model: what ``pick`` compares paired),
    ``one_shot``, ``compressed_bytes`` (largest over seeds), ``n_params_nonemb``, ``tokens``,
    ``train_flops``, ``share_fraction_effective`` and ``main_line_flops`` (of its best seed:
    the share of its steps trained shared, and the budget its trial's main line was planned
    for), and the search_id/experiment/trial_id and ``best_seed`` of its best seed
    (where to find its weights and curves)."""
    variants = compressed_variants(results)
    if max_bytes is not None:
        variants = variants[variants["compressed_bytes"] <= max_bytes]
    if variants.empty:
        return variants.assign(loss_mean=[], loss_se=[], loss_low=[], loss_high=[],
                               n_seeds=[], seeds=[], seed_losses=[], seed_diff_se=[],
                               best_seed=[])
    # One pass of grouped aggregates (a loop over groups took 6.8 s for 1,000 trials).
    # Recipes are numbered in order of first appearance, which breaks ties in the ranking.
    recipe = variants.groupby(RECIPE_KEY, sort=False, dropna=False).ngroup().to_numpy()
    v = variants.assign(_recipe=recipe, _d2=variants["diff_se"].astype(float) ** 2)
    v = v.sort_values("loss", kind="stable")  # a recipe's first row is its best seed's cell
    # per recipe and seed: the mean loss; one seed measured k times (two searches) has the
    # diff_se of the mean of its k paired differences
    per_seed = v.groupby(["_recipe", "seed"], sort=True).agg(
        loss=("loss", "mean"), d2=("_d2", "sum"), k=("_d2", "size"), known=("_d2", "count"))
    # a seed none of whose cells has a standard error has none (a grouped sum would say 0)
    per_seed["diff_se"] = np.sqrt(per_seed["d2"].where(per_seed["known"] > 0)) / per_seed["k"]
    by_recipe = per_seed.groupby(level="_recipe")
    mean, n = by_recipe["loss"].mean(), by_recipe["loss"].size()
    top = v.groupby("_recipe", sort=True).head(1).set_index("_recipe").sort_index()
    se = np.where(n >= 2, by_recipe["loss"].std(ddof=1) / np.sqrt(n), top["loss_se"])
    half = np.where(n >= 2, _t_95(np.maximum(n - 1, 1)) if (n >= 2).any() else Z_95, Z_95) * se
    seeds, losses, diffs = {}, {}, {}
    for (r, seed), loss, diff in zip(per_seed.index, per_seed["loss"], per_seed["diff_se"]):
        seeds.setdefault(r, []).append(int(seed))
        losses.setdefault(r, {})[int(seed)] = float(loss)
        diffs.setdefault(r, {})[int(seed)] = float(diff)
    cells = v.groupby("_recipe", sort=True)
    ranked = pd.DataFrame({
        **{c: top[c].to_numpy() for c in RECIPE_KEY},
        "loss_mean": mean.to_numpy(float), "loss_se": se.astype(float),
        "loss_low": (mean - half).to_numpy(float), "loss_high": (mean + half).to_numpy(float),
        "n_seeds": n.to_numpy(int),
        "seeds": [tuple(seeds[r]) for r in top.index],
        "seed_losses": [losses[r] for r in top.index],
        "seed_diff_se": [diffs[r] for r in top.index],
        "one_shot": cells["one_shot"].any().to_numpy(bool),
        "compressed_bytes": cells["compressed_bytes"].max().to_numpy("int64"),
        **{c: cells[c].mean().to_numpy(float)
           for c in ("n_params_nonemb", "tokens", "train_flops")},
        "share_fraction_effective": top["share_fraction_effective"].to_numpy(float),
        "main_line_flops": top["main_line_flops"].to_numpy(float),
        "search_id": top["search_id"].to_numpy(), "experiment": top["experiment"].to_numpy(),
        "trial_id": top["trial_id"].to_numpy(), "best_seed": top["seed"].to_numpy(int),
    }).sort_values(["loss_mean", "compressed_bytes"], kind="stable")
    return ranked.reset_index(drop=True)


@dataclass(frozen=True)
class Pick:
    """The answer for one budget and size limit, with what it rests on."""

    budget_flops: float  # the budget asked about
    max_bytes: float | None  # the size limit applied (None: none)
    winner: dict  # the chosen recipe (a row of rank_recipes)
    lowest: dict  # the recipe of lowest mean loss (the winner unless a smaller one ties it)
    within_noise: list[dict]  # recipes within noise of the lowest, the lowest included
    n_candidates: int  # recipes within the budget and the size limit
    smaller_preferred: bool  # the winner is not the lowest: smaller, and within noise of it

    @property
    def basis(self) -> str:
        """What the winner's loss rests on: 'single seed' or 'mean of k seeds'."""
        n = int(self.winner["n_seeds"])
        return "single seed" if n == 1 else f"mean of {n} seeds"


def pick(ranked: pd.DataFrame, budget_flops: float, max_bytes: float | None = None) -> Pick:
    """Choose among ``rank_recipes(...)`` rows for a budget (rule 4 of the module docstring)."""
    within = ranked[ranked["budget_flops"] <= budget_flops]
    if within.empty:
        low = f" (the smallest is {ranked['budget_flops'].min():.3g})" if len(ranked) else ""
        raise ResultsError(f"No budget point has a budget <= {budget_flops:.3g} FLOPs{low}; "
                           "ask about a larger budget or run a search at this one.")
    pool = within
    if max_bytes is not None:
        pool = pool[pool["compressed_bytes"] <= max_bytes]
    if pool.empty:
        raise ResultsError(
            f"No budget point within {budget_flops:.3g} FLOPs fits in {max_bytes / 1e6:.3g} MB "
            f"(the smallest is {within['compressed_bytes'].min() / 1e6:.3g} MB); raise "
            "--max-mb, or search with it.")
    pool = pool.sort_values(["loss_mean", "compressed_bytes"], kind="stable")
    lowest = pool.iloc[0]
    gap = pool["loss_mean"] - lowest["loss_mean"]
    # Independent measurements at once; the paired rule only for the lowest's own cells.
    se, se_0 = pool["loss_se"].fillna(0.0), 0.0 if pd.isna(lowest["loss_se"]) else float(
        lowest["loss_se"])
    noise = Z_95 * np.sqrt(se**2 + se_0**2)
    paired = _same_training_mask(pool, lowest)
    noise[paired] = [noise_of_difference(row, lowest) for _, row in pool[paired].iterrows()]
    near = pool[gap <= noise]
    winner = near.sort_values(["compressed_bytes", "loss_mean"], kind="stable").iloc[0]
    return Pick(float(budget_flops), max_bytes, _row(winner), _row(lowest),
                near.to_dict("records"), len(pool),  # pandas gives Python scalars
                bool(winner.name != lowest.name))


def _t_95(df):
    """Student's t two-sided 95% quantile. scipy is imported here, when seeds are pooled:
    importing it costs every command 0.15–0.4 s (``budgetune status`` must answer in < 1 s)."""
    from scipy.special import stdtrit

    return stdtrit(df, 0.975)


def _same_training_mask(pool: pd.DataFrame, b: pd.Series) -> pd.Series:
    """``same_training(row, b)`` for every row of ``pool`` at once."""
    mask = pd.Series(True, index=pool.index)
    for field in ["budget_flops", *TRAINING_FIELDS]:
        column, y = pool[field], b[field]
        mask &= column.isna() if pd.isna(y) else (column == y)
    return mask & (pool["seeds"].map(tuple) == tuple(b["seeds"]))


def same_training(a: pd.Series, b: pd.Series) -> bool:
    """Two recipes are cells of the same trained models: same budget, training and seeds."""
    for field in ["budget_flops", *TRAINING_FIELDS]:
        x, y = a[field], b[field]
        if not (x == y or (pd.isna(x) and pd.isna(y))):
            return False
    return tuple(a["seeds"]) == tuple(b["seeds"])


def noise_of_difference(a: pd.Series, b: pd.Series) -> float:
    """The 95% half-width of (a's mean loss − b's), paired where the two are measured paired
    (rule 4 of the module docstring), else as independent measurements."""
    if same_training(a, b):
        seeds = sorted(a["seeds"])
        if len(seeds) >= 2:
            d = np.array([a["seed_losses"][s] - b["seed_losses"][s] for s in seeds])
            return float(_t_95(len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
        da, db = a["seed_diff_se"][seeds[0]], b["seed_diff_se"][seeds[0]]
        if not (pd.isna(da) or pd.isna(db)):
            return float(Z_95 * np.sqrt(da**2 + db**2))
    # A recipe without a standard error (a table that recorded none) is judged on its mean.
    se_a, se_b = (0.0 if pd.isna(x) else float(x) for x in (a["loss_se"], b["loss_se"]))
    return float(Z_95 * np.sqrt(se_a**2 + se_b**2))


def plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, a tuple as a list of such (JSON's
    arrays); anything else as it is. The one such conversion: every module imports it."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _row(row: pd.Series) -> dict:
    # Tuples (seeds) stay tuples in a Pick: it is a row of rank_recipes.
    return {k: v if isinstance(v, tuple) else plain(v) for k, v in row.items()}
