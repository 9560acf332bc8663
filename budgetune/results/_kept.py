"""The models a search keeps: the final model of each budget point of the best K schedules per
budget, in safetensors, under ``RESULTS/NAME/models/BUDGET/EXPERIMENT__TRIAL.safetensors``.

A trial writes its point's model (``budgetune.trainables.save_point``: unshared, pruning masks
folded in) before it reports the point, with what ranks it in the file's safetensors metadata
(``objective``, the search's own value under its size limit; ``schedule_key``, the schedule
without its seed). Then ``prune_kept`` deletes, at that budget, every file whose schedule is
not among the K of lowest objective (a schedule's seeds are kept together, so the winner's
repeats stay beside it). Files are ranked from their metadata alone, so nothing is remembered
between calls: a restarted trial, a resumed search and two workers pruning at once all agree.
Pruning is safe without a lock: K best of a growing set only ever loses members, so a file one
worker deletes is one every later ranking would delete too.

Reading metadata needs ``safetensors`` alone (its numpy framework), not torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = "models"
DEFAULT_KEEP_MODELS = 3  # schedules kept per budget (--keep-models)
SUFFIX = ".safetensors"


def models_folder(search_folder: str | Path) -> Path:
    return Path(search_folder) / MODELS_DIR


def budget_dir(folder: Path, budget_flops: float) -> Path:
    return folder / f"{float(budget_flops):.6g}"


def point_path(folder: Path, budget_flops: float, experiment: str, trial_id: str) -> Path:
    """Where the model of ``trial_id``'s budget point at ``budget_flops`` is kept."""
    return budget_dir(folder, budget_flops) / f"{experiment}__{trial_id}{SUFFIX}"


def schedule_key(schedule: dict) -> str:
    """The schedule without its seed: the seeds of one schedule are kept or dropped together."""
    fields = {k: v for k, v in sorted(schedule.items()) if k != "seed"}
    return hashlib.sha256(json.dumps(fields, default=str).encode()).hexdigest()[:16]


def point_metadata(*, schedule: dict, budget_flops: float, experiment: str, trial_id: str,
                   objective: float, val_loss: float, main_line_flops: float,
                   corpus_id: str, eval_tokens: int) -> dict[str, str]:
    """The metadata a kept model carries (safetensors metadata is str -> str)."""
    return {"format": "budgetune-point-1", "schedule": json.dumps(schedule),
            "schedule_key": schedule_key(schedule), "budget_flops": repr(float(budget_flops)),
            "experiment": experiment, "trial_id": trial_id,
            "objective": repr(float(objective)), "val_loss": repr(float(val_loss)),
            "main_line_flops": repr(float(main_line_flops)), "corpus_id": corpus_id,
            "eval_tokens": str(int(eval_tokens))}


@dataclass(frozen=True)
class KeptModel:
    path: Path
    budget_flops: float
    experiment: str
    trial_id: str
    schedule: dict
    schedule_key: str
    objective: float
    val_loss: float
    main_line_flops: float
    corpus_id: str
    eval_tokens: int  # the trial's setting (validation tokens per evaluation)
    nbytes: int


def read_kept(path: Path) -> KeptModel | None:
    """A kept model's metadata; None for a file being written or deleted meanwhile."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            m = f.metadata() or {}
        nbytes = path.stat().st_size
    except (FileNotFoundError, OSError):
        return None
    if m.get("format") != "budgetune-point-1":
        return None
    return KeptModel(path, float(m["budget_flops"]), m["experiment"], m["trial_id"],
                     json.loads(m["schedule"]), m["schedule_key"], float(m["objective"]),
                     float(m["val_loss"]), float(m["main_line_flops"]), m["corpus_id"],
                     int(m["eval_tokens"]), nbytes)


def kept_models(folder: Path, budget_flops: float | None = None) -> list[KeptModel]:
    """The kept models of a search's models folder (at one budget when given)."""
    dirs = ([budget_dir(folder, budget_flops)] if budget_flops is not None
            else sorted(p for p in folder.glob("*") if p.is_dir()))
    found = (read_kept(p) for d in dirs for p in sorted(d.glob(f"*{SUFFIX}")))
    return [k for k in found if k is not None]


def prune_kept(folder: Path, budget_flops: float, keep: int) -> list[Path]:
    """Delete the kept models at ``budget_flops`` outside the ``keep`` best schedules (by
    their best objective, then name); returns what was deleted."""
    models = kept_models(folder, budget_flops)
    best: dict[str, tuple[float, str]] = {}
    for k in models:
        best[k.schedule_key] = min(best.get(k.schedule_key, (float("inf"), "")),
                                   (k.objective, k.path.name))
    ranked = sorted(best, key=best.__getitem__)
    kept = set(ranked[:max(0, keep)])
    deleted = []
    for k in models:
        if k.schedule_key not in kept:
            k.path.unlink(missing_ok=True)
            deleted.append(k.path)
    return deleted


def find_kept(folder: Path, budget_flops: float, trial_id: str) -> KeptModel | None:
    """The kept model of ``trial_id``'s point at ``budget_flops``, if it was kept."""
    return next((k for k in kept_models(folder, budget_flops) if k.trial_id == trial_id), None)


def disk_bytes(path: str | Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
