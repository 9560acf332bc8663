"""The results tables' columns: the contract between search (writes) and analysis (reads).

Three tables per search, each keyed (docs/results.md): ``reports`` (one row per report),
``trials`` (one row per trial) and ``grid`` (the compression grid of each budget point).
Schedule columns come from ``budgetune.spaces.Schedule`` itself, so a new schedule field is a
new column.

Schema 2 (budgetune 0.2) added ``search_id`` (a unique id made when a search starts: two
searches in one folder are never joined), ``point`` (the row is a budget point: its learning
rate was annealed for ``budget_flops``), ``spent_flops`` (FLOPs the trial really spent so far)
and ``val_loss_se``/``eval_tokens`` (the standard error of ``val_loss`` over the evaluated
tokens, and how many), and ``val_loss_diff_se`` in reports and grid (the standard error of a
compressed loss's difference from the uncompressed model's, paired on the same tokens).
Schema 3 (budgetune 0.3) added the WSD schedule fields (``lr_schedule``, ``warmup_steps``,
``cooldown_fraction``, ``cooldown_shape``) to reports and trials, and
``share_fraction_effective`` and ``main_line_flops`` to reports (the share of a report's steps
trained with shared blocks: on a WSD main line it differs from point to point; and the budget
the run's main line was planned for).
Schema 4 (budgetune 0.3) changed no column but what two of them measure: ``compressed_bytes``
and ``val_loss_compressed`` are the whole model's, its token embedding (tied to the LM head)
quantized too (``budgetune.trainables._compress``), where schema 3 and before kept it fp32.
Rows of both load, but ``load_results`` refuses to analyse them together (``WHOLE_MODEL_SCHEMA``):
their sizes and compressed losses are not comparable.
Tables of schemas 1 and 2 still load: ``read_table`` upgrades each older part as it reads it
(``upgrade_schema_1``, then ``upgrade_schema_2``), filling those columns in as they meant them;
their rows keep the ``schema_version`` that says what wrote them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from budgetune.spaces import Schedule

SCHEMA_VERSION = 4
READABLE_SCHEMAS = (1, 2, 3, 4)  # older parts are upgraded on read
WHOLE_MODEL_SCHEMA = 4  # from here on the token embedding is compressed and counted so

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
        ("val_loss_diff_se", pa.float64()), ("compressed_bytes", pa.int64()),
        ("sparsity", pa.float64()), ("feasible", pa.bool_()), ("completed", pa.bool_()),
        ("share_fraction_effective", pa.float64()), ("main_line_flops", pa.float64()),
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
        ("val_loss_compressed", pa.float64()), ("val_loss_diff_se", pa.float64()),
        ("compressed_bytes", pa.int64()), ("one_shot", pa.bool_()),
    ]))

TABLES = {spec.name: spec for spec in (REPORTS, TRIALS, GRID)}

ADDED_IN_SCHEMA_2 = {"reports": ("search_id", "point", "spent_flops", "val_loss_se",
                                 "eval_tokens", "val_loss_diff_se"),
                     "trials": ("search_id", "spent_flops"),
                     "grid": ("search_id", "val_loss_diff_se")}


_WSD_FIELDS = ("lr_schedule", "warmup_steps", "cooldown_fraction", "cooldown_shape")
ADDED_IN_SCHEMA_3 = {"reports": (*_WSD_FIELDS, "share_fraction_effective", "main_line_flops"),
                     "trials": _WSD_FIELDS, "grid": ()}


def schema_columns(spec: TableSpec, version: int) -> list[str]:
    """The columns a part of ``spec``'s table had in schema ``version``."""
    added = {2: ADDED_IN_SCHEMA_2, 3: ADDED_IN_SCHEMA_3}
    later = {c for v, columns in added.items() if v > version for c in columns[spec.name]}
    return [c for c in spec.columns if c not in later]


def upgrade_schema_2(spec: TableSpec, part: pa.Table) -> pa.Table:
    """A schema-2 part (or an upgraded schema-1 one) with the columns schema 3 added, as
    budgetune 0.2 meant them: every trial was cosine, so the WSD fields hold Schedule's
    defaults (unused by cosine; the same values a cosine trial of 0.3 records, so recipes of
    both join), and ``share_fraction_effective`` is the planned ``share_fraction`` (a cosine
    run switches at round(share_fraction · steps), within half a step of it), and
    ``main_line_flops`` is the row's budget."""
    defaults, n = Schedule(), part.num_rows
    for column in ADDED_IN_SCHEMA_3[spec.name]:
        if column == "share_fraction_effective":
            values = pc.cast(part["share_fraction"], pa.float64())
        elif column == "main_line_flops":
            values = pc.cast(part["budget_flops"], pa.float64())
        else:
            kind = spec.schema.field(column).type
            values = pa.repeat(pa.scalar(getattr(defaults, column), kind), n)
        part = part.append_column(column, values)
    return part


def schema_1_search_id(folder_name: str) -> str:
    """The ``search_id`` of a schema-1 search: 0.1 ran one search per folder, named by it."""
    return f"schema1:{folder_name}"


def upgrade_schema_1(spec: TableSpec, part: pa.Table, search_id: str) -> pa.Table:
    """A schema-1 part of ``spec``'s table with the columns schema 2 added, as 0.1 meant them.

    - ``search_id``: ``schema_1_search_id(<search folder name>)``, the same for every part of
      the folder, so the folder's rows join each other and nothing else;
    - ``point`` = ``completed``: 0.1 ran cosine trials only, whose budget point is the report
      that completed the budget;
    - ``spent_flops`` = ``train_flops``: 0.1 trained no cooldown branches;
    - ``val_loss_se`` = NaN: 0.1 did not measure it;
    - ``val_loss_diff_se`` = NaN: nor the paired standard error of a compressed loss's
      difference from the model as is (the analysis then compares such cells as independent);
    - ``eval_tokens`` = 0, meaning "not recorded" (the search writes 0 too when a trial does not
      say); 0 rather than null keeps the column int64, and no count of windows is claimed.
    """
    n = part.num_rows
    fills = {"search_id": pa.repeat(pa.scalar(search_id, pa.string()), n),
             "val_loss_se": pa.repeat(pa.scalar(float("nan"), pa.float64()), n),
             "val_loss_diff_se": pa.repeat(pa.scalar(float("nan"), pa.float64()), n),
             "eval_tokens": pa.repeat(pa.scalar(0, pa.int64()), n)}
    if "completed" in part.column_names:
        fills["point"] = part["completed"]
    if "train_flops" in part.column_names:
        fills["spent_flops"] = pc.cast(part["train_flops"], pa.float64())
    for column in ADDED_IN_SCHEMA_2[spec.name]:
        part = part.append_column(column, fills[column])
    return part
