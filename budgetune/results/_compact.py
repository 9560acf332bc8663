"""Compaction: a table's parts merged into one, so a long search reads as fast as a short one.

A search flushes one part per table at every Tune experiment-state save (every ~10 s): a search
running for days leaves thousands, and a reader opens and checks every one. ``compact`` merges
the live parts into one, keeping exactly the rows ``read_table`` returns (the latest row of each
key, in the same order), in three steps, all under the table's ``.seq.lock`` (the lock an append
numbers its part under, so no append interleaves):

1. the merged rows are written to ``.compact-<random>.tmp`` and synced (``"written"``);
2. it is renamed to ``part-s<first>-<last>.parquet``, first..last the sequences of the parts it
   merged (0 for 0.1's parts), and the folder synced (``"renamed"``): from here readers read it
   in place of the parts it covers, and a part appended later (a higher sequence) still wins;
3. the covered parts are deleted, oldest first (``"deleted"`` after each).

A crash between any two steps leaves a folder that reads the same rows: before the rename the
temporary file is ignored, after it the covered parts are. The next compaction deletes what a
crash left (temporary files, covered parts). Readers take no lock; one that raced a compaction
reads again (``read_table``). The rows of 0.1's parts are written upgraded, with the search_id
of the folder's name at the time; a compacted part says its schema in its metadata
(``SCHEMA_KEY``), its rows keep the ``schema_version`` that wrote them.

When: the search compacts every table when an experiment ends, and after a flush that leaves a
table more than ``compact_parts()`` parts (``DEFAULT_COMPACT_PARTS``, or the environment's
``BUDGETUNE_COMPACT_PARTS``; 0 never compacts). Measured (2 shared CPU cores; best of 3–5) on a
reports table of N parts of 20 rows, ``read_table`` takes 4, 20, 61, 190, 633 ms for N = 1, 10,
30, 100, 300: ~2 ms a part (opening and reading a Parquet file; before ``_read_part`` took the
column names once and read with ``ParquetFile`` it was ~3.8 ms: 1.17 s at N = 300). The rows
themselves cost little: 20,000 rows in one part read in 13 ms (the 1,000-trial scale benchmark
wrote 1,876 reports in 11 flushes, so only the end-of-experiment compaction ran there; 20,000
rows stand for a search of ~10,000 tiny trials, and days of 10 s saves are ~8,600 flushes a day).
With a threshold T a table never holds more than T + 1 parts (its compacted part and T
flushes), so a read costs at most ~2 T ms more than the compacted table's. A compaction
rewrites all R rows: one part of 20,000 rows and 32 of 20 took 81–142 ms; it runs once every T
flushes, so the driver pays R / T rows a flush, amortized. T = 32: the 1,000-trial table reads
in 65 ms at worst instead of 13 ms, and compacting costs 2.5–4.5 ms a flush (< 0.05 % of Tune's
10 s save interval; a 10× larger table, ~10× that). A smaller T buys little read time and
compacts more often; a larger one lets reads grow by 2 ms a part.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq

from budgetune.results._schema import SCHEMA_VERSION
from budgetune.results._store import (
    SCHEMA_KEY,
    ResultsError,
    _live,
    _read_parts,
    _sequence_lock,
    _span,
    _spec,
)

DEFAULT_COMPACT_PARTS = 32  # ≤ 33 parts read in < 0.1 s; see the module docstring
COMPACT_PARTS_ENV = "BUDGETUNE_COMPACT_PARTS"
STALE_TMP_S = 600  # an append's temporary part older than this was left by a crash


def _after_step(step: str, table: Path) -> None:
    """Called after each step of a compaction of the ``table`` folder (a seam for tests that
    crash it there)."""


def compact_parts() -> int:
    """The part count past which a flush compacts a table (0: never compact)."""
    value = os.environ.get(COMPACT_PARTS_ENV, "").strip()
    if not value:
        return DEFAULT_COMPACT_PARTS
    try:
        parts = int(value)
    except ValueError:
        parts = -1
    if parts < 0:
        raise ValueError(f"The value of `{COMPACT_PARTS_ENV}` is {value!r}, but must be an "
                         "integer >= 0 (0 never compacts).")
    return parts


def compact(folder: str | os.PathLike, table: str, over: int = 1) -> Path | None:
    """Merge ``table``'s parts into one if it has more than ``over`` (default: any two);
    returns the compacted part, or None if there was nothing to merge."""
    _spec(table)
    path = Path(folder) / table
    if not path.is_dir():
        return None
    tmp = path / f".compact-{uuid.uuid4().hex}.tmp"
    try:
        with _sequence_lock(path):
            parts = list(path.glob("part-*.parquet"))
            live = _live(parts)
            _clean(path, [p for p in parts if p not in live])
            if len(live) <= max(over, 1):
                return None
            rows = _read_parts(Path(folder), table, live)
            rows = rows.replace_schema_metadata({SCHEMA_KEY: str(SCHEMA_VERSION).encode()})
            pq.write_table(rows, tmp)
            _sync(tmp)
            _after_step("written", path)
            spans = [_span(p) for p in live]
            first, last = min(s[0] for s in spans), max(s[1] for s in spans)
            merged = path / f"part-s{first:012d}-{last:012d}.parquet"
            os.replace(tmp, merged)
            _sync(path)
            _after_step("renamed", path)
            for part in live:
                part.unlink()
                _after_step("deleted", path)
            return merged
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ResultsError(
            f"Cannot compact {str(path)!r} ({e.strerror or e}); make it writable. What was "
            "written before is intact."
        ) from e


def _clean(path: Path, covered: list[Path]) -> None:
    """Delete what crashes left: covered parts, compactions' temporary files (only ever
    written under the lock held now) and appends' (written before taking it) once stale."""
    for part in covered:
        part.unlink(missing_ok=True)
    for tmp in path.glob(".compact-*.tmp"):
        tmp.unlink(missing_ok=True)
    for tmp in path.glob(".part-*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if time.time() - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink()


def _sync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk: a compaction deletes parts after it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
