"""Slow search tests: a multi-node cluster, a driver killed and resumed, a Ray Job."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from budgetune.results import read_table
from budgetune.search import SearchSpec, asha_rungs, run_search
from budgetune.search._ray import secure_environment
from budgetune.search._tuner import REPORTS_BETWEEN_RUNGS
from budgetune.spaces import config_to_schedule
from budgetune.trainables import flops_per_step, plan_steps, report_steps
from tests.search.processes import free_port, kill_tree, ray_pids

pytestmark = pytest.mark.slow
BUDGET = 3e11
CLI = [sys.executable, "-m", "budgetune.cli"]
RAY = str(Path(sys.executable).parent / "ray")  # CI runs pytest without activating the venv


def _planned_steps(row, budget: float = BUDGET) -> list[int]:
    """The report steps a trial of this trials-table row plans (to check nothing is lost)."""
    schedule = config_to_schedule(row.to_dict())
    rungs = asha_rungs(budget, budget / 9, 3.0)
    return report_steps(plan_steps(schedule, budget), flops_per_step(schedule), budget,
                        tuple(r / budget for r in rungs), REPORTS_BETWEEN_RUNGS)


def _check_table_whole(folder, n_trials, budget: float = BUDGET):
    reports, trials = read_table(folder, "reports"), read_table(folder, "trials")
    assert len(trials) == n_trials and set(trials["status"]) <= {"done", "stopped"}
    assert not reports.duplicated(["experiment", "trial_id", "step"]).any()
    for _, row in trials.iterrows():
        steps = sorted(reports.loc[reports["trial_id"] == row["trial_id"], "step"])
        planned = _planned_steps(row, budget)
        if row["status"] == "done":
            assert steps == planned  # every report, exactly once
        else:
            assert steps == planned[: len(steps)]  # a prefix: stopped at a rung
    return reports, trials


def test_search_on_a_three_node_cluster_uses_both_workers(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    secure_environment()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        spec = SearchSpec(space="quick", budgets=(BUDGET,), num_samples=6, max_mb=None,
                          results=str(tmp_path), name="c", eval_tokens=2048)
        run_search(spec, progress=lambda line: None)
    finally:
        ray.shutdown()
        cluster.shutdown()
    _, trials = _check_table_whole(spec.folder(), 6)
    assert trials["node"].nunique() == 2


def _start_search(root, name, extra=(), env=None):
    return subprocess.Popen(
        [*CLI, "search", "--space", "quick", "--budget", str(BUDGET), "--num-samples", "6",
         "--no-size-limit", "--results", str(root), "--name", name, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)


def _kill_when(proc, root, name, min_reports, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        folder = root / name
        if (folder / "reports").is_dir() and len(read_table(folder, "reports")) >= min_reports:
            kill_tree(proc.pid)  # the driver and everything it started
            proc.wait()
            return True
        time.sleep(0.5)
    return False


def test_resume_after_the_driver_is_killed_loses_and_duplicates_nothing(tmp_path):
    proc = _start_search(tmp_path, "k")
    assert _kill_when(proc, tmp_path, "k", min_reports=4), "the search ended before the kill"
    out = subprocess.run([*CLI, "search", "--resume", "--results", str(tmp_path), "--name",
                          "k"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resuming" in out.stdout
    _check_table_whole(tmp_path / "k", 6)


def test_a_quick_search_submitted_as_a_ray_job_completes(tmp_path):
    secure_environment()
    env = dict(os.environ)
    dashboard = free_port()
    before = ray_pids()
    start = subprocess.run(
        [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port",
         str(free_port()), "--dashboard-host", "127.0.0.1", "--dashboard-port",
         str(dashboard), "--include-dashboard", "true", "--num-cpus", "2",
         "--dashboard-agent-listen-port", str(free_port())],  # not another Ray's 52365
        capture_output=True, text=True, env=env, timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    head = ray_pids() - before  # this head's GCS, raylet, dashboard and monitors
    try:
        out = subprocess.run(
            [*CLI, "submit", "--address", f"http://127.0.0.1:{dashboard}", "--", "search",
             "--space", "quick", "--budget", str(BUDGET), "--num-samples", "3",
             "--results", str(tmp_path), "--name", "j"],
            capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        assert "SUCCEEDED" in out.stdout
    finally:
        # This head's servers and all below them (the job's driver, its trials); `ray stop`
        # would stop every Ray instance on the machine.
        for pid in head:
            kill_tree(pid)
        Path("/tmp/ray/ray_current_cluster").unlink(missing_ok=True)  # as `ray stop` does
    trials = read_table(tmp_path / "j", "trials")
    assert len(trials) == 3 and set(trials["status"]) <= {"done", "stopped"}


def test_the_flops_cap_stops_the_search_and_marks_the_trials_it_stopped(tmp_path):
    cap = 1.2 * BUDGET
    spec = SearchSpec(space="quick", budgets=(BUDGET, 3 * BUDGET), num_samples=6,
                      lr_schedule="cosine", max_mb=None, max_total_flops=cap,
                      results=str(tmp_path), name="cap", eval_tokens=2048, max_concurrent=2)
    lines = []
    run_search(spec, progress=lines.append)
    trials = read_table(spec.folder(), "trials")
    assert "cap" in set(trials["stop_reason"])
    assert set(trials["experiment"]) == {spec.experiment(BUDGET)}  # the second never started
    assert any("skipped, the FLOPs cap" in line for line in lines)
    in_flight = 2 * BUDGET / 3  # at most one report interval per running trial past the cap
    assert trials["train_flops"].sum() <= cap + in_flight
