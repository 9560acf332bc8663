"""The search-wide FLOPs ledger: what the cap and the tables' spent_flops count."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from budgetune.results import read_table
from budgetune.search import FlopsLedger, SearchSpec, run_search


def _result(flops, run, restored=0.0):
    return {"train_flops": flops, "run_id": run, "restored_flops": restored}


def test_a_fresh_trial_spends_what_it_trained_and_a_result_seen_twice_counts_once():
    ledger = FlopsLedger(cap=None)
    for flops in (10.0, 30.0, 30.0):  # the stopper and the callback both see the last one
        spent = ledger.observe("e", "t", _result(flops, "r1"))
    assert spent == ledger.spent == 30.0


def test_a_retry_from_a_checkpoint_keeps_the_lost_work_counted():
    ledger = FlopsLedger(cap=100.0)
    ledger.observe("e", "t", _result(10.0, "r1"))  # checkpoint at 10
    ledger.observe("e", "t", _result(20.0, "r1"))  # trained to 20, then killed
    assert ledger.observe("e", "t", _result(20.0, "r2", restored=10.0)) == 30.0
    assert ledger.observe("e", "t", _result(40.0, "r2", restored=10.0)) == 50.0
    # killed again, retried from scratch (no checkpoint): all 50 stay spent
    assert ledger.observe("e", "t", _result(10.0, "r3", restored=0.0)) == 60.0
    ledger.observe("e", "u", _result(40.0, "x"))
    assert ledger.spent == 100.0 and ledger.reached()


def test_a_wsd_trial_is_charged_its_branches_and_a_retry_keeps_them():
    """A WSD trial's results carry ``trial_flops`` (main line and every cooldown branch); a
    point's ``train_flops`` is what its standalone run spends, far less. The ledger charges
    trial_flops, and a retry from a checkpoint keeps the branches trained since counted."""
    ledger = FlopsLedger(cap=None)
    point = {"train_flops": 100.0, "trial_flops": 100.0, "run_id": "r1", "restored_flops": 0}
    ledger.observe("wsd", "t", point)  # the point at budget 100: its branch cost 20 more
    ledger.observe("wsd", "t", {**point, "train_flops": 80.0, "trial_flops": 120.0})
    assert ledger.spent == 120.0
    # main line reported at 200 (checkpoint), a point at 300 branched, then killed at 360
    ledger.observe("wsd", "t", {**point, "train_flops": 200.0, "trial_flops": 220.0})
    ledger.observe("wsd", "t", {**point, "train_flops": 300.0, "trial_flops": 360.0})
    # retried from the checkpoint at trial_flops 220: the 140 trained since are trained again
    retry = {"train_flops": 300.0, "trial_flops": 360.0, "run_id": "r2",
             "restored_flops": 220.0}
    assert ledger.observe("wsd", "t", retry) == 140.0 + 360.0


def test_a_resume_starts_from_every_trial_in_the_table_this_experiment_too():
    ledger = FlopsLedger(cap=None)
    ledger.load(pd.DataFrame({"experiment": ["a", "b", "b"], "trial_id": ["1", "2", "3"],
                              "spent_flops": [5.0, 7.0, float("nan")],
                              "train_flops": [5.0, 6.0, 4.0]}))
    assert ledger.spent == 16.0  # a schema-1 row without spent_flops counts its train_flops
    # trial 2 of the current experiment resumes from its checkpoint at 3: 4 FLOPs were lost
    assert ledger.observe("b", "2", _result(3.0, "new", restored=3.0)) == 7.0
    assert ledger.observe("b", "2", _result(9.0, "new", restored=3.0)) == 13.0
    assert ledger.spent == 22.0


@pytest.mark.slow  # a real search, then a resume: ~40 s on 2 shared cores
def test_a_resumed_search_counts_the_flops_of_the_current_experiment(tmp_path):
    spec = SearchSpec(space="quick", budgets=(3e10,), num_samples=2, max_mb=None,
                      eval_tokens=1024, results=str(tmp_path), name="r")
    run_search(spec, progress=lambda line: None)
    trials = read_table(spec.folder(), "trials")
    assert (trials["spent_flops"] == trials["train_flops"]).all()  # nothing restarted
    spent = trials["spent_flops"].sum()
    lines = []
    capped = dataclasses.replace(spec, max_total_flops=spent * 0.99)
    run_search(capped, resume=True, progress=lines.append)
    # The finished trials of the experiment being resumed count: the cap is spent.
    assert any("skipped, the FLOPs cap" in line for line in lines), lines
