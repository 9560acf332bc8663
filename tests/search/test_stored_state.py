"""Tune checkpoints are deleted only once a *stored* experiment state records that nothing
restores them: Tune copies its saves to the results folder in the background and skips copies
while one is in flight, so "two saves later" was not enough on slow shared storage."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs as pafs

from budgetune.search._callback import ResultsCallback
from budgetune.search._stored_state import confirmed, staged_digest, stored_digest

STATE = "experiment_state-2026-12-06_00-00-00.json"


def _callback(tmp_path):
    staging, stored = tmp_path / "staging", tmp_path / "stored"
    staging.mkdir()
    stored.mkdir()
    callback = ResultsCallback(str(tmp_path / "results"), "s", "sid", "exp", 1e9)
    # Where Tune stages and stores the experiment's state: a trial's StorageContext holds these
    callback._storage = SimpleNamespace(experiment_driver_staging_path=str(staging),
                                        storage_filesystem=pafs.LocalFileSystem(),
                                        experiment_fs_path=str(stored))
    return callback, staging, stored


def _save(callback, staging, text: str) -> None:
    """One Tune save: the state is staged, then the callbacks' get_state runs."""
    (staging / STATE).write_text(text)
    callback.get_state()


def test_an_ended_trials_checkpoints_wait_for_the_stored_state_that_records_its_end(tmp_path):
    callback, staging, stored = _callback(tmp_path)
    trial = tmp_path / "tune" / "trial_a"
    (trial / "checkpoint_000000").mkdir(parents=True)
    (trial / "checkpoint_000001").mkdir()
    callback._ended.append((pafs.LocalFileSystem(), str(trial)))
    _save(callback, staging, '{"a": "TERMINATED", "save": 1}')  # save 1 records the end
    assert len(list(trial.iterdir())) == 2  # nothing stored yet
    _save(callback, staging, '{"a": "TERMINATED", "save": 2}')
    (stored / STATE).write_text('{"a": "RUNNING", "save": 0}')  # a lagging copy lands
    _save(callback, staging, '{"a": "TERMINATED", "save": 3}')
    _save(callback, staging, '{"a": "TERMINATED", "save": 4}')
    assert len(list(trial.iterdir())) == 2  # four saves on, the stored state restores a
    (stored / STATE).write_text('{"a": "TERMINATED", "save": 1}')  # save 1's copy lands
    _save(callback, staging, '{"a": "TERMINATED", "save": 5}')
    assert list(trial.iterdir()) == []
    assert callback._saved == [] or all(not batch for _, batch in callback._saved)


def test_a_superseded_checkpoint_goes_once_a_later_stored_state_names_the_newer_one(tmp_path):
    callback, staging, stored = _callback(tmp_path)
    old = tmp_path / "tune" / "trial_b" / "checkpoint_000000"
    old.mkdir(parents=True)
    callback._ended.append((pafs.LocalFileSystem(), str(old)))
    _save(callback, staging, '{"b": "checkpoint_000001", "save": 1}')
    _save(callback, staging, '{"b": "checkpoint_000001", "save": 2}')
    (stored / STATE).write_text('{"b": "checkpoint_000000", "save": 0}')
    _save(callback, staging, '{"b": "checkpoint_000002", "save": 3}')
    assert old.is_dir()
    (stored / STATE).write_text('{"b": "checkpoint_000001", "save": 2}')  # a later save's copy
    _save(callback, staging, '{"b": "checkpoint_000002", "save": 4}')
    assert not old.exists()


def test_digests_follow_the_newest_state_file_as_tune_picks_it(tmp_path):
    fs = pafs.LocalFileSystem()
    assert staged_digest(tmp_path) is None and stored_digest(fs, str(tmp_path / "no")) is None
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text("old session")
    (tmp_path / "experiment_state-2026-02-01_00-00-00.json").write_text("new session")
    assert staged_digest(tmp_path) == stored_digest(fs, str(tmp_path))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "experiment_state-x.json").write_text("new session")
    assert stored_digest(fs, str(tmp_path / "other")) == staged_digest(tmp_path)
    assert confirmed([("d1", [1]), ("d2", [2]), ("d1", [3]), ("d3", [4])], "d1") == 3
    assert confirmed([("d1", [1])], None) == 0 and confirmed([(None, [1])], None) == 0
