"""Fits recover known laws, and reproduce the Chinchilla replication on its own points."""

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from budgetune.analysis import (
    FitError,
    FitOptions,
    fit_compute_law,
    fit_scaling_law,
)
from budgetune.analysis._fit import _objective
from tests.analysis.synthetic import TRUE_LAW, law

# Points extracted from Chinchilla's Figure 4 (Besiroglu et al. 2024), copied from shared/data.
CHINCHILLA = Path(__file__).parents[1] / "data" / "chinchilla_fig4_points.csv"


def _chinchilla_points():
    df = pd.read_csv(CHINCHILLA).sort_values("loss").iloc[:-5]  # the 5 highest losses out
    n = df["Model Size"].to_numpy()
    return n, df["Training FLOP"].to_numpy() / (6 * n), df["loss"].to_numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaling_law_fit_recovers_the_parameters_of_a_noisy_synthetic_law(seed):
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(1e5), np.log(1e8), 300))
    d = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 300))
    loss = law(n, d) * np.exp(rng.normal(0, 0.003, 300))
    fit = fit_scaling_law(n, d, loss)
    assert fit.status == "converged"
    assert fit.E == pytest.approx(TRUE_LAW["E"], rel=0.03)
    assert fit.alpha == pytest.approx(TRUE_LAW["alpha"], abs=0.02)
    assert fit.beta == pytest.approx(TRUE_LAW["beta"], abs=0.02)


def test_compute_law_fit_recovers_a_synthetic_envelope_with_an_interval_that_covers_it():
    rng = np.random.default_rng(0)
    c = np.logspace(11, 16, 15)
    loss = (2.0 + 300 * c**-0.25) * np.exp(rng.normal(0, 0.002, len(c)))
    fit = fit_compute_law(c, loss, FitOptions(bootstrap=60))
    assert fit.E == pytest.approx(2.0, rel=0.02) and fit.alpha == pytest.approx(0.25, abs=0.02)
    low, high = fit.loss_interval(1e14)
    assert low <= 2.0 + 300 * 1e14**-0.25 <= high


def test_analytic_gradient_matches_finite_differences():
    n, d, loss = _chinchilla_points()
    args = (np.log(n), np.log(d), np.log(loss), 0.05)  # a wide δ: both Huber branches occur
    theta = np.array([0.5, 6.0, 7.5, 0.3, 0.35])
    _, grad = _objective(theta, *args)
    eps = 1e-6
    numeric = [(_objective(theta + eps * e, *args)[0] - _objective(theta - eps * e, *args)[0])
               / (2 * eps) for e in np.eye(5)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-8)


def test_chinchilla_points_reproduce_the_replication_within_its_standard_errors():
    """Besiroglu et al. 2024: E = 1.82 (0.03), α = 0.35 (0.02), β = 0.37 (0.02)."""
    n, d, loss = _chinchilla_points()
    t0 = time.perf_counter()
    fit = fit_scaling_law(n, d, loss)
    elapsed = time.perf_counter() - t0
    assert fit.status == "converged" and fit.n_points == 240
    assert abs(fit.E - 1.82) <= 0.03 and abs(fit.alpha - 0.35) <= 0.02
    assert abs(fit.beta - 0.37) <= 0.02 and abs(fit.a - 0.51) <= 0.02
    print(f"chinchilla point fit: {elapsed:.2f} s")  # the target is < 5 s here


@pytest.mark.slow
def test_top_k_starts_find_the_same_optimum_as_the_full_grid_of_starts():
    n, d, loss = _chinchilla_points()
    fast = fit_scaling_law(n, d, loss)
    full = fit_scaling_law(n, d, loss, FitOptions(top_k=None))  # 4500 L-BFGS-B runs
    assert fast.objective == pytest.approx(full.objective, rel=1e-6)
    for key in ("E", "A", "B", "alpha", "beta"):
        assert getattr(fast, key) == pytest.approx(getattr(full, key), rel=1e-4)


def test_bootstrap_intervals_contain_the_point_estimate():
    n, d, loss = _chinchilla_points()
    fit = fit_scaling_law(n, d, loss, FitOptions(bootstrap=20))
    for key in ("E", "alpha", "beta", "a"):
        iv = fit.intervals[key]
        assert iv.low <= getattr(fit, key) <= iv.high and iv.std > 0


def test_optimal_allocation_spends_the_budget_and_is_the_minimum():
    n, d, loss = _chinchilla_points()
    fit = fit_scaling_law(n, d, loss)
    c = 1e21
    n_opt, d_opt, l_opt = fit.optimal_allocation(c)
    assert 6 * n_opt * d_opt == pytest.approx(c)
    for factor in (0.8, 1.25):
        assert fit.loss(n_opt * factor, c / (6 * n_opt * factor)) > l_opt


@pytest.mark.parametrize("args", [
    ([1, 2], [1, 2], [1, 2]),
    ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, -3, 4, 5]),
])
def test_fits_refuse_unusable_points_with_a_named_error(args):
    with pytest.raises(FitError):
        fit_scaling_law(*args)
