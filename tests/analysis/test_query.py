"""best_schedule: the one pick, its size limit, and every figure labelled with its basis."""

import json
import math

import numpy as np
import pytest

from budgetune.analysis import best_schedule, load_results
from budgetune.flops import flops_per_step, flops_per_token, plan_steps, tokens_per_step
from budgetune.results import ResultsError
from budgetune.spaces import Schedule
from tests.analysis.synthetic import (
    FAMILY,
    hand_made_rows,
    law_results,
    trial_rows,
    true_allocation,
    write,
)


@pytest.fixture
def hand_made(tmp_path):
    write(tmp_path, "s", *hand_made_rows())
    return load_results(tmp_path)


def test_best_is_the_lowest_budget_point_within_the_budget(hand_made):
    best = best_schedule(hand_made, 1e12)
    assert best.trial_id == "large" and best.val_loss_compressed == 3.5
    assert best.schedule["d_model"] == 256 and not best.one_shot
    assert best.size_limit == "none" and best.max_bytes is None


def test_a_larger_budget_admits_the_trial_trained_longer(hand_made):
    assert best_schedule(hand_made, 2e13).trial_id == "bigger_budget"


def test_size_limit_picks_the_large_model_compressed_hard(hand_made):
    best = best_schedule(hand_made, 1e12, max_bytes=1.5e6)
    assert (best.trial_id, best.sparsity, best.quant_bits) == ("large", 0.75, 4)
    assert best.one_shot and best.compressed_bytes == 1_400_000
    assert best.schedule["quant_bits"] == 4  # the schedule is the winning cell's


def test_a_tighter_limit_falls_back_to_the_small_model(hand_made):
    best = best_schedule(hand_made, 1e12, max_bytes=5e5)
    assert (best.trial_id, best.quant_bits) == ("small", 8)


def test_impossible_limits_and_budgets_explain_themselves(hand_made):
    with pytest.raises(ResultsError, match=r"fits in 0.1 MB \(the smallest is 0.4 MB\)"):
        best_schedule(hand_made, 1e12, max_bytes=1e5)
    with pytest.raises(ResultsError, match="the smallest is 1e\\+12"):
        best_schedule(hand_made, 1e11)
    with pytest.raises(ValueError, match="`budget`"):
        best_schedule(hand_made, -1)


