"""The Tune callback on the driver that writes every report to the results tables.

Rows are buffered on the driver and written, one part file per table, through
``budgetune.results`` (atomic, keyed: a retried trial's re-reports are harmless) each time Tune
saves its experiment state (every 10 s or more) and at the end. ``--resume`` restores exactly
the trials in Tune's newest saved state, so writing at the save keeps the tables in step with it.
Rows written before the save could name a trial that a crash then makes Tune forget: it would
stay "running" in the tables for ever, beside the trial the restored searcher proposes in its
place. Rows written after it could be lost with a crash for a trial Tune restores as finished,
which never reports them again. What remains is the few milliseconds in which Tune copies its
saved state into the results folder.
Tune checkpoints are deleted here, not by Tune. Once a trial has ended (done or stopped; not
errored, which ``--resume`` retries) all of them go: resume never restores an ended trial. While
it runs, each one a newer checkpoint supersedes goes: a restore or a retry starts from the
newest. Neither at once: only once a saved experiment state that records the change is
*stored* in the results folder (Tune copies each save there in the background, and skips copies
while one is in flight: ``_stored_state``), or once ``Tuner.fit`` has returned
(``drop_ended``: its final state is saved and stored), so a crash never leaves a stored state
that names a checkpoint that is gone.
Only trials Tune completed count: one interrupted (Ctrl-C) or stopped with the whole experiment
by the FLOPs cap keeps its checkpoints, for ``--resume``. Tune's own ``num_to_keep`` is not
used: to keep its saved state in step with what it deletes, Tune then saves the whole
experiment state (every trial's, 38 kB each) whenever a trial has made ``num_to_keep`` new
checkpoints since the last save. A search of 1,000 tiny trials saved it 377 times in 6 minutes
instead of every 10 s, 196 ms a save at the end, and its driver's cost per trial tripled
(benchmarks/scale.py, BENCHMARKS.md).
A flush that leaves a table more than ``compact_parts()`` parts compacts it, and every table is
compacted when the experiment ends (``budgetune.results.compact``: atomic, under the table's
lock, so readers never see a half state and a crash loses nothing): reads stay fast however
long the search runs.
``stop_reason`` tells a trial that trained its whole budget (budget) from one ASHA stopped
(asha), one that failed (error) and one stopped by the search-wide FLOPs cap (cap).
"""

from __future__ import annotations

import pyarrow.fs as pafs
from ray.tune import Callback

from budgetune import __version__
from budgetune.results import (
    GRID,
    REPORTS,
    SCHEMA_VERSION,
    TRIALS,
    ResultsWriter,
    compact,
    compact_parts,
    read_table,
)
from budgetune.search._stored_state import confirmed, staged_digest, stored_digest
from budgetune.spaces import config_to_schedule


