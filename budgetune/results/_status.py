"""What ``budgetune status`` shows: a running or finished search, read from its tables alone."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from budgetune.results._store import read_table, search_folders

SPEC_FILE = "search.json"  # the search's settings, written when it starts


@dataclass(frozen=True)
class ExperimentStatus:
    experiment: str
    budget_flops: float
    counts: dict[str, int]  # trials per status: running, done, stopped, error
    stop_reasons: dict[str, int]
    train_flops: float  # spent so far
    best_loss: float | None  # lowest feasible val_loss_compressed of a completed trial
    best_trial: str | None
    best_any: float | None  # lowest feasible val_loss_compressed of any report


@dataclass(frozen=True)
class SearchStatus:
    name: str
    folder: Path
    spec: dict | None
    experiments: list[ExperimentStatus]

    @property
    def train_flops(self) -> float:
        return sum(e.train_flops for e in self.experiments)


def _experiment_status(name: str, trials, reports) -> ExperimentStatus:
    mine = trials[trials["experiment"] == name]
    reps = reports[(reports["experiment"] == name) & reports["feasible"]]
    done = mine[mine["status"] == "done"]["trial_id"]
    final = reps[reps["trial_id"].isin(done) & reps["completed"]]
    best = final.loc[final["val_loss_compressed"].idxmin()] if len(final) else None
    return ExperimentStatus(
        name, float(mine["budget_flops"].iloc[0]) if len(mine) else math.nan,
        mine["status"].value_counts().to_dict(),
        mine["stop_reason"].dropna().value_counts().to_dict(),
        float(mine["train_flops"].sum()),
        None if best is None else float(best["val_loss_compressed"]),
        None if best is None else str(best["trial_id"]),
        float(reps["val_loss_compressed"].min()) if len(reps) else None)


def search_status(root: str | Path, name: str | None = None) -> list[SearchStatus]:
    out = []
    for folder in search_folders(root):
        if name is not None and folder.name != name:
            continue
        spec_path = folder / SPEC_FILE
        spec = json.loads(spec_path.read_text()) if spec_path.is_file() else None
        trials, reports = read_table(folder, "trials"), read_table(folder, "reports")
        names = sorted(set(trials["experiment"]), key=lambda e: trials.loc[
            trials["experiment"] == e, "budget_flops"].iloc[0])
        out.append(SearchStatus(folder.name, folder, spec,
                                [_experiment_status(e, trials, reports) for e in names]))
    return out


def format_status(statuses: list[SearchStatus]) -> str:
    lines = []
    for st in statuses:
        cap = (st.spec or {}).get("max_total_flops")
        spent = f"{st.train_flops:.3g} training FLOPs" + (f" of a {cap:.3g} cap" if cap else "")
        lines.append(f"search {st.name!r} ({st.folder}): {spent}")
        lines.append(f"  {'experiment':<18} {'running':>7} {'done':>5} {'stopped':>7} "
                     f"{'error':>5} {'FLOPs':>9}  best completed (val_loss_compressed)")
        for e in st.experiments:
            c = e.counts
            best = f"{e.best_loss:.4f} [{e.best_trial}]" if e.best_loss is not None else "-"
            lines.append(f"  {e.experiment:<18} {c.get('running', 0):>7} {c.get('done', 0):>5} "
                         f"{c.get('stopped', 0):>7} {c.get('error', 0):>5} "
                         f"{e.train_flops:>9.3g}  {best}")
    return "\n".join(lines) if lines else "no searches found"