def test_a_budget_beyond_one_measured_budget_is_extrapolated_and_no_fit_is_a_number(
        tmp_path):
    """Item 8: `best --budget 1e15` over a search at 3e11 said 3.59 [2.80, 4.57], unmarked."""
    rows, trials = [], []
    for i, d in enumerate((32, 64, 96, 128, 160, 192)):
        r, t = trial_rows("e", f"t{i}", 3e11, 12 * 2 * d * d, 4.0 - 0.1 * i,
                          schedule=Schedule(d_model=d, n_layers=2, n_heads=d // 32))
        rows += r
        trials.append(t)
    write(tmp_path, "s", rows, trials)
    best = best_schedule(load_results(tmp_path), 1e15).to_dict()
    assert best["extrapolated"] and best["factor"] == pytest.approx(1e15 / 3e11)
    assert best["largest_measured_budget"] == 3e11 and best["trained_budget_flops"] == 3e11
    front, rec = best["frontier"], best["recommendation"]
    assert front["loss"] is None and front["interval"] is None and front["extrapolated"]
    assert "measured budget" in front["reason"]
    assert rec["n_params_nonemb"] is None and rec["expected_loss"] is None
    assert "1 measured budget" in rec["reason"] and rec["extrapolated"]
    json.dumps(best, allow_nan=False)  # a stable, plain JSON object


def test_a_frontier_fit_stopped_at_a_bound_is_not_quoted(tmp_path):
    """A pure power law has E = 0: the L(C) fit ends at its lower bound on E."""
    rows, trials = [], []
    for i, budget in enumerate((1e12, 3e12, 1e13, 3e13)):
        r, t = trial_rows("e", f"t{i}", budget, 1e5, 40 * budget ** -0.1)
        rows += r
        trials.append(t)
    write(tmp_path, "s", rows, trials)
    best = best_schedule(load_results(tmp_path), 1e13)
    assert not best.extrapolated and best.frontier.loss is None
    assert "stopped at a bound" in best.frontier.reason


def test_the_allocation_is_the_true_laws_and_fits_the_budget_by_the_trainers_count(tmp_path):
    """Item 2: D comes from the trainer's FLOPs per token for the recommended shape, not 6·N;
    on a table drawn from a known law, N is the true law's optimum along the same family."""
    results = load_results(law_results(tmp_path, noise=0.002))
    for budget in (3e16, 1e18):
        best = best_schedule(results, budget)
        rec = best.recommendation
        assert rec.reason is None and rec.extrapolated == (budget > 1e17)
        s = Schedule(**{**best.schedule, **rec.shape})
        steps = plan_steps(s, budget, min_steps=1)
        assert rec.tokens == steps * tokens_per_step(s)
        assert rec.tokens * flops_per_token(s) <= budget
        assert budget - rec.tokens * flops_per_token(s) < flops_per_step(s)  # < one step short
        assert rec.n_params_nonemb == 12 * s.n_layers * s.d_model**2
        assert s.d_model / s.n_layers == FAMILY[0].d_model / FAMILY[0].n_layers == 32
        # The continuous optimum lands on the true law's; rounding to whole layers moves N by
        # at most the ratio of neighbouring shapes.
        assert abs(math.log(rec.n_params_nonemb / true_allocation(budget))) < 0.35
    inside = best_schedule(results, 1e17)
    beyond = best_schedule(results, 1e19)
    assert beyond.recommendation.n_params_nonemb > inside.recommendation.n_params_nonemb
    low, high = inside.frontier.interval
    assert low <= inside.frontier.loss <= high and not inside.frontier.extrapolated
    assert beyond.frontier.extrapolated and beyond.frontier.factor == pytest.approx(100)


def test_seeds_and_noise_decide_and_the_answer_says_so(tmp_path):
    """Item 9: a recipe repeated over seeds is judged by its mean; a smaller recipe within
    noise of the lowest wins, and both are named."""
    big, small = Schedule(d_model=128, n_heads=4), Schedule(d_model=64, n_heads=2)
    rows, trials = [], []
    for seed, loss in enumerate((3.00, 3.02, 2.98)):
        r, t = trial_rows("e", f"big{seed}", 1e12, 2e5, loss, bytes_=2_000_000,
                          schedule=big.replace(seed=seed))
        rows += r
        trials.append(t)
    r, t = trial_rows("e", "small", 1e12, 5e4, 3.01, bytes_=500_000, schedule=small)
    write(tmp_path, "s", rows + r, trials + [t])
    best = best_schedule(load_results(tmp_path), 1e12)
    assert best.trial_id == "small" and best.smaller_preferred and best.basis == "single seed"
    assert best.lowest_loss == pytest.approx(3.0)
    (big_row,) = [r for r in best.within_noise if r["d_model"] == 128]
    assert big_row["n_seeds"] == 3 and big_row["seeds"] == [0, 1, 2]
    assert big_row["loss_low"] < 3.0 < big_row["loss_high"]
    assert np.allclose(best.loss_interval, (3.01 - 1.96 * 0.01, 3.01 + 1.96 * 0.01), atol=1e-4)


def test_an_lc_fit_exactly_through_three_budgets_is_not_quoted(tmp_path):
    """Three budgets give three envelope points for three parameters: an exact curve with a
    zero-width bootstrap interval (seen on a real 3-budget quick search: 3.7041, 95%
    [3.7041, 3.7041] at 556× beyond the data). It is reported as such, not as a number."""
    rows, trials = [], []
    for i, (budget, loss) in enumerate(((2e11, 6.09), (6e11, 4.96), (1.8e12, 4.36))):
        r, t = trial_rows("e", f"t{i}", budget, 1e5, loss)
        rows += r
        trials.append(t)
    write(tmp_path, "s", rows, trials)
    front = best_schedule(load_results(tmp_path), 1e15).frontier
    assert front.loss is None and front.interval is None
    assert "passes exactly through its 3 points" in front.reason


def test_a_fit_not_quoted_is_no_number_in_the_served_frontier_nor_the_plot(tmp_path):
    """What the analysis does not quote, /api/frontier and the plot's legend do not either."""
    import json

    from budgetune.analysis import frontier, plots
    from budgetune.service._answers import frontier_json

    rows, trials = [], []
    for i, budget in enumerate((1e12, 3e12, 1e13, 3e13)):  # E = 0: the fit ends at its bound
        r, t = trial_rows("e", f"t{i}", budget, 1e5, 40 * budget ** -0.1)
        rows += r
        trials.append(t)
    write(tmp_path, "s", rows, trials)
    info = frontier(load_results(tmp_path))
    assert info.compute_fit is not None and "stopped at a bound" in info.compute_reason
    served = json.loads(frontier_json(info))
    assert served["compute_fit"] is None and "stopped at a bound" in served["compute_reason"]
    legend = [t.get_text() for t in plots.plot_frontier(info).get_legend().get_texts()]
    assert not any("L(C) =" in text for text in legend), legend
