"""The results tables as code: schema, atomic part-file writes, the writer lock, reading,
compaction.

Built on pyarrow alone; the search writes through it and analysis reads through it.
"""

from budgetune.results._compact import (
    COMPACT_PARTS_ENV,
    DEFAULT_COMPACT_PARTS,
    compact,
    compact_parts,
)
from budgetune.results._kept import (
    DEFAULT_KEEP_MODELS,
    MODELS_DIR,
    KeptModel,
    disk_bytes,
    find_kept,
    kept_models,
    models_folder,
    point_metadata,
    point_path,
    prune_kept,
    rank_loss,
)
from budgetune.results._schema import (
    GRID,
    READABLE_SCHEMAS,
    REPORTS,
    SCHEMA_VERSION,
    STOP_REASONS,
    TABLES,
    TRIAL_STATUSES,
    TRIALS,
    WHOLE_MODEL_SCHEMA,
    TableSpec,
    schema_1_search_id,
)
from budgetune.results._status import SPEC_FILE, read_search_spec
from budgetune.results._store import (
    ResultsError,
    ResultsWriter,
    part_files,
    read_table,
    search_folders,
)

__all__ = [
    "GRID", "REPORTS", "SCHEMA_VERSION", "STOP_REASONS", "TABLES", "TRIALS", "TRIAL_STATUSES",
    "SPEC_FILE", "read_search_spec",
    "ResultsError", "ResultsWriter", "TableSpec", "part_files", "read_table", "search_folders",
    "READABLE_SCHEMAS", "WHOLE_MODEL_SCHEMA", "schema_1_search_id",
    "COMPACT_PARTS_ENV", "DEFAULT_COMPACT_PARTS", "compact", "compact_parts",
    "DEFAULT_KEEP_MODELS", "MODELS_DIR", "KeptModel", "disk_bytes", "find_kept", "kept_models",
    "models_folder", "point_metadata", "point_path", "prune_kept", "rank_loss",
]
