"""Plots are written and not empty; the analysis commands work as users call them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from budgetune.analysis import load_results, write_report
from tests.analysis.synthetic import law_results

CSV = Path(__file__).parents[1] / "data" / "chinchilla_fig4_points.csv"


def _budgetune(*args):
    return subprocess.run([sys.executable, "-m", "budgetune.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_report_writes_four_nonempty_plots_and_markdown(tmp_path):
    report = write_report(load_results(law_results(tmp_path / "r")), tmp_path / "out")
    text = report.read_text()
    assert "Parametric law" in text and "Best schedule per budget" in text
    assert "Size limit: none" in text
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.stem for p in pngs] == ["gpt2_frontier", "gpt2_isoflops",
                                      "gpt2_share_fraction", "gpt2_size_quality"]
    for png in pngs:
        image = imread(png)
        assert image.shape[0] > 200 and np.std(image[..., :3]) > 0.05  # drawn, not blank


def test_fit_command_reproduces_the_replication_as_json():
    out = _budgetune("fit", "--csv", str(CSV), "--n-col", "Model Size", "--flops-col",
                     "Training FLOP", "--loss-col", "loss", "--exclude-top", "5", "--json")
    assert out.returncode == 0, out.stderr
    fit = json.loads(out.stdout)
    assert {"E", "A", "B", "alpha", "beta", "a", "b"} <= set(fit)
    assert abs(fit["E"] - 1.82) < 0.03 and abs(fit["alpha"] - 0.35) < 0.02


@pytest.mark.parametrize("args, message", [
    (["fit", "--csv", "nope.csv", "--n-col", "a", "--d-col", "b", "--loss-col", "c"],
     "does not exist"),
    (["fit", "--csv", str(CSV), "--n-col", "N", "--d-col", "b", "--loss-col", "loss"],
     "has no column(s) ['N', 'b']"),
    (["fit", "--csv", str(CSV), "--n-col", "Model Size", "--flops-col", "Training FLOP",
      "--loss-col", "loss", "--exclude-top", "-1"], "`exclude_top` is -1"),
    (["best", "--budget", "1e15", "--results", "/no/such/dir"], "does not exist"),
    (["best", "--budget", "0", "--results", "."], "`budget` is 0.0"),
])
def test_analysis_commands_refuse_bad_input_in_one_line(args, message):
    out = _budgetune(*args)
    assert out.returncode == 2 and message in out.stderr
    assert out.stderr.count("\n") == 1


def test_best_plot_and_report_commands_on_a_results_directory(tmp_path):
    root = law_results(tmp_path / "r")
    out = _budgetune("best", "--budget", "3e16", "--results", str(root), "--json")
    assert out.returncode == 0, out.stderr
    best = json.loads(out.stdout)
    assert best["trained_budget_flops"] <= 3e16 and best["frontier"]["interval"] is not None
    text = _budgetune("best", "--budget", "1e19", "--results", str(root))
    assert "EXTRAPOLATED 100× beyond 1e17" in text.stdout
    plot = _budgetune("plot", "--results", str(root), "--format", "svg")
    assert plot.returncode == 0 and len(list((root / "plots").glob("*.svg"))) == 4
    report = _budgetune("report", "--results", str(root))
    assert report.returncode == 0 and (root / "report" / "report.md").exists()


def test_best_beyond_a_single_budget_says_extrapolated_and_gives_no_bare_number(tmp_path):
    """Item 8, as users see it: `best --budget 1e15` over a search at 3e11."""
    from budgetune.spaces import Schedule
    from tests.analysis.synthetic import trial_rows, write

    rows, trials = [], []
    for i, d in enumerate((32, 64, 96, 128, 160, 192)):
        r, t = trial_rows("e", f"t{i}", 3e11, 24 * d * d, 4.0 - 0.1 * i,
                          schedule=Schedule(d_model=d, n_layers=2, n_heads=d // 32))
        rows += r
        trials.append(t)
    write(tmp_path, "s", rows, trials)
    out = _budgetune("best", "--budget", "1e15", "--results", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    best = json.loads(out.stdout)
    assert best["extrapolated"] is True and round(best["factor"]) == 3333
    assert best["frontier"]["loss"] is None and best["frontier"]["reason"]
    assert best["recommendation"]["tokens"] is None and best["recommendation"]["reason"]
    text = _budgetune("best", "--budget", "1e15", "--results", str(tmp_path)).stdout
    assert "EXTRAPOLATED 3,333× beyond 3e11" in text
    assert "frontier L(C) at this budget: not given: the L(C) fit" in text
    assert "single seed" in text and "size limit none" in text


def test_plotting_leaves_matplotlibs_backend_alone():
    """A library never sets the backend (it broke notebooks): plots draw on a Figure."""
    code = """
import matplotlib
matplotlib.use("svg")
import tempfile, pathlib
from budgetune.analysis import load_results, write_plots
from tests.analysis.synthetic import law_results
root = law_results(pathlib.Path(tempfile.mkdtemp()), budgets=(1e15, 1e16, 1e17))
write_plots(load_results(root), root / "plots")
print(matplotlib.get_backend())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "svg"
