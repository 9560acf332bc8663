"""The Ray Tune function trainable around one ``Trial``.

It reports every trial report with ``tune.report`` (the metrics ASHA and the searcher read:
``train_flops`` as time, ``objective`` as the value), checkpoints at every ASHA rung with
``tune.Checkpoint`` (the trial's whole state, saved with ``torch.save`` and read back with
``weights_only=True``: nothing is unpickled), and continues from ``tune.get_checkpoint()``
after a failure or a resume without counting any FLOPs twice. At its last report it also
evaluates the compression grid and sends it along.

A WSD trial (``lr_schedule = wsd``) is planned for the largest budget of its search and
given the others and ASHA's rungs as budget points (``points``). ASHA's ``time_attr`` is then
``budget_flops``, which a point meets exactly and which only points carry: the main line's own
reports reach Tune without it (``main_line``), so the FLOPs ledger and the cap see the main
line's progress while ASHA, which passes over a result without its time attribute, decides on
annealed points alone. Each point comes with its grid and a checkpoint of the main line.

With ``keep`` (``--keep-models K``, the search's models folder), a trial writes the model of
each of its budget points before reporting it, and prunes that budget's kept models to the K
best training recipes (``budgetune.results._kept``).
"""

from __future__ import annotations

import math
import tempfile
import uuid
from pathlib import Path

INFEASIBLE = 1e3  # objective of a trial over the size limit: worse than any real loss (nats)
CHECKPOINT_FILE = "trial.pt"


def asha_rungs(budget: float, grace_period: float, reduction_factor: float) -> list[float]:
    """The milestones of Ray's ``ASHAScheduler(max_t=budget, grace_period, reduction_factor)``
    (its first bracket) that a trial reaches before its budget is spent, computed as Ray
    computes them (``grace_period · η^k``, k < int(log(max_t/grace)/log η) + 1) so the
    checkpoints land exactly on them. tests/search checks them against the scheduler itself."""
    count = int(math.log(budget / grace_period) / math.log(reduction_factor) + 1)
    milestones = [grace_period * reduction_factor**k for k in range(count)]
    return [m for m in milestones if m < budget * (1 - 1e-12)]


def objective(val_loss_compressed: float, compressed_bytes: int, max_bytes: float | None
              ) -> tuple[float, bool]:
    feasible = max_bytes is None or compressed_bytes <= max_bytes
    value = val_loss_compressed if feasible and math.isfinite(val_loss_compressed) else INFEASIBLE
    return value, feasible


def trial_metrics(trial, report, max_bytes: float | None) -> dict:
    """What a report tells Tune: its columns, the objective and whether it is feasible. The
    size limit judges the model the trial *ends* with (unshared, compressed to its target),
    so a shared model under the limit at its first rung is not feasible if it outgrows it."""
    metrics = report.to_dict()
    metrics["objective"], metrics["feasible"] = objective(
        report.val_loss_compressed, trial.final_bytes, max_bytes)
    metrics["corpus_id"] = trial.data.corpus_id
    return metrics


def keep_point(trial, report, max_bytes: float | None, folder: str, keep: int) -> None:
    """Write the model of a budget point to the search's models folder and prune that budget's
    kept models to the ``keep`` best training recipes, ranked as ``best`` ranks them: by the
    point's lowest compressed loss over its own target and its grid within the size limit."""
    from ray import tune

    from budgetune.results import point_metadata, point_path, prune_kept, rank_loss
    from budgetune.trainables import point_model, save_point

    context = tune.get_context()
    experiment, trial_id = context.get_experiment_name(), context.get_trial_id()
    model = trial.model if report.completed else trial.branch_model
    grid = report.grid or [cell.to_dict() for cell in trial.grid()]  # the main line's: once
    cells = [(report.val_loss_compressed, report.compressed_bytes)] + [
        (c["val_loss_compressed"], c["compressed_bytes"]) for c in grid]
    path = point_path(Path(folder), report.budget_flops, experiment, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_point(point_model(model, trial.family), path, point_metadata(
        schedule=trial.schedule.to_dict(), budget_flops=report.budget_flops,
        experiment=experiment, trial_id=trial_id, rank_loss=rank_loss(cells, max_bytes),
        val_loss=report.val_loss, main_line_flops=trial.main_line_flops,
        corpus_id=trial.data.corpus_id, eval_tokens=trial.config.eval_tokens))
    trial.branch_model = None  # kept on disk: no need to hold it in memory
    prune_kept(Path(folder), report.budget_flops, keep)


def run_trial(config: dict, *, budget: float, rungs: list[float], max_bytes: float | None,
              trial_config: dict, threads: int, points: tuple[float, ...] = (),
              keep: tuple[str, int] | None = None) -> None:
    """Tune calls this in a worker with one config; it returns when the budget is spent."""
    import ray
    import torch
    from ray import tune

    from budgetune.spaces import config_to_schedule
    from budgetune.trainables import Trial, TrialConfig, report_steps

    torch.set_num_threads(max(1, threads))
    schedule = config_to_schedule(config.get("schedule", config))
    wsd = schedule.lr_schedule == "wsd"
    fractions = () if wsd else tuple(r / budget for r in rungs)
    points = tuple(p for p in points if p < budget) if wsd else ()
    trial = Trial(schedule, budget, TrialConfig(**trial_config, report_fractions=fractions,
                                                points=points))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True)
        trial.load_state_dict(state)
    # This run of the trial, and the train_flops it starts from: the driver's FlopsLedger
    # counts the work a restart repeats (FLOPs trained past the checkpoint, then lost).
    run_id, restored_flops = uuid.uuid4().hex, float(trial.trial_flops)
    node = ray.get_runtime_context().get_node_id()
    # The steps at which the rungs are reported, placed by the same rule as every report.
    rung_steps = set(report_steps(trial.total_steps, trial.flops_per_step, budget, fractions, 0))
    for report in trial.run():
        metrics = trial_metrics(trial, report, max_bytes)
        metrics["node"] = node  # Ray's node id: hostnames repeat on one machine
        metrics["run_id"], metrics["restored_flops"] = run_id, restored_flops
        if keep is not None and keep[1] > 0 and report.point:
            keep_point(trial, report, max_bytes, *keep)
        if wsd:
            metrics["main_line"] = not report.point
            if not report.point:
                del metrics["budget_flops"]  # ASHA passes it by: no un-annealed loss decides
                tune.report(metrics)
                continue
        if report.completed:
            metrics["grid"] = [cell.to_dict() for cell in trial.grid()]
            metrics["eval_flops"] = trial.eval_flops  # the grid is evaluation too
            metrics["wall_s"] = trial.wall_s  # and takes time
            tune.report(metrics)
        elif (wsd and report.point) or (not wsd and report.step in rung_steps):
            with tempfile.TemporaryDirectory() as folder:
                torch.save(trial.state_dict(), Path(folder) / CHECKPOINT_FILE)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)
