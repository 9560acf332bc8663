"""Reading and writing the results tables: immutable Parquet part files, keyed rows.

Layout: ``RESULTS/NAME/{reports,trials,grid}/part-<time_ns>-<pid>-<n>.parquet``. A flush adds one
part file (written to a temporary name, then renamed into place), so a flush costs the same at
100 rows and at 100,000, and a crash mid-write leaves no half file. Readers combine the parts in
name order (oldest first) and drop duplicate keys, keeping the newest row: a trial retried from
a checkpoint re-reports its steps harmlessly. One writer at a time holds ``NAME/.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from budgetune.results._schema import SCHEMA_VERSION, TABLES, TableSpec

_counter = itertools.count()


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
        """Write ``rows`` as one new part file of ``table``; returns its path."""
        if not rows:
            return None
        spec = _spec(table)
        for row in rows:
            missing = [c for c in spec.columns if c not in row]
            if missing:
                raise ResultsError(f"Rows for table {table!r} lack columns {missing}.")
        arrow = pa.Table.from_pylist([{c: r[c] for c in spec.columns} for r in rows],
                                     schema=spec.schema)
        folder = self.folder / table
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.parquet"
        tmp = folder / f".{name}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(arrow, tmp)
            os.replace(tmp, folder / name)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise ResultsError(
                f"Cannot write results to {str(folder)!r} ({e.strerror}); make it writable "
                "or pass another --results directory. What was written before is intact."
            ) from e
        return folder / name


def part_files(folder: Path, table: str) -> list[Path]:
    path = folder / table
    return sorted(path.glob("part-*.parquet")) if path.is_dir() else []


def _read_part(path: Path, spec: TableSpec) -> pa.Table:
    try:
        part = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ResultsError(
            f"{str(path)!r} is not a readable Parquet file ({str(e).splitlines()[0]}); move it "
            "out of the results directory."
        ) from None
    unknown = [c for c in part.column_names if c not in spec.columns]
    missing = [c for c in spec.columns if c not in part.column_names]
    if unknown or missing:
        raise ResultsError(
            f"{str(path)!r} does not match the {spec.name!r} table of schema {SCHEMA_VERSION} "
            f"(unknown columns {unknown}, missing {missing}); it was not written by this "
            "budgetune version: move it out of the results directory."
        )
    for field in spec.schema:
        actual = part.schema.field(field.name).type
        if actual != field.type and not (pa.types.is_integer(actual)
                                         and pa.types.is_floating(field.type)):
            raise ResultsError(
                f"Column {field.name!r} of {str(path)!r} has type {actual}, but must be "
                f"{field.type}; move the file out of the results directory."
            )
    return part.select(spec.columns).cast(spec.schema)


def read_table(folder: str | os.PathLike, table: str) -> pd.DataFrame:
    """One search's table: all parts combined, duplicate keys dropped (newest kept)."""
    spec = _spec(table)
    parts = [_read_part(p, spec) for p in part_files(Path(folder), table)]
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