class ResultsCallback(Callback):
    def __init__(self, root: str, name: str, search_id: str, experiment: str, budget: float,
                 cap_reached=None, ledger=None):
        self.root, self.name, self.experiment, self.budget = root, name, experiment, budget
        self.search_id = search_id
        self.cap_reached = cap_reached  # callable: was the search-wide FLOPs cap hit?
        self.ledger = ledger  # FlopsLedger: each trial's spent FLOPs, restarts included
        self._rows = {"reports": [], "trials": [], "grid": []}
        self._last: dict[str, dict] = {}  # trial_id -> its last result
        self._finished: set[str] = set()  # trials whose final row is written
        # (filesystem, path) to delete: an ended trial's folder (its checkpoints) or one
        # superseded checkpoint; since the last save, and per save since, oldest first, with
        # the digest of the state that save staged
        self._ended: list[tuple] = []
        self._saved: list[tuple[str | None, list[tuple]]] = []
        self._storage = None  # a trial's StorageContext: where Tune stages and stores state
        self._newest: dict[str, tuple] = {}  # trial_id -> (filesystem, path) of its newest

    def __getstate__(self) -> dict:  # Tune saves callbacks with the experiment: no rows
        state = dict(self.__dict__)
        state["_rows"] = {"reports": [], "trials": [], "grid": []}
        state["cap_reached"], state["ledger"] = None, None
        state["_ended"], state["_saved"], state["_newest"] = [], [], {}
        state["_storage"] = None
        return state

    def _base(self, trial, corpus_id: str) -> dict:
        schedule = config_to_schedule(trial.config.get("schedule", trial.config))
        return {"search_id": self.search_id, "experiment": self.experiment,
                "trial_id": trial.trial_id, "budget_flops": self.budget, "corpus_id": corpus_id,
                "schema_version": SCHEMA_VERSION, "budgetune_version": __version__,
                **schedule.to_dict()}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._storage = trial.storage
        base = self._base(trial, result["corpus_id"])
        spent = (self.ledger.observe(self.experiment, trial.trial_id, result)
                 if self.ledger is not None else float(result["train_flops"]))
        result = {**result, "spent_flops": spent}
        # a WSD point's own budget; a main-line or cosine report is of the experiment's
        budget = float(result.get("budget_flops") or self.budget)
        self._report_row(base, result, budget)
        for cell in result.get("grid", ()):
            self._rows["grid"].append({**{c: base[c] for c in GRID.columns if c in base},
                                       **cell, "budget_flops": budget,
                                       "one_shot": cell["one_shot"],
                                       "val_loss_diff_se": float(
                                           cell.get("val_loss_diff_se", float("nan")))})
        self._last[trial.trial_id] = result
        self._rows["trials"].append(self._trial_row(trial, "running", None))

    def _report_row(self, base: dict, result: dict, budget: float) -> None:
        """One row of the reports table: a budget point (its own budget) or a WSD main-line
        report (no ``budget_flops``: the trial's); every report of a cosine trial is of the
        trial's budget, and its point is the completed report."""
        row = {**base, "budget_flops": budget,
               "point": bool(result.get("point", result["completed"])),
               "spent_flops": float(result["spent_flops"]),
               "val_loss_se": float(result.get("val_loss_se", float("nan"))),
               "eval_tokens": int(result.get("eval_tokens", 0)),
               "val_loss_diff_se": float(result.get("val_loss_diff_se", float("nan"))),
               "share_fraction_effective": float(result.get(
                   "share_fraction_effective", base["share_fraction"])),
               "main_line_flops": float(result.get("main_line_flops") or self.budget)}
        self._rows["reports"].append({**row, **{c: result[c] for c in REPORTS.columns
                                                if c not in row}})

    def _trial_row(self, trial, status: str, reason: str | None) -> dict:
        last = self._last.get(trial.trial_id, {})
        base = self._base(trial, last.get("corpus_id", ""))
        return {**base, "status": status, "stop_reason": reason,
                "last_step": int(last.get("step", 0)),
                "train_flops": float(last.get("train_flops", 0.0)),
                "spent_flops": float(last.get("spent_flops", last.get("train_flops", 0.0))),
                "val_loss_compressed": float(last.get("val_loss_compressed", float("nan"))),
                "node": str(last.get("node", ""))}

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        last = self._last.get(trial.trial_id, {})
        if last.get("completed"):
            status, reason = "done", "budget"
        elif self.cap_reached is not None and self.cap_reached():
            status, reason = "stopped", "cap"
        else:
            status, reason = "stopped", "asha"
        self._rows["trials"].append(self._trial_row(trial, status, reason))
        self._finished.add(trial.trial_id)
        self._ended.append((trial.storage.storage_filesystem, trial.path))

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        superseded = self._newest.get(trial.trial_id)
        self._newest[trial.trial_id] = (checkpoint.filesystem, checkpoint.path)
        if superseded is not None and superseded[1] != checkpoint.path:
            self._ended.append(superseded)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._rows["trials"].append(self._trial_row(trial, "error", "error"))
        self._finished.add(trial.trial_id)

    def get_state(self) -> None:
        """Tune calls this as it saves its experiment state (the state file already staged):
        the moment to write the rows, and to delete the checkpoints whose end or supersession a
        stored state records (module docstring)."""
        self.flush()
        self._saved.append((None, self._ended))
        self._ended = []
        if any(batch for _, batch in self._saved) and self._storage is not None:
            # this save's state confirms its own batch and every earlier one once stored
            staged = staged_digest(self._storage.experiment_driver_staging_path)
            self._saved[-1] = (staged, self._saved[-1][1])
            stored = stored_digest(self._storage.storage_filesystem,
                                   self._storage.experiment_fs_path)
            done = confirmed(self._saved, stored)
            for _, batch in self._saved[:done]:
                for fs, path in batch:
                    drop_checkpoints(fs, path)
            self._saved = self._saved[done:]
        else:  # nothing pending: no save's digest is needed
            self._saved = []
        return None  # nothing to restore: the tables are the state

    def drop_ended(self) -> None:
        """After ``Tuner.fit`` (its final state saved): the checkpoints of every trial Tune
        completed in this run of the experiment."""
        for fs, path in [p for _, batch in self._saved for p in batch] + self._ended:
            drop_checkpoints(fs, path)
        self._saved, self._ended = [], []

    def drop_restored(self, grid) -> None:
        """After a resumed ``Tuner.fit``: the checkpoints of trials an earlier run completed
        (the tables say done, or stopped by ASHA), whose deletion was pending in that run's
        driver when it died. ``grid`` is the ``ResultGrid`` the fit returned."""
        trials = read_table(ResultsWriter(self.root, self.name).folder, TRIALS.name)
        ended = trials[(trials["experiment"] == self.experiment)
                       & ((trials["status"] == "done") | (trials["stop_reason"] == "asha"))]
        ended = set(ended["trial_id"])
        for result in grid:
            if (result.metrics or {}).get("trial_id") in ended:
                drop_checkpoints(result.filesystem, result.path)

    def on_experiment_end(self, trials, **info) -> None:
        # A stopper's stop_all ends the experiment without completing its running trials:
        # when the FLOPs cap did that, those trials were stopped by the cap.
        if self.cap_reached is not None and self.cap_reached():
            for trial in trials:
                if trial.trial_id in self._last and trial.trial_id not in self._finished:
                    done = self._last[trial.trial_id].get("completed")
                    self._rows["trials"].append(self._trial_row(
                        trial, "done" if done else "stopped", "budget" if done else "cap"))
        self.flush()
        if compact_parts():  # the experiment has ended: each table to one part
            for table in (REPORTS.name, GRID.name, TRIALS.name):
                compact(ResultsWriter(self.root, self.name).folder, table)

    def flush(self) -> None:
        writer, most = ResultsWriter(self.root, self.name), compact_parts()
        for table in (REPORTS.name, GRID.name, TRIALS.name):
            rows, self._rows[table] = self._rows[table], []
            if rows:
                writer.append(table, rows)
                if most:
                    compact(writer.folder, table, over=most)


def drop_checkpoints(fs: pafs.FileSystem, path: str) -> None:
    """Delete one Tune checkpoint (``path`` is a ``checkpoint_*`` folder), or every checkpoint
    of a trial (``path`` is the trial's folder)."""
    if path.rstrip("/").rsplit("/", 1)[-1].startswith("checkpoint_"):
        if fs.get_file_info(path).type == pafs.FileType.Directory:
            fs.delete_dir(path)
        return
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_"):
            fs.delete_dir(info.path)
