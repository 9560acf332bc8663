"""The results tables' columns: the contract between search (writes) and analysis (reads).

Three tables per search, each keyed (docs/results.md): ``reports`` (one row per report),
``trials`` (one row per trial) and ``grid`` (the compression grid of each budget point).
Schedule columns come from ``budgetune.spaces.Schedule`` itself, so a new schedule field is a
new column.

Schema 2 (budgetune 0.2) added ``search_id`` (a unique id made when a search starts: two
searches in one folder are never joined), ``point`` (the row is a budget point: its learning
rate was annealed for ``budget_flops``), ``spent_flops`` (FLOPs the trial really spent so far)
and ``val_loss_se``/``eval_tokens`` (the standard error of ``val_loss`` over the evaluated
tokens, and how many). Tables of schema 1 still load: ``budgetune.results`` fills those columns
in as schema 1 meant them (see ``_store.upgrade_part``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa

from budgetune.spaces import Schedule

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # schema 1 parts are upgraded on read

_PY_TO_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(),
                "bool": pa.bool_()}


def _schedule_columns() -> list[tuple[str, pa.DataType]]:
    return [(f.name, _PY_TO_ARROW[str(f.type)]) for f in dataclasses.fields(Schedule)]


_PROVENANCE = [("search_id", pa.string()), ("experiment", pa.string()),
               ("trial_id", pa.string()),
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


REPORTS = TableSpec("reports", ("search_id", "experiment", "trial_id", "budget_flops", "point",
                               "step"), pa.schema(
    _PROVENANCE + _schedule_columns() + [
        ("point", pa.bool_()), ("step", pa.int64()), ("tokens", pa.int64()),
        ("epochs", pa.float64()), ("train_flops", pa.float64()), ("spent_flops", pa.float64()),
        ("eval_flops", pa.float64()), ("eval_tokens", pa.int64()),
        ("wall_s", pa.float64()), ("train_s", pa.float64()),
        ("current_lr", pa.float64()), ("train_loss", pa.float64()),
        ("n_params", pa.int64()), ("n_params_nonemb", pa.int64()), ("shared", pa.bool_()),
        ("val_loss", pa.float64()), ("val_loss_se", pa.float64()),
        ("unigram_loss", pa.float64()), ("val_loss_compressed", pa.float64()),
        ("compressed_bytes", pa.int64()),
        ("sparsity", pa.float64()), ("feasible", pa.bool_()), ("completed", pa.bool_()),
    ]))

TRIAL_STATUSES = ("running", "done", "stopped", "error")
STOP_REASONS = ("budget", "asha", "error", "cap")

TRIALS = TableSpec("trials", ("search_id", "experiment", "trial_id"), pa.schema(
    _PROVENANCE + _schedule_columns() + [
        ("status", pa.string()), ("stop_reason", pa.string()), ("last_step", pa.int64()),
        ("train_flops", pa.float64()), ("spent_flops", pa.float64()),
        ("val_loss_compressed", pa.float64()),
        ("node", pa.string()),
    ]))

GRID = TableSpec("grid", ("search_id", "experiment", "trial_id", "budget_flops", "sparsity",
                         "quant_bits"), pa.schema(
    _PROVENANCE + [
        ("sparsity", pa.float64()), ("quant_bits", pa.int64()),
        ("val_loss_compressed", pa.float64()), ("compressed_bytes", pa.int64()),
        ("one_shot", pa.bool_()),
    ]))

TABLES = {spec.name: spec for spec in (REPORTS, TRIALS, GRID)}
