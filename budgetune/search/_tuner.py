"""One Tune experiment: searcher, ASHA, trainable, callbacks; new or restored. Under cosine,
one per budget; under WSD, one for all budgets (planned for the largest, ASHA's rungs on the
budget points, ``time_attr = budget_flops``)."""

from __future__ import annotations

import os

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter

from budgetune.search._callback import ResultsCallback
from budgetune.search._dedup import DedupSearcher
from budgetune.search._search import FlopsLedger
from budgetune.search._spec import SearchSpec
from budgetune.search._trainable import asha_rungs, run_trial
from budgetune.spaces import define_by_run

REPORTS_BETWEEN_RUNGS = 3  # besides the rungs: at 1/3, 2/3 and all of the budget


class CapStopper(tune.Stopper):
    """Stops the whole experiment once the search-wide training FLOPs cap is spent."""

    def __init__(self, ledger: FlopsLedger, experiment: str):
        self.ledger, self.experiment = ledger, experiment

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.ledger.observe(self.experiment, trial_id, result)
        return False

    def stop_all(self) -> bool:
        return self.ledger.reached()


class ProgressCallback(tune.Callback):
    """One line per report and per finished trial, so a long search shows it is alive."""

    def __init__(self, experiment: str, progress):
        self.experiment, self.progress = experiment, progress

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        flag = "" if result.get("feasible", True) else "  (over the size limit)"
        point = ("" if "main_line" not in result else " main line:" if result["main_line"]
                 else f" point {result['budget_flops']:.3g}:")
        self.progress(f"{self.experiment} {trial.trial_id}:{point} step {result['step']:>5} "
                      f"train_flops {result['train_flops']:.3g} val_loss_compressed "
                      f"{result['val_loss_compressed']:.4f} {result['compressed_bytes'] / 1e6:.2f}"
                      f" MB{flag}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        done = trial.last_result.get("completed", False)
        self.progress(f"{self.experiment} {trial.trial_id}: "
                      f"{'finished its budget' if done else 'stopped early'}")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.progress(f"{self.experiment} {trial.trial_id}: failed (see {trial.local_path})")


def _searcher(spec: SearchSpec, max_concurrent: int):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if spec.searcher == "tpe":
        sampler = optuna.samplers.TPESampler(
            seed=spec.seed, constant_liar=True,
            n_startup_trials=min(10, max(3, spec.num_samples // 3)))
    else:
        sampler = optuna.samplers.RandomSampler(seed=spec.seed)
    search = OptunaSearch(space=define_by_run(spec.load_space()), sampler=sampler,
                          metric="objective", mode="min")
    return ConcurrencyLimiter(DedupSearcher(search), max_concurrent=max_concurrent)


def _scheduler(spec: SearchSpec, budget: float):
    if spec.scheduler == "fifo":
        return FIFOScheduler()
    # WSD trials report only budget points, each exactly at its budget; cosine trials report
    # at the first step whose train_flops reaches a rung
    time_attr = "budget_flops" if spec.lr_schedule == "wsd" else "train_flops"
    return ASHAScheduler(time_attr=time_attr, max_t=budget,
                         grace_period=spec.grace_period(budget),
                         reduction_factor=spec.reduction_factor)


def fit_experiment(spec: SearchSpec, search_id: str, budget: float, ledger: FlopsLedger,
                   resources: dict, resume: bool, progress, name: str | None = None,
                   schedules: list[dict] | None = None) -> None:
    """One budget's experiment; with ``schedules``, exactly those, FIFO (the repeats)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # our tables suffice
    name = name or spec.experiment(budget)
    storage = (spec.folder() / "tune").resolve()
    fifo = spec.scheduler == "fifo" or schedules is not None
    rungs = [] if fifo else asha_rungs(budget, spec.grace_period(budget),
                                       spec.reduction_factor)
    wsd = spec.lr_schedule == "wsd"
    trial_config = {"eval_tokens": spec.eval_tokens, "n_reports": REPORTS_BETWEEN_RUNGS,
                    "corpus": spec.corpus}
    if wsd:  # repeats at a smaller budget place the switch on the search's main line too
        trial_config["main_line_flops"] = max(spec.budgets)
    trainable = tune.with_resources(
        tune.with_parameters(
            run_trial, budget=budget, rungs=rungs, max_bytes=spec.max_bytes,
            trial_config=trial_config, threads=spec.cpus_per_trial,
            points=tuple(spec.points()) if wsd and schedules is None else (),
            keep=(str(spec.models_folder().resolve()), spec.keep_models)),
        {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
    callbacks = [ResultsCallback(spec.results, spec.name, search_id, name, budget,
                                 ledger.reached, ledger),
                 ProgressCallback(name, progress)]
    stopper = CapStopper(ledger, name)
    path = storage / name
    if resume and tune.Tuner.can_restore(path):
        progress(f"{name}: resuming from {path}")
        tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True,
                                   resume_errored=True)
        # Tune restores callbacks and stoppers from its own pickle; these hold live state
        # (the FLOPs ledger), so the fresh ones replace them.
        run_config = tuner._local_tuner.get_run_config()
        run_config.callbacks, run_config.stop = callbacks, stopper
    else:
        cpus = int(resources.get("CPU", 1))
        max_concurrent = spec.max_concurrent or max(1, cpus // spec.cpus_per_trial)
        if schedules is not None:
            param_space = {"schedule": tune.grid_search(schedules)}
            search_alg, num_samples = None, 1
        elif spec.searcher == "grid":
            grid = spec.load_space().grid()
            param_space = {"schedule": tune.grid_search([s.to_dict() for s in grid])}
            search_alg, num_samples = None, 1
        else:
            param_space, search_alg = {}, _searcher(spec, max_concurrent)
            num_samples = spec.num_samples
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(
                metric="objective", mode="min", search_alg=search_alg,
                scheduler=FIFOScheduler() if fifo else _scheduler(spec, budget),
                num_samples=num_samples,
                max_concurrent_trials=max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(
                name=name, storage_path=str(storage), callbacks=callbacks, stop=stopper,
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                verbose=0))  # checkpoints: deleted by callbacks[0] (see its module)
    grid = tuner.fit()
    if grid.num_errors:  # said here; the command line's summary says it again if none reported
        progress(f"{name}: {grid.num_errors} of {len(grid)} trials failed; their tracebacks "
                 f"are in {path}/*/error.txt")
    callbacks[0].drop_ended()  # Tune's final state is saved: ended trials need no checkpoint
    if resume:
        callbacks[0].drop_restored(grid)
