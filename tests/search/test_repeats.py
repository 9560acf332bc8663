"""search --repeats: the top recipes of each budget retrained with two more seeds."""

from __future__ import annotations

import dataclasses

import pytest

from budgetune.analysis import load_results, pick, rank_recipes
from budgetune.analysis._candidates import TRAINING_FIELDS
from budgetune.results import read_table
from budgetune.search import SearchSpec, run_search
from budgetune.search._plan import plan_search
from budgetune.search._repeats import repeat_schedules
from budgetune.spaces import Schedule

BUDGET = 3e10


@pytest.mark.parametrize("lr_schedule", ["cosine", "wsd"])
def test_the_dry_run_counts_the_repeats(lr_schedule):
    spec = SearchSpec(space="quick", budgets=(BUDGET, 9e10), num_samples=3, max_mb=None,
                      lr_schedule=lr_schedule)
    plain, repeated = plan_search(spec), plan_search(dataclasses.replace(spec, repeats=2))
    for a, b in zip(plain.budgets, repeated.budgets):
        assert b.repeat_trials == 4  # 2 recipes × 2 more seeds
        # cosine: a row per budget; wsd: one row, repeats at every budget of the search
        retrained = 4 * (a.budget if lr_schedule == "cosine" else sum(spec.budgets))
        assert b.expected_flops == pytest.approx(a.expected_flops + retrained)
        assert b.worst_flops == pytest.approx(a.worst_flops + retrained)
    assert len(plain.budgets) == (2 if lr_schedule == "cosine" else 1)
    assert repeated.wall_s > plain.wall_s


def test_a_negative_repeats_is_refused():
    with pytest.raises(ValueError, match="`repeats` is -1, but must be >= 0"):
        SearchSpec(space="quick", budgets=(BUDGET,), repeats=-1)


@pytest.mark.slow  # a search, its repeats and a resume: ~1-2 min on 2 shared cores
def test_the_top_recipe_gets_three_seeds_and_a_resume_repeats_nothing(tmp_path):
    spec = SearchSpec(space="quick", budgets=(BUDGET,), num_samples=2, max_mb=None,
                      eval_tokens=1024, results=str(tmp_path), name="r", repeats=1)
    lines = []
    run_search(spec, progress=lines.append)
    assert any("repeats-3e+10: retraining the top 1 recipe" in line for line in lines), lines
    trials = read_table(spec.folder(), "trials")
    repeats = trials[trials["experiment"] == "repeats-3e+10"]
    assert len(repeats) == 2 and set(repeats["status"]) == {"done"}
    # the repeated recipe: the search's best training recipe, now measured on 3 seeds
    ranked = rank_recipes(load_results(spec.results, spec.name))
    repeated = repeats[TRAINING_FIELDS].drop_duplicates()
    assert len(repeated) == 1 and set(repeats["seed"]) == {1, 2}
    rows = ranked.merge(repeated, on=TRAINING_FIELDS)
    assert len(rows) and (rows["n_seeds"] == 3).all()
    assert all(seeds == (0, 1, 2) for seeds in rows["seeds"])
    assert len(trials[trials["experiment"] == "budget-3e+10"]) == 2
    # a resume after the repeats finished restores them and trains nothing more
    run_search(spec, resume=True, progress=lines.append)
    assert len(read_table(spec.folder(), "trials")) == len(trials)


def test_the_first_recipe_repeated_is_the_one_best_answers():
    """pick prefers a smaller recipe within noise of the lowest: that answer is what the
    repeats must put on three seeds, then the next distinct training recipes by rank."""
    from tests.analysis.test_candidates import _report, _results

    big, small, other = (Schedule(d_model=d) for d in (128, 64, 96))
    ranked = rank_recipes(_results([_report("t0", big, 3.00, se=0.03, nbytes=2_000_000),
                                    _report("t1", small, 3.01, se=0.03, nbytes=500_000),
                                    _report("t2", other, 3.50, se=0.03, nbytes=900_000)]))
    assert pick(ranked, 1e12).winner["d_model"] == 64  # the answer: smaller, within noise
    one = repeat_schedules(ranked, 1e12, 1)
    assert [(s["d_model"], s["seed"]) for s in one] == [(64, 1), (64, 2)]
    two = repeat_schedules(ranked, 1e12, 2)
    assert [s["d_model"] for s in two] == [64, 64, 128, 128]
    assert repeat_schedules(ranked, 3e12, 1) == []  # no budget point at that budget
