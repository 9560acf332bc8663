"""One WSD search for every budget, on real Ray: one experiment, a budget point at every budget
for each trial that reached it, ASHA deciding on points, spent FLOPs counting the branches, and
``best`` answering each budget from points."""

import pytest

from budgetune.analysis import best_schedule, load_results, search_status
from budgetune.analysis._status import format_status
from budgetune.flops import flops_per_step
from budgetune.results import read_table
from budgetune.search import SearchSpec, run_search
from budgetune.search._tuner import _scheduler
from budgetune.spaces import config_to_schedule

BUDGETS = (1e11, 2e11, 3e11)  # ASHA's one rung (grace = 1e11, η = 3) is the first budget


@pytest.fixture(scope="module")
def wsd_search(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    spec = SearchSpec(space="quick", budgets=BUDGETS, num_samples=5, max_mb=None,
                      results=str(root), name="w", eval_tokens=1024, lr_schedule="wsd")
    lines = []
    names = run_search(spec, progress=lines.append)
    return spec, names, lines


def test_one_experiment_gives_a_point_at_every_budget_a_trial_reached(wsd_search):
    spec, names, _ = wsd_search
    assert names == ["wsd-3e+11"]
    folder = spec.folder()
    reports, trials = read_table(folder, "reports"), read_table(folder, "trials")
    grid = read_table(folder, "grid")
    assert set(trials["experiment"]) == {"wsd-3e+11"} and len(trials) == 5
    points = reports[reports["point"]]
    for _, t in trials.iterrows():
        mine = points[points["trial_id"] == t["trial_id"]]
        reached = sorted(mine["budget_flops"])
        assert reached == list(BUDGETS[:len(reached)]) and reached  # in order, none skipped
        if t["status"] == "done":
            assert reached == list(BUDGETS)
        else:  # stopped by ASHA at its rung: a valid recipe for that budget
            assert t["stop_reason"] == "asha" and reached == [BUDGETS[0]]
        # every point has its compression grid, and is never over its budget
        assert set(grid.loc[grid["trial_id"] == t["trial_id"], "budget_flops"]) == set(reached)
        fps = flops_per_step(config_to_schedule(t.to_dict()))
        assert ((mine["train_flops"] <= mine["budget_flops"])
                & (mine["train_flops"] > mine["budget_flops"] - fps)).all()
    assert set(trials["status"]) == {"done", "stopped"}


def test_spent_flops_count_every_branch_and_the_status_adds_them_up(wsd_search):
    spec, _, _ = wsd_search
    folder = spec.folder()
    reports, trials = read_table(folder, "reports"), read_table(folder, "trials")
    done = trials[trials["status"] == "done"]
    for _, t in done.iterrows():
        fps = flops_per_step(config_to_schedule(t.to_dict()))
        # the main line to the end, plus the cooldowns of the two points below it (20% each)
        branches = sum(round(0.2 * int(b // fps)) for b in BUDGETS[:2]) * fps
        assert t["spent_flops"] == pytest.approx(t["train_flops"] + branches, rel=0.02)
        assert t["spent_flops"] > t["train_flops"]
    assert (reports["spent_flops"] >= reports["train_flops"]).all()
    status = search_status(spec.results, spec.name)[0]
    assert [e.experiment for e in status.experiments] == ["wsd-3e+11"]
    (experiment,) = status.experiments  # every trial has its first point; fewer go further
    assert [b for b, _ in experiment.points] == list(BUDGETS)
    assert experiment.points[0][1] == 5 >= experiment.points[1][1] >= experiment.points[2][1]
    assert f"budget points: 1e+11 ×5, 2e+11 ×{experiment.points[1][1]}" in format_status(
        [status])
    assert status.train_flops == pytest.approx(trials["spent_flops"].sum())
    assert [b.budget_flops for b in status.best] == list(BUDGETS)


def test_best_answers_every_budget_from_its_points(wsd_search):
    spec, _, _ = wsd_search
    results = load_results(spec.results, spec.name)
    for budget in BUDGETS:
        best = best_schedule(results, budget)
        assert best.trained_budget_flops <= budget and best.experiment == "wsd-3e+11"
        assert best.schedule["lr_schedule"] == "wsd" and best.main_line_flops == 3e11
    assert best_schedule(results, 2e11).trained_budget_flops == 2e11  # an inner budget point


def test_asha_decides_on_the_annealed_point_not_the_main_line():
    """Two trials at the rung: A's main line (un-annealed, past the rung's budget) is worse
    than B's, but A's annealed point is better. ASHA, as the search builds it, promotes A and
    stops B: main-line results reach Tune (for the FLOPs ledger) without ``budget_flops``,
    ASHA's time attribute, so it decides on points alone."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    spec = SearchSpec(space="quick", budgets=BUDGETS, lr_schedule="wsd", max_mb=None)
    scheduler = _scheduler(spec, max(BUDGETS))
    scheduler.set_search_properties("objective", "min")

    def main_line(loss):  # as run_trial sends it: no budget_flops
        return {"point": False, "main_line": True, "objective": loss,
                "train_flops": 1.2 * BUDGETS[0]}

    def point(loss):
        return {"budget_flops": BUDGETS[0], "point": True, "main_line": False,
                "objective": loss, "train_flops": BUDGETS[0]}

    a, b = (Trial("run_trial", trial_id=i, stub=True) for i in "ab")
    for trial in (a, b):
        scheduler.on_trial_add(None, trial)
    for trial, loss in ((a, 6.0), (b, 5.5)):  # past the rung, un-annealed: A looks worse
        assert scheduler.on_trial_result(None, trial, main_line(loss)) \
            == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, a, point(5.0)) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, b, point(5.3)) == TrialScheduler.STOP


@pytest.mark.slow  # a real WSD search stopped by the cap: ~30 s
def test_the_cap_charges_every_branch_of_a_wsd_trial(tmp_path):
    """One trial at a time: the first, done, trained 3e11 on its main line and 0.2e11 in the
    cooldown of its 1e11 point. A cap of 3.1e11 is spent only if the branch is charged; were
    the main line alone counted, a second trial would start and train past its 1e11 point."""
    budgets = (1e11, 3e11)
    spec = SearchSpec(space="quick", budgets=budgets, num_samples=3, max_mb=None,
                      scheduler="fifo", max_concurrent=1, max_total_flops=3.1e11,
                      results=str(tmp_path), name="cap", eval_tokens=1024, lr_schedule="wsd")
    lines = []
    run_search(spec, progress=lines.append)
    trials = read_table(spec.folder(), "trials")
    reports = read_table(spec.folder(), "reports")
    first = trials.sort_values("trial_id").iloc[0]
    assert first["status"] == "done" and first["spent_flops"] > first["train_flops"]
    trained = reports.groupby("trial_id")["spent_flops"].max()
    assert (trained > 0).sum() == 1, trained  # no second trial reported anything
    assert trials["spent_flops"].sum() == pytest.approx(first["spent_flops"])
    assert first["spent_flops"] >= spec.max_total_flops
