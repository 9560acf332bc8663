"""The one definition of "best": budget points, recipes pooled over seeds, within-noise picks."""

import math

import pandas as pd
import pytest

from budgetune.analysis import Results
from budgetune.analysis._candidates import pick, rank_recipes
from budgetune.results import GRID, REPORTS, TRIALS, ResultsError
from budgetune.spaces import Schedule


def _report(trial_id, schedule, loss, *, se=0.01, nbytes=1_000_000, point=True,
            budget=1e12, step=100, diff_se=0.0):
    return {**schedule.to_dict(), "search_id": "s", "experiment": "e", "trial_id": trial_id,
            "budget_flops": budget, "corpus_id": "c", "schema_version": 3,
            "budgetune_version": "t", "point": point, "step": step, "tokens": 1000,
            "epochs": 0.1, "train_flops": budget, "spent_flops": budget, "eval_flops": 1.0,
            "eval_tokens": 8192, "wall_s": 1.0, "train_s": 1.0, "current_lr": 1e-3,
            "train_loss": loss, "n_params": 10, "n_params_nonemb": 5, "shared": False,
            "val_loss": loss, "val_loss_se": se, "unigram_loss": 7.0,
            "val_loss_compressed": loss, "val_loss_diff_se": diff_se,
            "compressed_bytes": nbytes, "sparsity": 0.0,
            "feasible": True, "completed": point, "share_fraction_effective": 0.0,
            "main_line_flops": budget}


def _cell(trial_id, sparsity, bits, loss, nbytes, diff_se=math.nan):
    return {"search_id": "s", "experiment": "e", "trial_id": trial_id, "budget_flops": 1e12,
            "corpus_id": "c", "schema_version": 3, "budgetune_version": "t",
            "sparsity": sparsity, "quant_bits": bits, "val_loss_compressed": loss,
            "val_loss_diff_se": diff_se, "compressed_bytes": nbytes, "one_shot": True}


def _results(reports, grid=()):
    frame = pd.DataFrame(reports, columns=REPORTS.columns)
    return Results(frame, pd.DataFrame(columns=TRIALS.columns),
                   pd.DataFrame(list(grid), columns=GRID.columns))


def test_seeds_of_a_recipe_are_pooled_with_a_t_interval():
    a = Schedule(d_model=64)
    ranked = rank_recipes(_results([_report("t0", a, 3.0), _report("t1", a.replace(seed=1), 3.2),
                                    _report("t2", a.replace(seed=2), 3.1)]))
    assert len(ranked) == 1
    row = ranked.iloc[0]
    assert row["n_seeds"] == 3 and row["loss_mean"] == pytest.approx(3.1)
    assert row["loss_se"] == pytest.approx(0.1 / math.sqrt(3))
    assert row["loss_high"] - row["loss_mean"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3))


def test_a_smaller_recipe_within_noise_is_preferred_and_says_so():
    big, small = Schedule(d_model=128), Schedule(d_model=64)
    ranked = rank_recipes(_results([_report("t0", big, 3.000, nbytes=2_000_000),
                                    _report("t1", small, 3.010, nbytes=500_000)]))
    p = pick(ranked, 1e12)
    assert p.lowest["d_model"] == 128 and p.winner["d_model"] == 64
    assert p.smaller_preferred and len(p.within_noise) == 2 and p.basis == "single seed"


def test_a_clearly_better_recipe_wins_over_a_smaller_one():
    big, small = Schedule(d_model=128), Schedule(d_model=64)
    ranked = rank_recipes(_results([_report("t0", big, 3.0, nbytes=2_000_000),
                                    _report("t1", small, 3.5, nbytes=500_000)]))
    p = pick(ranked, 1e12)
    assert p.winner["d_model"] == 128 and not p.smaller_preferred and len(p.within_noise) == 1


def test_only_budget_points_within_budget_and_size_are_candidates():
    a = Schedule(d_model=64)
    reports = [_report("t0", a, 2.0, point=False, step=50),  # un-annealed: never a recipe
               _report("t0", a, 3.0), _report("t1", a.replace(d_model=128), 2.5,
                                                budget=3e12, nbytes=9_000_000)]
    ranked = rank_recipes(_results(reports))
    assert len(ranked) == 2 and ranked["loss_mean"].min() == 2.5
    assert pick(ranked, 1e12).winner["loss_mean"] == 3.0  # the 3e12 point is over budget
    assert pick(ranked, 1e13, max_bytes=5e6).winner["d_model"] == 64
    with pytest.raises(ResultsError, match="fits in 0.1 MB"):
        pick(ranked, 1e13, max_bytes=1e5)


