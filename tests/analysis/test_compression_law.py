"""The compression-aware law L = E + A/(N·e_c)^α + B/D^β (Frantar et al. 2025): it recovers
known effective-size factors from results tables, says why when it cannot be fitted, and
``best``/``report`` show it, its prediction beyond the data marked EXTRAPOLATED."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from budgetune.analysis import (
    FitOptions,
    allocate_within,
    compression_law,
    load_results,
)
from budgetune.analysis._compression_law import _objective, quote_reason
from budgetune.analysis._fit import Interval
from tests.analysis.synthetic import (
    FAMILY,
    TRUE_FACTORS,
    TRUE_LAW,
    compression_results,
    law,
)

WIRING_BUDGETS = (1e15, 1e16, 1e17)  # a smaller table for the commands: 30 models


def _budgetune(*args):
    return subprocess.run([sys.executable, "-m", "budgetune.cli", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def wiring_table(tmp_path_factory):
    return compression_results(tmp_path_factory.mktemp("law"), budgets=WIRING_BUDGETS,
                               family=FAMILY[:5])


def test_the_law_recovers_known_factors_from_the_results_tables(tmp_path):
    """70 models (5 budgets × 7 sizes × dense or 50%-sparse training), each with its grid,
    written as Parquet and read back: every factor within 0.03 of the truth, with bootstrap
    intervals, and the one-shot cells (far worse than trained sparsity) left out."""
    results = load_results(compression_results(tmp_path))
    law_ = compression_law(results, FitOptions(bootstrap=20))
    fit = law_.fit
    assert law_.reason is None and fit.status == "converged" and fit.at_bound == ()
    assert (fit.n_models, len(fit.budgets), fit.n_points) == (70, 5, 210)
    assert set(fit.factors) == set(TRUE_FACTORS)
    for cell, truth in TRUE_FACTORS.items():
        assert fit.factors[cell] == pytest.approx(truth, abs=0.03), cell
        if cell != (32, 0.0):
            iv = fit.factor_intervals[cell]
            assert iv.low < fit.factors[cell] < iv.high and iv.high - iv.low < 0.1, cell
    assert fit.alpha == pytest.approx(TRUE_LAW["alpha"], abs=0.02)
    assert fit.beta == pytest.approx(TRUE_LAW["beta"], abs=0.02)
    assert any("one-shot cells" in note for note in law_.notes)


def test_the_objectives_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    n = 200
    log_n, log_d = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)
    cell = rng.integers(0, 4, n)
    theta = np.array([0.5, 1.0, 1.2, 0.35, 0.3, -0.1, -0.2, 0.05])
    log_l = np.log(1.7 + np.exp(1.0 - 0.35 * log_n) + np.exp(1.2 - 0.3 * log_d))
    args = (log_n, log_d, log_l + rng.normal(0, 0.01, n), 1e-3, cell, 4)
    _, grad = _objective(theta, *args)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        numeric = (_objective(theta + step, *args)[0] - _objective(theta - step, *args)[0]) / 2e-6
        assert grad[i] == pytest.approx(numeric, rel=1e-4, abs=1e-6), i


def test_a_factor_at_its_bound_is_named_and_the_law_not_quoted(tmp_path):
    """A cell whose losses claim 2.5× the effective size (above the bound 1.5) stops at the
    bound and pulls the other factors with it: the law says so instead of quoting numbers."""
    factors = {**TRUE_FACTORS, (8, 0.0): 2.5}
    law_ = compression_law(load_results(compression_results(tmp_path, factors=factors,
                                                            budgets=WIRING_BUDGETS)))
    assert law_.fit.at_bound == ((8, 0.0),)
    assert law_.quoted_cells() == []
    assert "the factor of 8 bits, sparsity 0 (e = 1.5) stopped at its bound" in law_.reason


def test_a_bootstrap_interval_at_a_bound_keeps_the_law_unquoted(wiring_table):
    """A point estimate inside its bounds whose 95% interval reaches one (a factor up to 1.5,
    α up to 10) is not pinned down by the table: the law is not quoted, and says which."""
    law_ = compression_law(load_results(wiring_table), FitOptions(bootstrap=10))
    fit = law_.fit
    assert law_.reason is None and quote_reason(fit, 3, 3.0) is None
    loose = dataclasses.replace(fit, factor_intervals={
        **fit.factor_intervals, (32, 0.5): Interval(0.78, 1.5, 0.2)})
    assert "the factor of 32 bits, sparsity 0.5 [0.78, 1.5] reaches its bound" in quote_reason(
        loose, 3, 3.0)
    steep = dataclasses.replace(fit, intervals={**fit.intervals,
                                                "alpha": Interval(0.1, 10.0, 3.0)})
    assert "α [0.1, 10] reaches its bound" in quote_reason(steep, 3, 3.0)


def test_without_three_budgets_or_compressed_cells_the_law_says_why(tmp_path):
    two = compression_law(load_results(compression_results(tmp_path / "a",
                                                           budgets=(1e15, 1e16))))
    assert two.fit is None
    assert "rests on 2 measured budgets; it needs >= 3" in two.reason
    dense = compression_law(load_results(compression_results(
        tmp_path / "b", factors={(32, 0.0): 1.0}, budgets=WIRING_BUDGETS)))
    assert dense.fit is None and "no model was measured compressed" in dense.reason
    unanchored = compression_law(load_results(compression_results(
        tmp_path / "c", factors={(32, 0.5): 0.87, (4, 0.5): 0.8}, budgets=WIRING_BUDGETS)))
    assert unanchored.fit is None
    assert "no model was measured uncompressed (32 bits, sparsity 0)" in unanchored.reason


def test_best_beyond_the_data_under_a_size_limit_gives_the_laws_cell_extrapolated(
        wiring_table):
    """At 10× the largest budget, within 3.7 MB, the law's answer is the shape and cell the
    true law prefers: 7 layers of width 224 trained to 50% sparsity at 4 bits (e = 0.80), the
    token matrix at int8 (0.9 MB of it). Labelled EXTRAPOLATED with the factor, in text and
    JSON."""
    out = _budgetune("best", "--budget", "1e18", "--max-mb", "3.7", "--results",
                     str(wiring_table), "--json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    c = answer["compression_law"]
    assert c["reason"] is None and (c["n_models"], c["n_budgets"], c["n_cells"]) == (30, 3, 6)
    p = c["prediction"]
    assert p["extrapolated"] and p["factor"] == pytest.approx(10.0)
    assert p["compressed_bytes"] <= 3.7e6 and p["train_flops"] <= 1e18

    def truth(cell):
        return allocate_within(lambda n, d: law(n * TRUE_FACTORS[cell], d), 1e18,
                               answer["schedule"], cell, 3.7e6)

    best_cell = min(TRUE_FACTORS, key=lambda cell: truth(cell).expected_loss)
    assert (p["quant_bits"], p["sparsity"]) == best_cell == (4, 0.5)
    assert p["shape"]["n_layers"] == truth(best_cell).schedule.n_layers == 7
    assert p["expected_loss"] == pytest.approx(truth(best_cell).expected_loss, abs=0.05)
    text = _budgetune("best", "--budget", "1e18", "--max-mb", "3.7", "--results",
                      str(wiring_table))
    assert text.returncode == 0, text.stderr
    assert ("compression-aware law (EXTRAPOLATED 10× beyond 1e17, the largest measured "
            "budget): within 3.7 MB, train d_model=224 n_layers=7") in text.stdout
    assert "to sparsity 0.5 at 4 bits (e = 0.8" in text.stdout
    assert "4 bits, sparsity 0.5: e = 0.8" in text.stdout and "(15 models)" in text.stdout


def test_best_within_the_data_lists_the_factors_and_no_prediction(wiring_table):
    out = _budgetune("best", "--budget", "1e17", "--max-mb", "3.7", "--results",
                     str(wiring_table), "--json")
    assert out.returncode == 0, out.stderr
    c = json.loads(out.stdout)["compression_law"]
    assert c["prediction"] is None
    assert c["prediction_reason"] == "within the measured budgets: the measured recipes answer"
    cells = {(f["quant_bits"], f["sparsity"]): f for f in c["factors"]}
    assert cells[(32, 0.0)]["reference"] and cells[(32, 0.0)]["e"] == 1.0
    assert cells[(4, 0.0)]["e"] == pytest.approx(0.92, abs=0.03)
    assert cells[(4, 0.0)]["interval"][0] < cells[(4, 0.0)]["e"] < cells[(4, 0.0)]["interval"][1]
    assert c["alpha_interval"][0] < c["alpha"] < c["alpha_interval"][1]


def test_best_without_enough_budgets_says_why_in_words(tmp_path):
    root = compression_results(tmp_path, budgets=(1e15, 1e16), family=FAMILY[:4])
    out = _budgetune("best", "--budget", "1e17", "--max-mb", "3", "--results", str(root),
                     "--json")
    assert out.returncode == 0, out.stderr
    c = json.loads(out.stdout)["compression_law"]
    assert c["factors"] is None and c["prediction"] is None
    assert "rests on 2 measured budgets; it needs >= 3" in c["reason"]
    text = _budgetune("best", "--budget", "1e17", "--max-mb", "3", "--results", str(root))
    assert ("compression-aware law L = E + A/(N·e)^α + B/D^β: not given: the "
            "compression-aware law rests on 2 measured budgets") in text.stdout


def test_report_lists_the_factors_with_intervals_and_what_they_rest_on(wiring_table,
                                                                      tmp_path):
    out = _budgetune("report", "--results", str(wiring_table), "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "report.md").read_text()
    assert "Compression-aware law L(N, D, c) = E + A/(N·e_c)^α + B/D^β" in text
    assert "30 models at 3 budgets, 6 cells, 90 losses" in text
    assert "  - 4 bits, sparsity 0: e = 0.92" in text and ", 95% [" in text
    assert "  - 32 bits, sparsity 0: e = 1 (the reference: uncompressed; 15 models)" in text
    assert "one-shot cells (pruned beyond the trained sparsity" in text
