"""The results tables' columns: the contract between search (writes) and analysis (reads).

Three tables per search, each keyed (DESIGN.md): ``reports`` (one row per report), ``trials``
(one row per trial) and ``grid`` (the compression grid of each finished trial). Schedule
columns come from ``budgetune.spaces.Schedule`` itself, so a new schedule field is a new column.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa

from budgetune.spaces import Schedule

SCHEMA_VERSION = 1

_PY_TO_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(),
                "bool": pa.bool_()}


def _schedule_columns() -> list[tuple[str, pa.DataType]]:
    return [(f.name, _PY_TO_ARROW[str(f.type)]) for f in dataclasses.fields(Schedule)]


_PROVENANCE = [("experiment", pa.string()), ("trial_id", pa.string()),
               ("budget_flops", pa.float64()), ("corpus_id", pa.string()),
               ("schema_version", pa.int64()), ("budgetune_version", pa.string())]


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: tuple[str, ...]
    schema: pa.Schema

    @property
    def columns(self) -> list[str]:
        return self.schema.names


REPORTS = TableSpec("reports", ("experiment", "trial_id", "step"), pa.schema(
    _PROVENANCE + _schedule_columns() + [
        ("step", pa.int64()), ("tokens", pa.int64()), ("epochs", pa.float64()),
        ("train_flops", pa.float64()), ("eval_flops", pa.float64()),
        ("wall_s", pa.float64()), ("train_s", pa.float64()),
        ("current_lr", pa.float64()), ("train_loss", pa.float64()),
        ("n_params", pa.int64()), ("n_params_nonemb", pa.int64()), ("shared", pa.bool_()),
        ("val_loss", pa.float64()), ("unigram_loss", pa.float64()),
        ("val_loss_compressed", pa.float64()), ("compressed_bytes", pa.int64()),
        ("sparsity", pa.float64()), ("feasible", pa.bool_()), ("completed", pa.bool_()),
    ]))

TRIAL_STATUSES = ("running", "done", "stopped", "error")
STOP_REASONS = ("budget", "asha", "error", "cap")

TRIALS = TableSpec("trials", ("experiment", "trial_id"), pa.schema(
    _PROVENANCE + _schedule_columns() + [
        ("status", pa.string()), ("stop_reason", pa.string()), ("last_step", pa.int64()),
        ("train_flops", pa.float64()), ("val_loss_compressed", pa.float64()),
        ("node", pa.string()),
    ]))

GRID = TableSpec("grid", ("experiment", "trial_id", "sparsity", "quant_bits"), pa.schema(
    _PROVENANCE + [
        ("sparsity", pa.float64()), ("quant_bits", pa.int64()),
        ("val_loss_compressed", pa.float64()), ("compressed_bytes", pa.int64()),
        ("one_shot", pa.bool_()),
    ]))

TABLES = {spec.name: spec for spec in (REPORTS, TRIALS, GRID)}