def test_grid_cells_are_recipes_of_their_own_compression():
    a = Schedule(d_model=64)
    cell = {"search_id": "s", "experiment": "e", "trial_id": "t0", "budget_flops": 1e12,
            "corpus_id": "c", "schema_version": 3, "budgetune_version": "t", "sparsity": 0.5,
            "quant_bits": 4, "val_loss_compressed": 3.05, "compressed_bytes": 200_000,
            "one_shot": True}
    ranked = rank_recipes(_results([_report("t0", a, 3.0)], [cell]))
    assert sorted(zip(ranked["sparsity"], ranked["quant_bits"])) == [(0.0, 32), (0.5, 4)]
    assert pick(ranked, 1e12, max_bytes=500_000).winner["one_shot"]


def test_recipes_without_a_standard_error_are_judged_on_their_means():
    """A table that recorded no val_loss_se (NaN) must still give an answer: it crashed
    `status` on a real search before (no recipe was 'within noise' of a NaN)."""
    big, small = Schedule(d_model=128), Schedule(d_model=64)
    ranked = rank_recipes(_results([_report("t0", big, 3.0, se=math.nan, nbytes=2_000_000),
                                    _report("t1", small, 3.1, se=math.nan, nbytes=500_000)]))
    p = pick(ranked, 1e12)
    assert p.winner["d_model"] == 128 and not p.smaller_preferred


def test_cells_of_one_trained_model_are_compared_paired():
    """Two compression cells of one trial are the same model on the same tokens: 0.05 apart
    with a paired standard error of 0.005 each is a clear difference, even though each loss
    alone has an evaluation standard error of 0.03 (as independent: within noise)."""
    a = Schedule(d_model=64)
    ranked = rank_recipes(_results(
        [_report("t0", a, 2.95, se=0.03, nbytes=4_000_000)],
        [_cell("t0", 0.5, 8, 3.00, 1_000_000, diff_se=0.005),
         _cell("t0", 0.75, 4, 3.05, 900_000, diff_se=0.005)]))
    p = pick(ranked, 1e12, max_bytes=2_000_000)
    assert p.lowest["sparsity"] == 0.5 and p.winner["sparsity"] == 0.5
    assert not p.smaller_preferred and len(p.within_noise) == 1
    assert p.basis == "single seed"


def test_different_models_stay_independent_even_with_a_paired_se():
    """Different training: their diff_se (0 for each model as is, against itself) says
    nothing about their difference, so 0.01 apart with se 0.03 each is within noise."""
    big, small = Schedule(d_model=128), Schedule(d_model=64)
    ranked = rank_recipes(_results([_report("t0", big, 3.00, se=0.03, nbytes=2_000_000),
                                    _report("t1", small, 3.01, se=0.03, nbytes=500_000)]))
    p = pick(ranked, 1e12)
    assert p.lowest["d_model"] == 128 and p.winner["d_model"] == 64
    assert p.smaller_preferred and len(p.within_noise) == 2


@pytest.mark.parametrize(("shifts", "within"), [((0.05, 0.06, 0.04), False),
                                                ((0.05, -0.05, 0.15), True)])
def test_three_seeds_of_one_recipe_compare_cells_by_their_per_seed_differences(shifts,
                                                                            within):
    """Seeds spread 0.1 apart (as independent recipes a 0.05 gap is within noise), but a cell
    that is 0.05 worse on every seed is clearly worse; one whose per-seed differences scatter
    as much as the seeds themselves is not."""
    a = Schedule(d_model=64)
    base = (3.0, 3.2, 3.1)
    reports = [_report(f"t{s}", a.replace(seed=s), loss, nbytes=2_000_000)
               for s, loss in enumerate(base)]
    cells = [_cell(f"t{s}", 0.5, 4, loss + shift, 500_000, diff_se=0.001)
             for s, (loss, shift) in enumerate(zip(base, shifts))]
    p = pick(rank_recipes(_results(reports, cells)), 1e12)
    assert p.lowest["sparsity"] == 0.0 and p.basis == "mean of 3 seeds"
    assert p.smaller_preferred is within and len(p.within_noise) == (2 if within else 1)


