"""Frontiers computed from results tables drawn from a known law."""

import numpy as np
import pytest

from budgetune.analysis import envelope as make_envelope
from budgetune.analysis import (
    frontier,
    isoflop_profile,
    load_results,
    pareto_front,
    share_effect,
    size_quality,
)
from tests.analysis.synthetic import FAMILY, TRUE_LAW, law_results, true_allocation


def test_envelope_is_the_running_minimum_where_it_improves():
    env = make_envelope(np.array([3.0, 1.0, 2.0, 4.0]), np.array([5.0, 7.0, 6.0, 6.5]))
    assert list(env.flops) == [1.0, 2.0, 3.0] and list(env.loss) == [7.0, 6.0, 5.0]


def test_isoflop_parabola_finds_the_vertex_of_a_known_profile():
    n = np.logspace(5, 7, 9)
    loss = 3.0 + 0.2 * (np.log(n) - np.log(1e6)) ** 2
    profile = isoflop_profile(1e15, n, loss)
    assert profile.status == "ok" and profile.n_opt == pytest.approx(1e6, rel=1e-6)
    assert isoflop_profile(1e15, n[:2], loss[:2]).status == "too_few_sizes"


def _check_recovers_the_law(info):
    fit = info.scaling_fit
    assert fit.status == "converged" and info.scaling_reason is None
    assert fit.alpha == pytest.approx(TRUE_LAW["alpha"], abs=0.03)
    assert fit.beta == pytest.approx(TRUE_LAW["beta"], abs=0.03)
    assert fit.E == pytest.approx(TRUE_LAW["E"], rel=0.05)
    for profile in info.isoflops:  # each IsoFLOP vertex agrees with the law's own optimum
        assert profile.status == "ok" and len(profile.n) == len(FAMILY)  # one point per N
        assert np.log(profile.n_opt) == pytest.approx(
            np.log(true_allocation(profile.budget_flops)), abs=0.35)


def test_frontier_of_a_law_drawn_table_recovers_the_law_and_its_optimal_sizes(tmp_path):
    info = frontier(load_results(law_results(tmp_path, noise=0.002)))
    _check_recovers_the_law(info)
    assert info.compute_fit is not None and info.compute_reason is None
    assert list(info.envelope.flops) == [1e15, 3e15, 1e16, 3e16, 1e17]  # budget points only
    assert info.largest_budget == 1e17
    # The stopped trials (loss 1.0, below the law everywhere) are curves, never fitted.
    assert info.fitted["val_loss"].min() > 1.5 and info.envelope.loss.min() > 1.5
    assert (info.curves["val_loss"] == 1.0).any()


def test_compressed_losses_and_badly_tuned_twins_do_not_bend_the_fits(tmp_path):
    """Item 4: L(N, D) and the IsoFLOP parabolas use the uncompressed val_loss of the best
    recipe per N per budget. Here the larger models' targets are compressed hard (their
    val_loss_compressed is up to 1.5 nats worse) and every size has a second, worse-tuned
    recipe at each budget: fitting either would move α and the vertices. Sparse-trained
    recipes at sizes between the dense ones report their dense N with the pruned model's
    val_loss (0.3 nats worse): L(N, D) and IsoFLOP fit dense-trained points only, and say
    what they left out."""
    root = law_results(tmp_path, noise=0.002,
                       compressed_penalty=lambda n: 1.5 * (np.log(n) - np.log(9e4)) / 13,
                       twin_penalty=lambda n: 0.6 * (np.log(n) - np.log(9e4)) / 13 + 0.2,
                       pruned_penalty=lambda n: 0.3)
    info = frontier(load_results(root))
    _check_recovers_the_law(info)
    assert any("10 budget points of sparse-trained" in note for note in info.notes)


def test_the_size_quality_frontier_is_of_budget_points_only(tmp_path):
    info_root = law_results(tmp_path, noise=0.002, budgets=(1e15,))
    (sq,) = size_quality(load_results(info_root))
    assert len(sq.loss) == len(FAMILY)  # stopped trials (loss 1.0) are not there
    assert sq.loss.min() > 1.5 and sq.pareto_loss.min() == sq.loss.min()


def test_pareto_front_keeps_only_points_no_smaller_point_beats():
    size, loss = np.array([1.0, 2.0, 3.0, 4.0, 2.0]), np.array([5.0, 4.0, 4.5, 3.0, 6.0])
    s, l_ = pareto_front(size, loss)
    assert list(s) == [1.0, 2.0, 4.0] and list(l_) == [5.0, 4.0, 3.0]


def test_share_effect_groups_final_losses_by_fraction(tmp_path):
    from budgetune.spaces import Schedule
    from tests.analysis.synthetic import trial_rows, write

    rows, trials = [], []
    cases = [(0.0, 3.0, 0.0), (0.0, 3.2, 0.0), (0.1, 2.9, 0.0), (0.1, 3.9, 0.5)]
    for i, (frac, loss, sparsity) in enumerate(cases):  # the last: sparse-trained, left out
        r, t = trial_rows("e", f"t{i}", 1e12, 1e5, loss,
                          schedule=Schedule(share_fraction=frac, seed=i,
                                            prune_sparsity=sparsity))
        rows += r
        trials.append(t)
    write(tmp_path, "s", rows, trials)
    (effect,) = share_effect(load_results(tmp_path))
    assert list(effect.fractions) == [0.0, 0.1]
    assert list(effect.mean_loss) == pytest.approx([3.1, 2.9])


def test_a_size_limited_envelope_is_of_the_best_recipe_within_the_limit(tmp_path):
    """Item 8: the frontier value under --max-mb is the envelope of what fits, not of all."""
    from budgetune.analysis import best_schedule

    results = load_results(law_results(tmp_path, noise=0.002))
    free, limited = frontier(results), frontier(results, max_bytes=5e6)
    assert (limited.best["compressed_bytes"] <= 5e6).all()
    assert (free.best["compressed_bytes"] > 5e6).any()
    assert limited.envelope.loss[-1] > free.envelope.loss[-1] + 0.05
    ask_free = best_schedule(results, 1e17, info=free)
    ask_limited = best_schedule(results, 1e17, max_bytes=5e6, info=limited)
    assert ask_limited.frontier.loss > ask_free.frontier.loss
    assert ask_limited.compressed_bytes <= 5e6 < ask_free.compressed_bytes


def test_the_envelope_follows_the_lowest_loss_not_the_smaller_recipe_preferred(tmp_path):
    """Within noise pick prefers a smaller recipe (3.01 over 3.00); the frontier L(C) is of
    the lowest loss measured at each budget."""
    from budgetune.spaces import Schedule
    from tests.analysis.synthetic import trial_rows, write

    reports, trials = [], []
    for tid, d, loss, nbytes in (("big", 256, 3.00, 8_000_000), ("small", 64, 3.01, 500_000)):
        r, t = trial_rows("e", tid, 1e12, 1e5, loss, bytes_=nbytes, se=0.03,
                          schedule=Schedule(d_model=d, n_heads=4))
        reports += r
        trials.append(t)
    write(tmp_path, "s", reports, trials)
    info = frontier(load_results(tmp_path))
    assert info.best["d_model"].tolist() == [64]  # the pick: smaller, within noise
    assert info.envelope.loss.tolist() == [pytest.approx(3.00)]
