"""The search: Tune experiments with ASHA on the FLOPs axis, Optuna proposing.

With several budgets (``--lr-schedule auto``, the default, or ``wsd``), one experiment serves
every budget: its trials are planned for the largest and branch a cooldown at each budget point
(the budgets and ASHA's rungs, grace = the smallest budget), reporting to Tune only there.
Under cosine (one budget, or ``--lr-schedule cosine``), for each budget, in order:

1. a ``Tuner`` over the function trainable, with ``ASHAScheduler(time_attr="train_flops",
   max_t=budget, grace_period, reduction_factor)`` (η = 3 and grace = budget/9 by default:
   rungs at 1/9 and 1/3 of the budget; trials report exactly there);
2. ``OptunaSearch`` with TPE (seeded, constant_liar) behind a ``ConcurrencyLimiter``, or
   Optuna's random sampler, or an exhaustive grid of a finite space;
3. ``ResultsCallback`` writing the results tables; a ``Stopper`` for the search-wide FLOPs cap;
   ``FailureConfig`` retrying a failed trial from its last checkpoint.

Tune's own state (searcher, scheduler, checkpoints) lives in ``RESULTS/NAME/tune``, which is
what ``--resume`` restores with ``Tuner.restore``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from budgetune.results import (
    SPEC_FILE,
    WHOLE_MODEL_SCHEMA,
    ResultsWriter,
    compact_parts,
    read_table,
    schema_1_search_id,
)
from budgetune.search._spec import SearchSpec


@dataclass
class FlopsLedger:
    """Training FLOPs spent across the whole search (every budget, repeats included), per
    trial, for the cap and the tables' ``spent_flops``. Never undercounted: a trial that
    restarts (retried after a failure, or resumed) reports the train_flops its checkpoint
    restored (``restored_flops``, 0 from scratch) with a new ``run_id``; the work it had done
    past that point was lost and is trained again, so it stays counted:
    spent = lost + train_flops, with lost = spent so far − restored_flops at each restart.
    On ``--resume`` every trial's ``spent_flops`` in the trials table is where it starts."""

    cap: float | None
    spent_of: dict[tuple[str, str], float] = field(default_factory=dict)  # (exp, trial) ->
    lost: dict[tuple[str, str], float] = field(default_factory=dict)
    run: dict[tuple[str, str], str] = field(default_factory=dict)  # the run seen last

    @property
    def spent(self) -> float:
        return sum(self.spent_of.values())

    def reached(self) -> bool:
        return self.cap is not None and self.spent >= self.cap

    def load(self, trials) -> None:
        """Start from the trials table (every experiment of the search, this one too)."""
        for row in trials[["experiment", "trial_id", "spent_flops", "train_flops"]].itertuples():
            spent = row.spent_flops if row.spent_flops == row.spent_flops else row.train_flops
            self.spent_of[(row.experiment, row.trial_id)] = float(spent)

    def observe(self, experiment: str, trial_id: str, result: dict) -> float:
        """Count one result; returns the trial's spent FLOPs. The same result twice (the
        stopper and the callback both see it) counts once."""
        key = (experiment, trial_id)
        # what the trial trained: its main line and, under WSD, every branch
        flops = float(result.get("trial_flops", result.get("train_flops", 0.0)))
        run = str(result.get("run_id", ""))
        if self.run.get(key) != run:  # a new run of the trial: fresh, retried or resumed
            restored = float(result.get("restored_flops", 0.0))
            self.lost[key] = max(0.0, self.spent_of.get(key, 0.0) - restored)
            self.run[key] = run
        self.spent_of[key] = self.lost.get(key, 0.0) + flops
        return self.spent_of[key]


def search_id_of(folder: Path) -> str:
    """The search's id, made when it first starts and kept in its settings file."""
    path = folder / SPEC_FILE
    settings = json.loads(path.read_text()) if path.is_file() else {}
    if not settings.get("search_id"):
        # A search begun by budgetune 0.1 has no id of its own: its rows read with the id that
        # schema-1 parts are given, and a resumed run must add to those, not start a second.
        old = schema_1_search_id(folder.name)
        settings["search_id"] = old if _has_rows(folder, old) else uuid.uuid4().hex[:12]
        path.write_text(json.dumps(settings, indent=1))
    return settings["search_id"]