def _recipe_oracle(variants) -> dict:
    """rank_recipes' numbers, recipe by recipe, in plain Python (its definition)."""
    from scipy import stats

    from budgetune.analysis._candidates import RECIPE_KEY

    out = {}
    for key, g in variants.groupby(RECIPE_KEY, sort=False, dropna=False):
        g = g.sort_values("loss", kind="stable")
        seeds = sorted({int(s) for s in g["seed"]})
        per_seed = {s: float(g.loc[g["seed"] == s, "loss"].mean()) for s in seeds}
        diff = {}
        for s in seeds:
            x = [float(v) for v in g.loc[g["seed"] == s, "diff_se"]]
            known = [v for v in x if v == v]  # none known: no standard error, not 0
            diff[s] = math.sqrt(sum(v * v for v in known)) / len(x) if known else math.nan
        n, values = len(seeds), list(per_seed.values())
        mean = sum(values) / n
        se = (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n >= 2
              else float(g["loss_se"].iloc[0]))
        half = (stats.t.ppf(0.975, n - 1) if n >= 2 else 1.959963984540054) * se
        out[tuple("nan" if pd.isna(k) else k for k in key)] = {
            "loss_mean": mean, "loss_se": se, "loss_low": mean - half, "loss_high": mean + half,
            "n_seeds": n, "seeds": tuple(seeds), "seed_losses": per_seed, "seed_diff_se": diff,
            "compressed_bytes": int(g["compressed_bytes"].max()),
            "trial_id": g["trial_id"].iloc[0], "best_seed": int(g["seed"].iloc[0])}
    return out


def test_rank_recipes_and_pick_agree_with_their_definition_on_a_random_table():
    """Many recipes (2 widths × 3 learning rates × grid cells), 1–3 seeds each, one seed
    measured twice (two searches), standard errors missing here and there: the grouped
    aggregates give each recipe's numbers as the per-recipe definition does, and pick's
    vectorized noise rule the row-by-row one."""
    import random

    from budgetune.analysis._candidates import (
        RECIPE_KEY,
        compressed_variants,
        noise_of_difference,
    )

    rng = random.Random(0)
    reports, cells = [], []
    for width in (32, 64):
        for k, lr in enumerate((1e-3, 2e-3, 4e-3)):
            for seed in range(1 + k):  # 1, 2 and 3 seeds
                for search in ("s", "s2") if (width, lr, seed) == (64, 2e-3, 0) else ("s",):
                    tid = f"{width}-{lr}-{seed}-{search}"
                    loss = 3 + rng.random() * 0.05
                    row = _report(tid, Schedule(d_model=width, lr=lr, seed=seed), loss,
                                  se=rng.choice([0.01, 0.02, math.nan]),
                                  nbytes=width * 10_000, diff_se=0.0)
                    reports.append({**row, "search_id": search})
                    for sparsity, bits in ((0.5, 8), (0.5, 4), (0.0, 4)):
                        cells.append({**_cell(tid, sparsity, bits, loss + rng.random() * 0.03,
                                              width * 2_500 * bits // 8,
                                              rng.choice([0.001, 0.003, math.nan])),
                                      "search_id": search})
    results = _results(reports, cells)
    ranked = rank_recipes(results)
    oracle = _recipe_oracle(compressed_variants(results))
    assert len(ranked) == len(oracle) == 24
    assert sorted(ranked["n_seeds"].unique()) == [1, 2, 3]  # pooled and single seeds both
    for row in ranked.to_dict("records"):
        want = oracle[tuple("nan" if pd.isna(row[k]) else row[k] for k in RECIPE_KEY)]
        for name, value in want.items():
            got = row[name]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-12, nan_ok=True), name
            elif isinstance(value, dict):
                assert got.keys() == value.keys() and all(
                    got[k] == pytest.approx(v, rel=1e-12, nan_ok=True)
                    for k, v in value.items()), name
            else:
                assert got == value, name
    assert list(ranked["loss_mean"]) == sorted(ranked["loss_mean"])
    for limit in (None, 300_000, 100_000):
        p = pick(ranked, 1e12, limit)
        pool = ranked if limit is None else ranked[ranked["compressed_bytes"] <= limit]
        lowest = pool.iloc[0]
        near = [r for _, r in pool.iterrows()
                if r["loss_mean"] - lowest["loss_mean"] <= noise_of_difference(r, lowest)]
        assert [(r["trial_id"], r["sparsity"], r["quant_bits"]) for r in near] == [
            (r["trial_id"], r["sparsity"], r["quant_bits"]) for r in p.within_noise]
        assert len(near) < len(pool)  # the rule decided something
