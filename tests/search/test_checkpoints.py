"""Tune checkpoints: an ended trial loses them, a running one loses those a newer one
supersedes, an interrupted one keeps them, and no crash leaves a stored experiment state that
restores a checkpoint that is gone (search/_callback.py, search/_stored_state.py)."""

import json
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from budgetune.results import read_table
from budgetune.search import SearchSpec, run_search
from tests.search.processes import kill_tree
from tests.search.test_cluster_and_jobs import BUDGET, _check_table_whole, _start_search
from tests.search.test_faults import CLI, _checkpointed_but_running, _reports, _wait_for

pytestmark = pytest.mark.slow


def test_ctrl_c_keeps_the_running_trials_checkpoints_and_resume_completes_them(tmp_path):
    """An ended trial loses its checkpoints; an interrupted one keeps them: after Ctrl-C
    (SIGINT to the whole foreground group) Tune returns normally, and the trials it was
    running must still resume from their checkpoints, not fail for want of them."""
    proc = _start_search(tmp_path, "c")
    folder = tmp_path / "c"
    reached = _wait_for(lambda: _checkpointed_but_running(folder) or proc.poll() is not None)
    assert reached and proc.poll() is None, "the search ended before the interrupt"
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=300)
    trials = read_table(folder, "trials")
    running = set(trials.loc[trials["status"] == "running", "trial_id"])
    assert running, "no trial was interrupted"
    tune = folder / "tune"
    kept = {p.parent.name for p in tune.rglob("checkpoint_*")}
    interrupted = [t for t in running if _checkpointed(read_table(folder, "reports"), t)]
    assert interrupted and all(any(name.startswith(f"run_trial_{t}_") for name in kept)
                               for t in interrupted), (interrupted, kept)
    out = subprocess.run([*CLI, "search", "--resume", "--results", str(tmp_path), "--name",
                          "c"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    _check_table_whole(folder, 6)  # none failed: every report exactly once
    assert not list(tune.rglob("checkpoint_*"))  # and now every trial has ended


def _checkpointed(reports, trial_id: str) -> bool:
    mine = reports[reports["trial_id"] == trial_id]
    return bool((mine["train_flops"] >= BUDGET / 9).any())


def _checkpoint_names(tune: Path) -> set[str]:
    """Every checkpoint folder's name under ``tune``; a folder deleted mid-walk is gone."""
    return {d for _, dirs, _ in os.walk(tune) for d in dirs if d.startswith("checkpoint_")}


def _restores_a_deleted_checkpoint(tune: Path) -> list[str]:
    """Trials the newest *stored* experiment state of each experiment would restore (any not
    TERMINATED) whose newest checkpoint, as that state names it, is gone. A state mid-copy is
    passed over. (Its checkpoint manager is a cloudpickled blob: searched for folder names as
    bytes, never unpickled.)"""
    missing = []
    for experiment in {f.parent for f in tune.glob("*/experiment_state-*.json")}:
        newest = max(experiment.glob("experiment_state-*.json"))
        try:
            trials = json.loads(newest.read_text())["trial_data"]
        except (ValueError, OSError, KeyError):
            continue
        for trial_json, meta_json in trials:
            trial, meta = json.loads(trial_json), json.loads(meta_json)
            blob = (meta.get("checkpoint_manager") or {}).get("value", "")
            names = re.findall(rb"checkpoint_\d{6}", bytes.fromhex(blob)) if blob else []
            if trial["status"] != "TERMINATED" and names and not (
                    experiment / trial["relative_logdir"] / max(names).decode()).is_dir():
                missing.append(f"{trial['trial_id']}/{max(names).decode()}")
    return missing


def test_a_running_trial_loses_the_checkpoints_its_newer_ones_supersede(tmp_path, monkeypatch):
    """Tune's num_to_keep is off (it forced a whole experiment-state save per trial
    checkpoint pair); the callback deletes what a newer checkpoint supersedes once a stored
    experiment state names the newer one, while the trial still runs, and never the trial's
    newest; at no moment does the stored state restore a checkpoint that is gone."""
    budgets = (1e11, 2e11, 3e11, 4e11, 5e11)  # five budget points, each checkpointed
    spec = SearchSpec(space="quick", budgets=budgets, num_samples=1, max_mb=None,
                      results=str(tmp_path), name="s", eval_tokens=1024, lr_schedule="wsd")
    seen, during, done, broken = set(), [], threading.Event(), []

    def watch():  # (checkpoints seen so far, checkpoints now) while the trial runs
        while not done.wait(0.05):
            now = _checkpoint_names(spec.folder() / "tune")
            broken.extend(_restores_a_deleted_checkpoint(spec.folder() / "tune"))
            reports = _reports(spec.folder())
            if reports is not None and reports["completed"].any():
                return  # its last report is written: from here it has ended
            seen.update(now)
            during.append((frozenset(seen), frozenset(now)))

    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run_search(spec, progress=lambda line: None)
    finally:
        done.set()
        watcher.join()
    assert not broken, broken  # a crash at any moment could have resumed
    assert len(seen) >= 4, seen  # the points' checkpoints (the last point ends the trial)
    # its newest (checkpoint_<index>) is never deleted while it runs
    assert all(max(ever) in now for ever, now in during if ever)
    # and it lost some while it ran: the superseded ones
    assert any(now and now < ever for ever, now in during)
    assert not list((spec.folder() / "tune").rglob("checkpoint_*"))  # all, once it ended


def _ended_with_a_checkpoint(folder: Path) -> bool:
    """Some trial the tables say ended (done, or stopped by ASHA) still has a checkpoint."""
    if not (folder / "trials").is_dir():
        return False
    trials = read_table(folder, "trials")
    ended = trials.loc[(trials["status"] == "done") | (trials["stop_reason"] == "asha"),
                       "trial_id"]
    kept = {os.path.basename(root) for root, dirs, _ in os.walk(folder / "tune")
            if any(d.startswith("checkpoint_") for d in dirs)}
    return any(name.startswith(f"run_trial_{t}_") for t in ended for name in kept)


def test_a_trial_ended_just_before_a_crash_loses_its_checkpoints_at_resume(tmp_path):
    """An ended trial's checkpoints wait, in the driver's memory, for a stored experiment
    state that records its end (search/_callback.py); a crash in between once left them on
    disk for good."""
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "5"}  # its deletion then 5 s or more after
    proc = _start_search(tmp_path, "e", env=env)
    folder = tmp_path / "e"
    try:
        reached = _wait_for(lambda: _ended_with_a_checkpoint(folder) or proc.poll() is not None,
                            every=0.2)
        assert reached and proc.poll() is None, "the search ended before the kill"
    finally:
        kill_tree(proc.pid)  # a crash: the driver and its Ray instance at once
        proc.wait()
    assert _ended_with_a_checkpoint(folder)  # the crash kept them
    out = subprocess.run([*CLI, "search", "--resume", "--results", str(tmp_path), "--name",
                          "e"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    _check_table_whole(folder, 6)
    assert not list((folder / "tune").rglob("checkpoint_*"))
