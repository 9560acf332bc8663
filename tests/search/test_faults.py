"""Faults injected into real searches: a trial killed, a node removed, the driver killed again
and again, the results directory made unwritable, a second driver. All slow."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from budgetune.results import COMPACT_PARTS_ENV, ResultsWriter, part_files, read_table
from budgetune.search import SearchSpec, run_search
from budgetune.search._ray import secure_environment
from tests.search.processes import kill_tree, trial_pids
from tests.search.test_cluster_and_jobs import (
    BUDGET,
    _check_table_whole,
    _start_search,
)

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "budgetune.cli"]


def _wait_for(predicate, timeout=300, every=0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def _reports(folder: Path):
    return read_table(folder, "reports") if (folder / "reports").is_dir() else None


def _checkpointed_but_running(folder: Path) -> bool:
    """Some trial has passed its first rung (so it has a checkpoint) and is still training."""
    reports = _reports(folder)
    if reports is None or reports.empty:
        return False
    last = reports.sort_values("step").groupby("trial_id").tail(1)
    return bool(((last["train_flops"] >= BUDGET / 9) & ~last["completed"]).any())


def test_a_trial_killed_mid_training_is_retried_from_its_checkpoint(tmp_path):
    # never compacted: the part files keep every report ever written, duplicates included
    proc = _start_search(tmp_path, "t", env={**os.environ, COMPACT_PARTS_ENV: "0"})
    try:
        assert _wait_for(lambda: _checkpointed_but_running(tmp_path / "t")
                         and trial_pids(proc.pid))
        os.kill(trial_pids(proc.pid)[0], signal.SIGKILL)
        assert proc.wait(timeout=600) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reports, trials = _check_table_whole(tmp_path / "t", 6)
    assert list((tmp_path / "t" / "tune").rglob("error.txt")), "no trial failed: no fault"
    assert set(trials["status"]) <= {"done", "stopped"}  # the killed one was retried
    # Retried from its checkpoint, not from scratch: no step up to a trial's first rung was
    # trained (and reported) twice. The raw part files show every report ever written.
    raw = pd.concat([pq.read_table(p).to_pandas()
                     for p in part_files(tmp_path / "t", "reports")])
    first = raw[raw["step"] == raw.groupby("trial_id")["step"].transform("min")]
    assert not first.duplicated(["trial_id", "step"]).any()  # the first rung: checkpointed
    assert (reports["train_flops"] <= BUDGET).all()


def test_a_worker_node_removed_mid_search_has_its_trials_rescheduled(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    secure_environment()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=1)
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    spec = SearchSpec(space="quick", budgets=(BUDGET,), num_samples=5, max_mb=None,
                      results=str(tmp_path), name="n", eval_tokens=2048)
    removed = threading.Event()

    def remove_when_running():
        if _wait_for(lambda: _checkpointed_but_running(spec.folder())):
            cluster.remove_node(doomed)
            removed.set()

    remover = threading.Thread(target=remove_when_running, daemon=True)
    remover.start()
    try:
        run_search(spec, progress=lambda line: None)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed.is_set()
    _check_table_whole(spec.folder(), 5)


TINY_BUDGET = 2e8  # the tiny space: 15 steps for its dearest schedule, 39 for its cheapest


def _busy_nodes(folder: Path, nodes: set[str]) -> set[str]:
    """Once 6 trials have ended: those of ``nodes`` where the trials table shows a trial
    running and one ended (whose reports, and node, outlive the node)."""
    if not (folder / "trials").is_dir():
        return set()
    trials = read_table(folder, "trials")
    ended = trials["status"].isin(["done", "stopped"])
    if ended.sum() < 6:
        return set()
    return nodes & set(trials.loc[trials["status"] == "running", "node"]) & set(
        trials.loc[ended, "node"])


def _failures(tune: Path) -> dict[str, str]:
    """{trial_id: Tune's error.txt} of every trial that failed at least once."""
    return {path.parent.name.split("_")[2]: path.read_text() for path in tune.rglob("error.txt")}


def test_sixty_trials_on_six_nodes_survive_two_nodes_removed(tmp_path, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    monkeypatch.setenv(COMPACT_PARTS_ENV, "0")  # uncompacted: it reads every part written
    # Tune saves its state, and the driver flushes the tables, every second instead of every
    # 10 s: the whole search can take under 30 s, and the nodes to remove are read from the
    # tables while trials still run on them.
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")
    secure_environment()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = {node.node_id: node for node in (cluster.add_node(num_cpus=1) for _ in range(6))}
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    # max_failures 10: Ray may place a retried trial on the second node being removed, so one
    # trial can die with a node several times (a CI run saw one die 4 times, past the default 3)
    spec = SearchSpec(space="tiny", budgets=(TINY_BUDGET,), num_samples=60, max_mb=None,
                      results=str(tmp_path), name="six", eval_tokens=1024, max_failures=10)
    removed: list[str] = []

    def two_busy_nodes() -> bool:
        removed[:] = sorted(_busy_nodes(spec.folder(), set(workers)))[:2]
        return len(removed) == 2

    def remove_two_busy_nodes():
        if _wait_for(lambda: ended.is_set() or two_busy_nodes(), every=0.5) and not ended.is_set():
            for node_id in removed:
                cluster.remove_node(workers[node_id])
        else:
            removed.clear()

    ended = threading.Event()
    remover = threading.Thread(target=remove_two_busy_nodes, daemon=True)
    remover.start()
    resumed = set()
    try:
        run_search(spec, progress=lambda line: None)
        # A retried trial whose new actor dies with the second node while two of its calls are
        # in flight fails twice: Tune recovers it at the first failure and ends it at the
        # second, which finds it PENDING (tune_controller._process_trial_failure), whatever
        # max_failures. A CI run saw it once. The user's answer is --resume, which retries it.
        trials = read_table(spec.folder(), "trials")
        resumed = set(trials.loc[trials["status"] == "error", "trial_id"])
        if resumed:
            run_search(spec, resume=True, progress=lambda line: None)
    finally:
        ended.set()
        remover.join()
        ray.shutdown()
        cluster.shutdown()
    assert len(removed) == 2, "the search ended before two busy nodes were removed"
    assert len(resumed) <= 2, resumed  # the race is rare: not every retry may end so
    reports, trials = _check_table_whole(spec.folder(), 60, TINY_BUDGET)
    assert set(trials["node"]) == set(workers)  # trials ended on every one of the six
    # The removal hit running trials: Tune saw them die with their node, and retried each to
    # the end on a node still there (after a resume, for one caught in the race above).
    failed = _failures(spec.folder() / "tune")
    assert failed, "no trial failed: the removal hit no running trial"
    assert all(any(f"its node has died. Node Id: {n}" in text for n in removed)
               for text in failed.values()), failed
    assert not set(trials.loc[trials["trial_id"].isin(failed), "node"]) & set(removed)
    # Every report was written once; only a retried trial reports again what it trained
    # after its last checkpoint (the tables keep the last).
    raw = pd.concat([pq.read_table(p).to_pandas()
                     for p in part_files(spec.folder(), "reports")])
    assert set(raw.loc[raw.duplicated(["trial_id", "step"]), "trial_id"]) <= set(failed)


def _saved_trials(folder: Path) -> set[str] | None:
    """The trials in Tune's newest saved experiment state (what a resume restores)."""
    states = sorted((folder / "tune" / f"budget-{BUDGET:.3g}").glob("experiment_state-*.json"))
    try:
        return {json.loads(t[0])["trial_id"]
                for t in json.loads(states[-1].read_text())["trial_data"]}
    except (IndexError, ValueError):  # none yet, or being written
        return None


def _unsaved_trials(folder: Path, reports, proc) -> set[str]:
    """Trials with reports in the tables that a resume would not restore: Tune's saved state,
    read after the tables and again 2 s later (its copy into the folder follows the rows by
    milliseconds), does not name them."""
    unsaved = set(reports["trial_id"]) - (_saved_trials(folder) or set(reports["trial_id"]))
    if unsaved:
        time.sleep(2)
        saved = _saved_trials(folder)
        unsaved = set() if saved is None or proc.poll() is not None else unsaved - saved
    return unsaved


def test_the_driver_killed_three_times_and_resumed_keeps_every_report_once(tmp_path):
    rng = random.Random(0)
    # Tune saves its experiment state every 30 s instead of 10: a new trial's first reports
    # then come well before the save that names it, so the window that orphaned a trial (a
    # kill between the two) is wide, not a rare race.
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "30"}
    procs = [_start_search(tmp_path, "d", env=env)]
    unsaved, done = set(), threading.Event()

    def watch():  # the whole test long: rows must never name a trial a resume would forget
        while not done.wait(0.3):
            if (reports := _reports(tmp_path / "d")) is not None:
                unsaved.update(_unsaved_trials(tmp_path / "d", reports, procs[-1]))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for kill in range(3):
        wanted = 2 + 3 * kill + rng.randint(0, 2)  # a random point, later each time
        reached = _wait_for(lambda: (r := _reports(tmp_path / "d")) is not None
                            and len(r) >= wanted or procs[-1].poll() is not None)
        assert reached and procs[-1].poll() is None, "the search ended before the kill"
        kill_tree(procs[-1].pid)  # the driver and its Ray instance: all at once, as a crash
        procs[-1].wait()
        procs.append(subprocess.Popen(
            [*CLI, "search", "--resume", "--results", str(tmp_path), "--name", "d"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env=env))
    assert procs[-1].wait(timeout=900) == 0
    done.set()
    watcher.join()
    assert not unsaved  # a kill then would have left them "running" in the tables for ever
    reports, trials = _check_table_whole(tmp_path / "d", 6)
    assert trials["trial_id"].is_unique  # the searcher proposed 6 trials in all, not more
    # every trial has ended: none keeps a checkpoint, not even one that ended before a kill,
    # whose deletion was pending in the killed driver's memory
    assert not list((tmp_path / "d" / "tune").rglob("checkpoint_*"))


def _unwritable(folder: Path) -> bool:
    """Make ``folder`` unwritable, even for root (which ignores permission bits): whether a
    new file there is now refused."""
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        os.chmod(folder, 0o500)  # not root: permission bits suffice
    try:
        (folder / ".probe").touch()
    except OSError:
        return True
    (folder / ".probe").unlink()
    return False


def test_an_unwritable_results_directory_stops_the_search_with_one_line(tmp_path):
    # Tune saves (and the tables flush) every second, so the first part appears early and
    # the 8-trial search still has reports to write when the folder is locked.
    proc = subprocess.Popen(
        [*CLI, "search", "--space", "quick", "--budget", str(BUDGET), "--num-samples", "8",
         "--no-size-limit", "--results", str(tmp_path), "--name", "u"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"})
    folder = tmp_path / "u" / "reports"
    try:
        assert _wait_for(lambda: folder.is_dir() and any(folder.glob("part-*")), every=0.1)
        before = read_table(tmp_path / "u", "reports")
        if not _unwritable(folder):
            pytest.skip("cannot make a folder unwritable here (root without chattr)")
        assert proc.poll() is None, "the search ended before its folder was locked: no fault"
        _, stderr = proc.communicate(timeout=600)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        os.chmod(folder, 0o755)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("budgetune: error: Cannot write results to") and "writable" in last
    after = read_table(tmp_path / "u", "reports")  # what was written stays readable
    assert len(after) >= len(before)


def test_a_second_driver_on_the_same_search_folder_gets_a_clear_error(tmp_path):
    with ResultsWriter(tmp_path, "s"):
        out = subprocess.run([*CLI, "search", "--space", "quick", "--budget", str(BUDGET),
                              "--results", str(tmp_path), "--name", "s"],
                             capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "Another budgetune process is writing" in out.stderr
    assert out.stderr.count("\n") == 1


def _past_its_checkpoint(folder: Path) -> bool:
    """Some trial has reported past its last rung (at 2/3 of the budget, after the rung at 1/3:
    work a retry from the checkpoint trains again) and is still training."""
    reports = _reports(folder)
    if reports is None or reports.empty:
        return False
    last = reports.sort_values("step").groupby("trial_id").tail(1)
    return bool(((last["train_flops"] > 0.5 * BUDGET) & ~last["completed"]).any())


def test_a_retried_trial_keeps_the_flops_it_trained_twice_counted(tmp_path):
    # Tune saves (and the tables flush) every second: a trial's report at 2/3 of its budget
    # shows in the tables well before it completes, which takes seconds.
    proc = _start_search(tmp_path, "f", env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"})
    try:
        assert _wait_for(lambda: _past_its_checkpoint(tmp_path / "f") and trial_pids(proc.pid),
                         every=0.1)
        for pid in trial_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=600) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reports, trials = _check_table_whole(tmp_path / "f", 6)
    assert list((tmp_path / "f" / "tune").rglob("error.txt")), "no trial failed: no fault"
    assert (trials["spent_flops"] >= trials["train_flops"]).all()
    # The trial killed past its checkpoint at 1/3 trained 1/3..2/3 of its budget twice.
    assert (trials["spent_flops"] - trials["train_flops"] >= 0.3 * BUDGET).any()
    # reports count spent FLOPs too, never less than trained, and never going back
    assert (reports["spent_flops"] >= reports["train_flops"]).all()
    for _, mine in reports.sort_values("step").groupby("trial_id"):
        assert mine["spent_flops"].is_monotonic_increasing


# The driver, killed with its Ray instance (as kill_tree does a crash) by itself, in its first
# compaction of the reports table, just after it deleted the first part the compacted one covers.
_DRIVER_KILLED_MID_COMPACTION = """
import os, signal, sys
from budgetune.results import _compact, read_table
from tests.search.processes import descendants

def die(step, table):
    if step == "written" and table.name == "reports":  # the parts as they were: every row
        n = len(read_table(table.parent, "reports"))
        (table.parent / "rows-before-kill").write_text(str(n))
    if step == "deleted" and table.name == "reports":
        for pid in descendants(os.getpid()) - {os.getpid()}:
            os.kill(pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

_compact._after_step = die
from budgetune.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_driver_killed_mid_compaction_loses_nothing_and_resumes(tmp_path):
    # Tune saves (and the tables flush) every second and a table is compacted past 2 parts:
    # the first compaction of reports comes at the third flush, while trials are training.
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1", COMPACT_PARTS_ENV: "2"}
    args = ["search", "--space", "quick", "--budget", str(BUDGET), "--num-samples", "3",
            "--eval-tokens", "1024", "--no-size-limit", "--results", str(tmp_path), "--name",
            "m"]
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER_KILLED_MID_COMPACTION, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        _, stderr = proc.communicate(timeout=300)
    finally:
        kill_tree(proc.pid)
    assert proc.returncode == -signal.SIGKILL, stderr[-2000:]
    folder = tmp_path / "m"
    names = sorted(p.name for p in (folder / "reports").glob("part-*"))
    compacted = [n for n in names if n.count("-") == 2]
    assert len(compacted) == 1 and len(names) > 1  # killed between its rename and its deletes
    trials = read_table(folder, "trials")
    assert "running" in set(trials["status"])  # mid-search
    # every row there was as the compaction began: no fewer (lost), no more (counted twice)
    before = int((folder / "rows-before-kill").read_text())
    assert before > 0 and len(read_table(folder, "reports")) == before
    out = subprocess.run([*CLI, "search", "--resume", "--results", str(tmp_path), "--name",
                          "m"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    _check_table_whole(folder, 3)
    for table in ("reports", "trials", "grid"):  # the search ended: one part each, no leftover
        assert [p.name for p in (folder / table).iterdir() if p.name != ".seq.lock"] == [
            p.name for p in part_files(folder, table)] and len(part_files(folder, table)) == 1
