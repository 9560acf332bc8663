"""The models a search keeps: the final model of each budget point of the best K training
recipes per budget, in safetensors, as ``RESULTS/NAME/models/BUDGET/EXPERIMENT__TRIAL``
``.safetensors``.

A trial writes its point's model (``budgetune.trainables.save_point``: unshared, pruning masks
folded in) before it reports the point, with what ranks it in the file's safetensors metadata:
``rank_loss``, the point's lowest ``val_loss_compressed`` over its own compression target and
its compression grid within the search's size limit (infinite when no cell fits), which is what
``best`` compares the point's recipes by; and ``recipe_key``, the training fields
(``budgetune.spaces.training_fields``: not the seed, not the bits), which is how ``best`` pools
seeds. Then ``prune_kept`` deletes, at that budget, every file whose recipe is not among the K
of lowest ``rank_loss`` (a recipe's seeds, its repeats included, are kept together). Files are
ranked from their metadata alone, so nothing is remembered between calls: a restarted trial, a
resumed search and two workers pruning at once all agree without a lock, since a file is
deleted only when K other recipes already rank above it. (A recipe dropped and later raised by
a new seed's lower loss keeps only the seeds that come after; ``export --retrain`` trains the
others again.) ``best`` may answer with a recipe outside the K, the smallest within noise of
the lowest or one under a tighter ``--max-mb``; ``export`` then asks for ``--retrain``.

Reading metadata needs ``safetensors`` alone (its numpy framework), not torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from budgetune.spaces import training_fields

MODELS_DIR = "models"
DEFAULT_KEEP_MODELS = 3  # training recipes kept per budget (--keep-models)
SUFFIX = ".safetensors"
FORMAT = "budgetune-point-2"  # the metadata's layout


def models_folder(search_folder: str | Path) -> Path:
    return Path(search_folder) / MODELS_DIR


def budget_dir(folder: Path, budget_flops: float) -> Path:
    return folder / f"{float(budget_flops):.6g}"


def point_path(folder: Path, budget_flops: float, experiment: str, trial_id: str) -> Path:
    """Where the model of ``trial_id``'s budget point at ``budget_flops`` is kept."""
    return budget_dir(folder, budget_flops) / f"{experiment}__{trial_id}{SUFFIX}"


def recipe_key(schedule: dict) -> str:
    """The schedule's training fields: the seeds of one recipe (and the bits its cells vary)
    are kept or dropped together."""
    fields = {k: schedule.get(k) for k in training_fields()}
    return hashlib.sha256(json.dumps(fields, default=str).encode()).hexdigest()[:16]


def rank_loss(cells: list[tuple[float, int]], max_bytes: float | None) -> float:
    """The lowest loss of a point's (loss, bytes) cells within ``max_bytes`` (inf if none)."""
    fitting = [loss for loss, nbytes in cells
               if (max_bytes is None or nbytes <= max_bytes) and math.isfinite(loss)]
    return min(fitting, default=math.inf)


def point_metadata(*, schedule: dict, budget_flops: float, experiment: str, trial_id: str,
                   rank_loss: float, val_loss: float, main_line_flops: float,
                   corpus_id: str, eval_tokens: int) -> dict[str, str]:
    """The metadata a kept model carries (safetensors metadata is str -> str)."""
    return {"format": FORMAT, "schedule": json.dumps(schedule),
            "recipe_key": recipe_key(schedule), "budget_flops": repr(float(budget_flops)),
            "experiment": experiment, "trial_id": trial_id,
            "rank_loss": repr(float(rank_loss)), "val_loss": repr(float(val_loss)),
            "main_line_flops": repr(float(main_line_flops)), "corpus_id": corpus_id,
            "eval_tokens": str(int(eval_tokens))}


@dataclass(frozen=True)
class KeptModel:
    path: Path
    budget_flops: float
    experiment: str
    trial_id: str
    schedule: dict
    recipe_key: str
    rank_loss: float
    val_loss: float
    main_line_flops: float
    corpus_id: str
    eval_tokens: int  # the trial's setting (validation tokens per evaluation)
    nbytes: int


def read_kept(path: Path) -> KeptModel | None:
    """A kept model's metadata; None for a file deleted meanwhile, or not a kept model of this
    format (never ranked, never deleted)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            m = f.metadata() or {}
        nbytes = path.stat().st_size
    except (OSError, SafetensorError):
        return None
    if m.get("format") != FORMAT:
        return None
    try:
        return KeptModel(path, float(m["budget_flops"]), m["experiment"], m["trial_id"],
                         json.loads(m["schedule"]), m["recipe_key"], float(m["rank_loss"]),
                         float(m["val_loss"]), float(m["main_line_flops"]), m["corpus_id"],
                         int(m["eval_tokens"]), nbytes)
    except (KeyError, ValueError):
        return None


def kept_models(folder: Path, budget_flops: float | None = None) -> list[KeptModel]:
    """The kept models of a search's models folder (at one budget when given)."""
    dirs = ([budget_dir(folder, budget_flops)] if budget_flops is not None
            else sorted(p for p in folder.glob("*") if p.is_dir()))
    found = (read_kept(p) for d in dirs for p in sorted(d.glob(f"*{SUFFIX}")))
    return [k for k in found if k is not None]


def prune_kept(folder: Path, budget_flops: float, keep: int) -> list[Path]:
    """Delete the kept models at ``budget_flops`` outside the ``keep`` best recipes (by their
    lowest ``rank_loss``, then name); returns what was deleted."""
    models = kept_models(folder, budget_flops)
    best: dict[str, tuple[float, str]] = {}
    for k in models:
        best[k.recipe_key] = min(best.get(k.recipe_key, (math.inf, "")),
                                 (k.rank_loss, k.path.name))
    ranked = sorted(best, key=best.__getitem__)
    kept = set(ranked[:max(0, keep)])
    deleted = []
    for k in models:
        if k.recipe_key not in kept:
            k.path.unlink(missing_ok=True)
            deleted.append(k.path)
    return deleted


def find_kept(folder: Path, budget_flops: float, trial_id: str) -> KeptModel | None:
    """The kept model of ``trial_id``'s point at ``budget_flops``, if it was kept."""
    return next((k for k in kept_models(folder, budget_flops) if k.trial_id == trial_id), None)


def disk_bytes(path: str | Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist). A running search deletes
    files meanwhile (checkpoints, pruned models): those count as gone."""
    path = Path(path)
    if path.is_file():
        return _size(path)
    # os.walk passes over a folder deleted while it walks (Path.rglob raises FileNotFoundError)
    return sum(_size(Path(root, name)) for root, _, files in os.walk(path) for name in files)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
