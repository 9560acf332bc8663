"""The search on real Ray (a local instance on 2 CPUs), real Optuna and real trials."""

import json
import subprocess
import sys

import pytest

from budgetune.results import read_table
from budgetune.search import SearchSpec, asha_rungs, objective, run_search

BUDGET = 3e11


@pytest.fixture(scope="module")
def quick_search(tmp_path_factory):
    """The issue's `--space quick --num-samples 8` search, at a smaller budget (~1.5 min)."""
    root = tmp_path_factory.mktemp("results")
    spec = SearchSpec(space="quick", budgets=(BUDGET,), num_samples=8, max_mb=None,
                      results=str(root), name="q", eval_tokens=2048)
    lines = []
    run_search(spec, progress=lines.append)
    return spec, lines


def _tables(spec):
    folder = spec.folder()
    return (read_table(folder, "reports"), read_table(folder, "trials"),
            read_table(folder, "grid"))


def test_objective_is_worst_over_the_size_limit():
    assert objective(3.0, 10, 100) == (3.0, True)
    value, feasible = objective(3.0, 1000, 100)
    assert not feasible and value > 100


def test_quick_search_completes_and_asha_stops_some_trials_at_a_rung(quick_search):
    spec, lines = quick_search
    reports, trials, _ = _tables(spec)
    assert len(trials) == 8 and set(trials["status"]) <= {"done", "stopped"}
    assert set(trials["stop_reason"]) == {"budget", "asha"}
    per_trial = reports.groupby("trial_id").size()
    done = trials.loc[trials["status"] == "done", "trial_id"]
    stopped = trials.loc[trials["stop_reason"] == "asha", "trial_id"]
    assert per_trial[stopped].max() < per_trial[done].min()
    for tid in stopped:  # stopped exactly at a rung, never before the first
        last = reports[reports["trial_id"] == tid]["train_flops"].max()
        assert last >= BUDGET / 9
    assert any("stopped early" in line for line in lines)


def test_every_report_is_in_the_table_exactly_once_and_within_budget(quick_search):
    spec, _ = quick_search
    reports, trials, _ = _tables(spec)
    assert not reports.duplicated(["experiment", "trial_id", "step"]).any()
    assert (reports["train_flops"] <= reports["budget_flops"]).all()
    for _, t in trials.iterrows():
        mine = reports[reports["trial_id"] == t["trial_id"]].sort_values("step")
        assert mine["step"].iloc[-1] == t["last_step"]
        assert mine["train_flops"].is_monotonic_increasing
    assert reports["completed"].sum() == (trials["status"] == "done").sum()
    assert set(reports["corpus_id"]) == {reports["corpus_id"].iloc[0]}


def test_completed_trials_have_their_compression_grid(quick_search):
    spec, _ = quick_search
    _, trials, grid = _tables(spec)
    done = set(trials.loc[trials["status"] == "done", "trial_id"])
    assert set(grid["trial_id"]) == done
    assert grid.groupby("trial_id").size().min() >= 6  # sparsities >= trained × 3 bit widths


def test_status_and_best_commands_read_the_search(quick_search):
    spec, _ = quick_search
    run = [sys.executable, "-m", "budgetune.cli"]
    status = subprocess.run([*run, "status", "--results", spec.results, "--json"],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    (search,) = json.loads(status.stdout)
    (exp,) = search["experiments"]
    assert exp["counts"]["done"] + exp["counts"]["stopped"] == 8
    best = subprocess.run([*run, "best", "--budget", str(BUDGET), "--results", spec.results,
                           "--json"], capture_output=True, text=True, timeout=120)
    assert best.returncode == 0, best.stderr
    assert json.loads(best.stdout)["trained_budget_flops"] == BUDGET


def test_a_second_search_into_the_same_folder_is_refused(quick_search):
    spec, _ = quick_search
    with pytest.raises(ValueError, match="exists already; pass --resume"):
        run_search(spec)


@pytest.mark.parametrize("changes, message", [
    ({"budgets": (1e9,)}, "smallest budget is too small"),
    ({"reduction_factor": 1.0}, "`reduction_factor` is 1.0, but must be >= 2"),
    ({"searcher": "bayes"}, "`searcher` is 'bayes'"),
    ({"max_mb": -1.0}, "`max_mb` is -1.0"),
    ({"space": "nope"}, "neither a preset"),
    ({"name": "../x"}, "`name` is '../x'"),
])
def test_search_spec_refuses_bad_settings_before_starting_ray(changes, message):
    with pytest.raises(ValueError, match=message):
        SearchSpec(**{"space": "quick", "budgets": (BUDGET,), **changes})


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path):
    out = subprocess.run([sys.executable, "-m", "budgetune.cli", "search", "--dry-run",
                          "--space", "quick", "--budget", "5e11", "--results",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "nothing started" in out.stdout and "expected" in out.stdout
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("budget, grace, eta", [
    (9.0, 1.0, 3.0), (2e11, 2e11 / 9, 3.0), (6e11, 6e11 / 9, 3.0), (1.8e12, 1.8e12 / 9, 3.0),
    (1e12, 1e12 / 27, 3.0), (1.8e12, 0.02 * 1.8e12, 3.0), (1e12, 1e11, 2.0),
    (3e13, 3e13 * 0.013, 2.5), (1e12, 1e12, 3.0), (5e11, 5e11 / 81, 3.0), (7e14, 7e13, 4.0),
    # repeated multiplication (the old asha_rungs) missed these by an ulp: not Ray's rungs
    (8.9e13, 8.9e13 / 27, 3.0), (3.3e14, 3.3e14 / 9, 2.5), (7.3e12, 7.3e12 / 81, 2.5)])
def test_asha_rungs_are_the_milestones_of_rays_own_scheduler(budget, grace, eta):
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(time_attr="train_flops", max_t=budget, grace_period=grace,
                              reduction_factor=eta)
    milestones = sorted(m for m, _ in scheduler._brackets[0]._rungs)
    rungs = asha_rungs(budget, grace, eta)
    assert rungs == [m for m in milestones if m < budget * (1 - 1e-12)]  # exactly, as floats
    # The milestones left out are the budget itself (or a hair above it): a trial is complete
    # there, and ASHA stops it anyway.
    assert all(m >= budget * (1 - 1e-12) for m in milestones[len(rungs):])