def _has_rows(folder: Path, search_id: str) -> bool:
    for table in ("reports", "trials"):
        if (folder / table).is_dir() and len(rows := read_table(folder, table)) and (
                rows["search_id"] == search_id).any():
            return True
    return False


def write_settings(spec: SearchSpec) -> str:
    """Start a new search's settings file: ``search.json`` written fresh, so what a first
    attempt that died before Tune started left there never shadows this run's settings. Its
    search_id is kept only if the tables already hold rows of it; else a new one is made."""
    folder = spec.folder()
    path = folder / SPEC_FILE
    old = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    kept = old.get("search_id") if isinstance(old, dict) else None
    search_id = kept if kept and _has_rows(folder, kept) else uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**spec.to_dict(), "search_id": search_id}, indent=1))
    return search_id


def run_search(spec: SearchSpec, resume: bool = False, progress=print) -> list[str]:
    """Run (or resume) every budget's experiment; returns the experiment names."""
    from budgetune.search._ray import cluster_address, ray_session, secure_environment

    compact_parts()  # a bad BUDGETUNE_COMPACT_PARTS is refused now, not at the first flush

    # Before Ray is first imported: it reads RAY_AUTH_MODE (and how to pick addresses) then.
    secure_environment(local=cluster_address(spec.address) is None)
    from budgetune.search._tuner import fit_experiment
    from budgetune.trainables import prepare_corpus

    folder = spec.folder()
    tune_dir = folder / "tune"
    if not resume and tune_dir.exists() and any(tune_dir.iterdir()):
        raise ValueError(f"The search {str(folder)!r} exists already; pass --resume to continue "
                         "it, or give another --name.")
    if resume and not tune_dir.exists():
        raise ValueError(f"There is no search to resume at {str(folder)!r}; check --results "
                         "and --name.")
    if resume and (folder / "reports").is_dir():
        written = read_table(folder, "reports")["schema_version"]
        if len(written) and written.min() < WHOLE_MODEL_SCHEMA:
            raise ValueError(f"The search {str(folder)!r} was written before whole-model "
                             "compression (results schema <= 3), whose sizes and compressed "
                             "losses a resumed run could not be compared with; start a new "
                             "search with another --name.")
    # The corpus, built (once per machine) before any trial starts and before anything of the
    # search is written (a bad one is refused first); its resolved name goes to search.json
    # and to every trial, which then opens it from the cache without scanning.
    spec = replace(spec, corpus=prepare_corpus(spec.corpus, spec.vocab_sizes(),
                                               masked="bert" in spec.models()))
    writer = ResultsWriter(spec.results, spec.name)
    writer.lock()  # one driver per search folder, for the whole run
    search_id = search_id_of(folder) if resume else write_settings(spec)
    try:
        with ray_session(spec.address) as resources:
            progress(f"budgetune search {spec.name!r}: space {spec.space!r}, budgets "
                     f"{', '.join(f'{b:.3g}' for b in spec.budgets)} FLOPs, "
                     f"{int(resources.get('CPU', 0))} CPUs, results in {folder}")
            ledger = FlopsLedger(spec.max_total_flops)
            if (folder / "trials").is_dir():
                ledger.load(read_table(folder, "trials"))
            names = []
            # WSD: one experiment for every budget, planned for the largest
            budgets = [max(spec.budgets)] if spec.lr_schedule == "wsd" else spec.budgets
            for budget in budgets:
                name = spec.experiment(budget)
                if ledger.reached():
                    progress(f"{name}: skipped, the FLOPs cap {spec.max_total_flops:.3g} is "
                             "spent")
                    continue
                fit_experiment(spec, search_id, budget, ledger, resources, resume, progress)
                names.append(name)
            if spec.repeats:
                from budgetune.search._repeats import run_repeats

                names += run_repeats(spec, search_id, ledger, resources, resume, progress)
            return names
    finally:
        writer.unlock()
