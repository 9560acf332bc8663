"""``search --repeats K``: after the search, the top K recipes of each budget trained again
with more seeds, so the answer for that budget rests on a mean of seeds, not on one.

The recipes are chosen by the analysis' one definition (``rank_recipes`` and ``pick``: budget
points of this search, seeds pooled, within the size limit): first the training recipe of
``pick``'s winner (the answer ``best`` gives, so that after the repeats it rests on 3 seeds),
then the next distinct *training* recipes by rank (the compression cell is evaluated on every
seed's grid anyway). Each is retrained with
``REPEAT_SEEDS`` more seeds (the next after its best seed's) in one more Tune experiment per
budget, ``repeats-<budget>``: FIFO (no early stopping: every repeat is a budget point), a grid
over the schedules, the same trainable and callback, so its rows are ordinary budget points.
They are charged to ``--max-total-flops``: what the cap does not allow is skipped, and said.
``--resume`` restores a repeats experiment that was started (its Tune state names exactly the
schedules chosen then) and chooses afresh only for budgets whose repeats had not started.
"""

from __future__ import annotations

import math

import pandas as pd

from budgetune.search._search import FlopsLedger
from budgetune.search._spec import REPEAT_SEEDS, SearchSpec


def repeats_experiment(budget: float) -> str:
    return f"repeats-{budget:.3g}"


def choose_repeats(spec: SearchSpec, search_id: str, budget: float) -> list[dict]:
    """Schedules (dicts) to train for ``budget``: ``repeat_schedules`` of this search's
    recipes."""
    from budgetune.analysis import load_results, rank_recipes
    from budgetune.analysis._load import Results

    results = load_results(spec.results, spec.name)
    mine = Results(*(t[t["search_id"] == search_id] for t in
                     (results.reports, results.trials, results.grid)))
    if mine.reports.empty:
        return []
    return repeat_schedules(rank_recipes(mine, spec.max_bytes), budget, spec.repeats,
                            spec.max_bytes)


def repeat_schedules(ranked, budget: float, repeats: int,
                     max_bytes: float | None = None) -> list[dict]:
    """From ``rank_recipes`` rows: the training recipe of ``pick``'s winner at ``budget``
    first, then the next distinct training recipes by rank, ``repeats`` in all, each with the
    seeds it still lacks of 1 + REPEAT_SEEDS."""
    from budgetune.analysis._candidates import RECIPE_KEY, TRAINING_FIELDS, pick, plain

    ranked = ranked[ranked["budget_flops"] == budget]
    if ranked.empty or repeats <= 0:
        return []
    winner = pick(ranked, budget, max_bytes).winner
    is_winner = (ranked[RECIPE_KEY] == [winner[f] for f in RECIPE_KEY]).all(axis=1)
    ordered = pd.concat([ranked[is_winner], ranked[~is_winner]])
    top = ordered.drop_duplicates(TRAINING_FIELDS).head(repeats)
    schedules = []
    for _, row in top.iterrows():
        seeds = [int(s) for s in row["seeds"]]
        missing = 1 + REPEAT_SEEDS - len(seeds)
        base = {f: plain(row[f]) for f in TRAINING_FIELDS}
        base["quant_bits"] = int(row["quant_bits"])
        schedules += [{**base, "seed": max(seeds) + k} for k in range(1, missing + 1)]
    return schedules


def run_repeats(spec: SearchSpec, search_id: str, ledger: FlopsLedger, resources: dict,
                resume: bool, progress) -> list[str]:
    """The repeats experiment of every budget; returns the experiment names run."""
    from ray import tune

    from budgetune.search._tuner import fit_experiment

    names = []
    for budget in spec.budgets:
        name = repeats_experiment(budget)
        path = (spec.folder() / "tune" / name).resolve()
        if resume and tune.Tuner.can_restore(path):
            fit_experiment(spec, search_id, budget, ledger, resources, resume, progress,
                           name=name, schedules=[])
            names.append(name)
            continue
        schedules = choose_repeats(spec, search_id, budget)
        if not schedules:
            progress(f"{name}: no budget point of {budget:.3g} FLOPs to repeat"
                     + (" within the size limit" if spec.max_bytes else ""))
            continue
        if spec.max_total_flops is not None:
            allowed = max(0, math.floor((spec.max_total_flops - ledger.spent) / budget))
            if allowed < len(schedules):
                progress(f"{name}: the FLOPs cap {spec.max_total_flops:.3g} allows "
                         f"{allowed} of {len(schedules)} repeats; skipping "
                         f"{len(schedules) - allowed}")
                schedules = schedules[:allowed]
            if not schedules:
                continue
        progress(f"{name}: retraining the top {spec.repeats} recipe(s) with more seeds: "
                 f"{len(schedules)} trial(s) of {budget:.3g} FLOPs (seeds "
                 f"{', '.join(str(s['seed']) for s in schedules)})")
        fit_experiment(spec, search_id, budget, ledger, resources, False, progress,
                       name=name, schedules=schedules)
        names.append(name)
    return names
