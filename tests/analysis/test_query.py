"""best_schedule on hand-made tables: budget, size limit, grid cells, extrapolation."""

import pytest

from budgetune.analysis import best_schedule, load_results
from budgetune.results import ResultsError
from budgetune.spaces import Schedule
from tests.analysis.synthetic import grid_row, law_results, trial_rows, write


@pytest.fixture
def hand_made(tmp_path):
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
    r, t = trial_rows("e", "stopped", 1e12, 1e6, 2.0, status="stopped", stop_reason="asha")
    write(tmp_path, "s", rows + r, trials + [t], grid)
    return load_results(tmp_path)


def test_best_is_the_lowest_completed_loss_within_the_budget(hand_made):
    best = best_schedule(hand_made, 1e12)
    assert best.trial_id == "large" and best.val_loss_compressed == 3.5
    assert best.schedule["d_model"] == 256 and not best.one_shot


def test_a_larger_budget_admits_the_trial_trained_longer(hand_made):
    assert best_schedule(hand_made, 2e13).trial_id == "bigger_budget"


def test_size_limit_picks_the_large_model_compressed_hard(hand_made):
    best = best_schedule(hand_made, 1e12, max_bytes=1.5e6)
    assert (best.trial_id, best.sparsity, best.quant_bits) == ("large", 0.75, 4)
    assert best.one_shot and best.compressed_bytes == 1_400_000


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


def test_a_budget_beyond_the_data_gets_an_extrapolated_recommendation(tmp_path):
    results = load_results(law_results(tmp_path, noise=0.002))
    inside = best_schedule(results, 1e17)
    beyond = best_schedule(results, 1e19)
    assert not inside.recommendation.extrapolated and beyond.recommendation.extrapolated
    assert beyond.recommendation.n_params_nonemb > inside.recommendation.n_params_nonemb
    assert beyond.recommendation.expected_loss < inside.val_loss_compressed
    low, high = inside.frontier_interval
    assert low <= inside.frontier_loss <= high
