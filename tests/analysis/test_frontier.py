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
)
from tests.analysis.synthetic import TRUE_LAW, law, law_results


def test_envelope_is_the_running_minimum_where_it_improves():
    env = make_envelope(np.array([3.0, 1.0, 2.0, 4.0]), np.array([5.0, 7.0, 6.0, 6.5]))
    assert list(env.flops) == [1.0, 2.0, 3.0] and list(env.loss) == [7.0, 6.0, 5.0]


def test_isoflop_parabola_finds_the_vertex_of_a_known_profile():
    n = np.logspace(5, 7, 9)
    loss = 3.0 + 0.2 * (np.log(n) - np.log(1e6)) ** 2
    profile = isoflop_profile(1e15, n, loss)
    assert profile.status == "ok" and profile.n_opt == pytest.approx(1e6, rel=1e-6)
    assert isoflop_profile(1e15, n[:2], loss[:2]).status == "too_few_sizes"


def test_frontier_of_a_law_drawn_table_recovers_the_law_and_its_optimal_sizes(tmp_path):
    info = frontier(load_results(law_results(tmp_path, noise=0.002)))
    fit = info.scaling_fit
    assert fit.status == "converged"
    assert fit.alpha == pytest.approx(TRUE_LAW["alpha"], abs=0.03)
    assert fit.beta == pytest.approx(TRUE_LAW["beta"], abs=0.03)
    assert info.compute_fit is not None and info.compute_fit.status == "converged"
    for profile in info.isoflops:  # each IsoFLOP vertex agrees with the law's own optimum
        n = np.logspace(5.5, 8, 400)
        true_opt = n[np.argmin(law(n, profile.budget_flops / (6 * n)))]
        assert profile.status == "ok"
        assert np.log(profile.n_opt) == pytest.approx(np.log(true_opt), abs=0.35)


def test_pareto_front_keeps_only_points_no_smaller_point_beats():
    size, loss = np.array([1.0, 2.0, 3.0, 4.0, 2.0]), np.array([5.0, 4.0, 4.5, 3.0, 6.0])
    s, l_ = pareto_front(size, loss)
    assert list(s) == [1.0, 2.0, 4.0] and list(l_) == [5.0, 4.0, 3.0]


def test_share_effect_groups_final_losses_by_fraction(tmp_path):
    from budgetune.spaces import Schedule
    from tests.analysis.synthetic import trial_rows, write

    rows, trials = [], []
    for i, (frac, loss) in enumerate([(0.0, 3.0), (0.0, 3.2), (0.1, 2.9)]):
        r, t = trial_rows("e", f"t{i}", 1e12, 1e5, loss,
                          schedule=Schedule(share_fraction=frac))
        rows += r
        trials.append(t)
    write(tmp_path, "s", rows, trials)
    (effect,) = share_effect(load_results(tmp_path))
    assert list(effect.fractions) == [0.0, 0.1]
    assert list(effect.mean_loss) == pytest.approx([3.1, 2.9])
