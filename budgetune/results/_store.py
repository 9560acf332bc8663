"""Reading and writing the results tables: immutable Parquet part files, keyed rows.

Layout: ``RESULTS/NAME/{reports,trials,grid}/part-s<sequence>.parquet``. A flush adds one part
file (written to a temporary name, then renamed into place), so a flush costs the same at 100
rows and at 100,000, and a crash mid-write leaves no half file. The sequence number is one more
than the table's largest, taken under ``TABLE/.seq.lock`` as the part is renamed into place, so
it orders the parts as they were written whatever the clocks of the writers say. Readers combine
the parts in sequence order and drop duplicate keys, keeping the row of the highest sequence: a
trial retried from a checkpoint re-reports its steps harmlessly. Parts of budgetune 0.1 (schema
1, named ``part-<time_ns>-<pid>-<n>.parquet``) read as older than every numbered part, in name
order, and are upgraded to schema 2 as they are read. One driver at a time holds ``NAME/.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from budgetune.results._schema import (
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    TABLES,
    TableSpec,
    schema_1_search_id,
    schema_columns,
    upgrade_schema_1,
    upgrade_schema_2,
)

_NUMBERED = re.compile(r"part-s(\d+)\.parquet")  # schema 2: part-s<sequence>.parquet


class ResultsError(ValueError):
    """A results table is missing, corrupt, foreign or locked; the message says what to do."""


def _spec(table: str) -> TableSpec:
    if table not in TABLES:
        raise ResultsError(f"Unknown results table {table!r}; the tables are {list(TABLES)}.")
    return TABLES[table]


class ResultsWriter:
    """Append rows to one search's tables. Use as a context manager to hold the writer lock."""

    def __init__(self, root: str | os.PathLike, name: str):
        self.folder = Path(root) / name
        self._lock_file = None

    def __enter__(self) -> ResultsWriter:
        self.lock()
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()

    def lock(self) -> None:
        """Take the one-writer lock, or fail at once with a clear error."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ResultsError(
                f"Another budgetune process is writing {str(self.folder)!r}; wait for it to "
                "finish, or give this search another --name."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def append(self, table: str, rows: list[dict[str, object]]) -> Path | None:
        """Write ``rows`` as one new part file of ``table``; returns its path.

        Safe beside other writers of the same table, in this process (the driver holds the
        search's lock while its callback appends through another writer) or in others: the
        part is numbered and renamed into place under ``TABLE/.seq.lock``.
        """
        if not rows:
            return None
        spec = _spec(table)
        for row in rows:
            missing = [c for c in spec.columns if c not in row]
            if missing:
                raise ResultsError(f"Rows for table {table!r} lack columns {missing}.")
        try:
            arrow = pa.Table.from_pylist([{c: r[c] for c in spec.columns} for r in rows],
                                         schema=spec.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
            raise ResultsError(f"Rows for table {table!r} do not fit its schema "
                               f"({str(e).splitlines()[0]}).") from None
        folder = self.folder / table
        tmp = folder / f".part-{os.getpid()}-{uuid.uuid4().hex}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(arrow, tmp)
            with _sequence_lock(folder):
                path = folder / f"part-s{_next_sequence(folder):012d}.parquet"
                os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise ResultsError(
                f"Cannot write results to {str(folder)!r} ({e.strerror or e}); make it writable "
                "or pass another --results directory. What was written before is intact."
            ) from e
        return path


@contextlib.contextmanager
def _sequence_lock(folder: Path):
    """Held while a part is numbered and renamed: a short lock of its own, apart from the
    search's ``.lock``, which a driver holds for the whole search."""
    with open(folder / ".seq.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sequence(path: Path) -> int | None:
    match = _NUMBERED.fullmatch(path.name)
    return int(match.group(1)) if match else None


def _next_sequence(folder: Path) -> int:
    numbers = (_sequence(p) for p in folder.glob("part-s*.parquet"))
    return 1 + max((n for n in numbers if n is not None), default=0)


def _write_order(path: Path) -> tuple[int, int, str]:
    """Numbered parts by sequence; before them, 0.1's parts (named by time) by name."""
    number = _sequence(path)
    return (0, 0, path.name) if number is None else (1, number, "")


def part_files(folder: Path, table: str) -> list[Path]:
    """A table's part files, oldest written first."""
    path = Path(folder) / table
    return sorted(path.glob("part-*.parquet"), key=_write_order) if path.is_dir() else []


def _written_schema(path: Path, part: pa.Table) -> int:
    """The schema a part says it was written with (``SCHEMA_VERSION`` if it does not say)."""
    column = part.column("schema_version") if "schema_version" in part.column_names else None
    if column is None or not pa.types.is_integer(column.type):
        return SCHEMA_VERSION  # the checks against the current schema will name the problem
    versions = sorted(v for v in pc.unique(column).to_pylist() if v is not None)
    unreadable = [v for v in versions if v not in READABLE_SCHEMAS]
    if unreadable:
        raise ResultsError(
            f"{str(path)!r} was written with results schema {unreadable}, which this budgetune "
            f"(schema {SCHEMA_VERSION}) cannot read; use the budgetune version that wrote it, "
            "or move it out of the results directory."
        )
    return versions[0] if len(versions) == 1 else SCHEMA_VERSION


def _read_part(path: Path, spec: TableSpec, search_id_1: str) -> pa.Table:
    """One part, checked against the schema it was written with and upgraded to the current
    one; ``search_id_1`` is the ``search_id`` a schema-1 part's rows get."""
    try:
        part = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ResultsError(
            f"{str(path)!r} is not a readable Parquet file ({str(e).splitlines()[0]}); move it "
            "out of the results directory."
        ) from None
    version = _written_schema(path, part)
    expected = schema_columns(spec, version)
    unknown = [c for c in part.column_names if c not in expected]
    missing = [c for c in expected if c not in part.column_names]
    if unknown or missing:
        raise ResultsError(
            f"{str(path)!r} does not match the {spec.name!r} table of schema {version} "
            f"(unknown columns {unknown}, missing {missing}); it was not written by a "
            "budgetune version this one reads: move it out of the results directory."
        )
    for name in expected:
        actual, wanted = part.schema.field(name).type, spec.schema.field(name).type
        if actual != wanted and not (pa.types.is_integer(actual)
                                     and pa.types.is_floating(wanted)):
            raise ResultsError(
                f"Column {name!r} of {str(path)!r} has type {actual}, but must be "
                f"{wanted}; move the file out of the results directory."
            )
    if version == 1:
        part = upgrade_schema_1(spec, part, search_id_1)
    if version <= 2:
        part = upgrade_schema_2(spec, part)
    return part.select(spec.columns).cast(spec.schema)


def read_table(folder: str | os.PathLike, table: str) -> pd.DataFrame:
    """One search's table: all parts combined in the order they were written, and of the rows
    sharing a key the last written kept. Schema-1 parts are upgraded as they are read."""
    spec = _spec(table)
    search_id_1 = schema_1_search_id(Path(os.path.abspath(folder)).name)
    parts = [_read_part(p, spec, search_id_1) for p in part_files(Path(folder), table)]
    if not parts:
        return spec.schema.empty_table().to_pandas()
    frame = pa.concat_tables(parts).to_pandas()
    return frame.drop_duplicates(list(spec.key), keep="last").reset_index(drop=True)


def search_folders(root: str | os.PathLike) -> list[Path]:
    """The search folders under a results directory (or the directory itself if it is one)."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(
            f"The results directory {str(root)!r} does not exist; run `budgetune search "
            f"--results {root}` first, or point --results at an existing one."
        )
    if any((root / t).is_dir() for t in TABLES):
        return [root]
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and any((p / t).is_dir() for t in TABLES))
