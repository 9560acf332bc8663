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

A compacted part, ``part-s<first>-<last>.parquet`` (``_compact.compact``), holds the latest rows
of every part whose sequences lie in first..last (0 stands for 0.1's parts) and stands in their
place: readers skip the parts it covers, which a compaction killed before deleting them leaves
behind. A reader that raced a compaction (a part gone, or a compacted part new since it listed
the folder) lists the parts again, so it reads the table before or after, never a half state.
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

# part-s<sequence>.parquet, or a compacted part-s<first>-<last>.parquet
_NUMBERED = re.compile(r"part-s(\d+)(?:-(\d+))?\.parquet")
_READ_TRIES = 5  # listings raced by a compaction before a reader waits for one to end
SCHEMA_KEY = b"budgetune_schema"  # a compacted part's schema (its rows keep their own versions)


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
def _sequence_lock(folder: Path, shared: bool = False):
    """Held while a part is numbered and renamed, and while a table is compacted: a short lock
    of its own, apart from the search's ``.lock``, which a driver holds for the whole search.
    ``shared``: a reader waiting out compactions (no lock file, or none it may open: none)."""
    try:
        handle = open(folder / ".seq.lock", "r" if shared else "a")
    except OSError:
        if not shared:
            raise
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _span(path: Path) -> tuple[int, int, bool]:
    """(first, last, compacted): the sequences a part holds; a part of 0.1 holds (0, 0)."""
    match = _NUMBERED.fullmatch(path.name)
    if match is None:
        return 0, 0, False
    first = int(match.group(1))
    return (first, int(match.group(2)), True) if match.group(2) else (first, first, False)


def _next_sequence(folder: Path) -> int:
    return 1 + max((_span(p)[1] for p in folder.glob("part-s*.parquet")), default=0)


def _write_order(path: Path) -> tuple[int, int, str]:
    """Numbered parts by sequence; before them, 0.1's parts (named by time) by name."""
    if _NUMBERED.fullmatch(path.name) is None:
        return 0, 0, path.name
    return 1, _span(path)[1], ""


def _live(paths: list[Path]) -> list[Path]:
    """The parts no compacted part covers, oldest written first. Compacted spans nest or are
    apart (a compaction merges whole parts), so one sweep in (first, widest) order finds
    them."""
    spans = {p: _span(p) for p in paths}
    live, reach = [], -1
    for p in sorted(paths, key=lambda p: (spans[p][0], -spans[p][1], not spans[p][2])):
        _, last, compacted = spans[p]
        if last > reach:
            live.append(p)
            reach = last if compacted else reach
    return sorted(live, key=_write_order)


def part_files(folder: Path, table: str) -> list[Path]:
    """A table's live part files (those a reader combines), oldest written first."""
    path = Path(folder) / table
    return _live(list(path.glob("part-*.parquet"))) if path.is_dir() else []


def _written_schema(path: Path, part: pa.Table) -> int:
    """The schema a part says it was written with (``SCHEMA_VERSION`` if it does not say):
    a compacted part's in its metadata, any other's in its ``schema_version`` column."""
    said = (part.schema.metadata or {}).get(SCHEMA_KEY, b"")
    column = part.column("schema_version") if "schema_version" in part.column_names else None
    if said.isdigit():
        versions = [int(said)]
    elif column is None or not pa.types.is_integer(column.type):
        return SCHEMA_VERSION  # the checks against the current schema will name the problem
    else:
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
        with pq.ParquetFile(path) as file:  # a third faster than pq.read_table's datasets
            part = file.read()
    except FileNotFoundError:
        raise  # a compaction deleted it after the reader listed it: the reader lists again
    except (pa.ArrowInvalid, OSError) as e:
        raise ResultsError(
            f"{str(path)!r} is not a readable Parquet file ({str(e).splitlines()[0]}); move it "
            "out of the results directory."
        ) from None
    version = _written_schema(path, part)
    expected = schema_columns(spec, version)
    names = part.column_names  # a new list at each call: taken once
    present = set(names)
    unknown = [c for c in names if c not in expected]
    missing = [c for c in expected if c not in present]
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


def _latest_rows(spec: TableSpec, rows: pa.Table) -> pa.Table:
    """Of the rows sharing a key, the last: ``rows`` are concatenated in write order."""
    older = rows.select(list(spec.key)).to_pandas().duplicated(keep="last").to_numpy()
    return rows.filter(pa.array(~older))


def _read_parts(folder: Path, table: str, parts: list[Path]) -> pa.Table:
    """``parts`` of ``table`` combined: each upgraded to the current schema, the latest row of
    each key kept. Raises FileNotFoundError if a part is gone."""
    spec = _spec(table)
    search_id_1 = schema_1_search_id(Path(os.path.abspath(folder)).name)
    if not parts:
        return spec.schema.empty_table()
    return _latest_rows(spec, pa.concat_tables([_read_part(p, spec, search_id_1)
                                               for p in parts]))


def _compacted(parts: list[Path]) -> set[str]:
    return {p.name for p in parts if _span(p)[2]}


def read_table(folder: str | os.PathLike, table: str) -> pd.DataFrame:
    """One search's table: all parts combined in the order they were written, and of the rows
    sharing a key the last written kept. Schema-1 parts are upgraded as they are read.

    Without a lock: if a compaction ran meanwhile (a listed part is gone, or a compacted part
    appeared), the parts are listed and read again; after ``_READ_TRIES`` such races the read
    waits, under a shared ``.seq.lock``, for the compaction to end."""
    folder = Path(folder)
    _spec(table)
    for _ in range(_READ_TRIES):
        parts = part_files(folder, table)
        try:
            rows = _read_parts(folder, table, parts)
        except FileNotFoundError:
            continue
        if _compacted(part_files(folder, table)) <= _compacted(parts):
            return rows.to_pandas()
    with _sequence_lock(folder / table, shared=True):
        return _read_parts(folder, table, part_files(folder, table)).to_pandas()


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
