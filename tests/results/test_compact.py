"""Compaction: the rows read before are the rows read after, whatever a reader or a crash does."""

import multiprocessing
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from budgetune.results import (
    COMPACT_PARTS_ENV,
    SCHEMA_VERSION,
    TABLES,
    ResultsWriter,
    compact,
    compact_parts,
    part_files,
    read_table,
)
from tests.results.test_store import V1, _row


def _write(root: Path, *parts: list[tuple[str, int, float]]) -> Path:
    """Parts of (trial_id, step, val_loss) reports rows; returns the search folder."""
    writer = ResultsWriter(root, "s")
    for rows in parts:
        writer.append("reports", [_row("reports", trial_id=t, step=s, val_loss=v)
                                  for t, s, v in rows])
    return root / "s"


def _losses(folder: Path) -> list[tuple[str, int, float]]:
    frame = read_table(folder, "reports")
    return list(zip(frame["trial_id"], frame["step"], frame["val_loss"]))


def test_compaction_keeps_the_rows_read_before_and_a_later_part_still_wins(tmp_path):
    folder = _write(tmp_path, [("a", 1, 3.0), ("a", 2, 2.5), ("b", 1, 3.1)],
                    [("a", 2, 2.4), ("c", 1, 3.3)],  # a retried trial re-reports step 2
                    [("b", 1, 3.0)])
    before = read_table(folder, "reports")
    merged = compact(folder, "reports")
    assert part_files(folder, "reports") == [merged]
    assert merged.name == "part-s000000000001-000000000003.parquet"
    assert pq.read_metadata(merged).num_rows == 4  # deduplicated as read, not just joined
    pd.testing.assert_frame_equal(read_table(folder, "reports"), before)
    assert compact(folder, "reports") is None  # one part: nothing to do
    _write(tmp_path, [("a", 1, 9.0)])  # written after the compaction: the latest row
    assert ("a", 1, 9.0) in _losses(folder) and len(_losses(folder)) == 4
    compact(folder, "reports")
    assert ("a", 1, 9.0) in _losses(folder) and len(part_files(folder, "reports")) == 1
    assert part_files(folder, "reports")[0].name == "part-s000000000001-000000000004.parquet"


def test_a_compacted_schema_1_search_reads_the_same(tmp_path):
    shutil.copytree(V1, tmp_path / "old")
    old = tmp_path / "old"
    for table in ("reports", "trials"):  # 0.1's parts alone: rows all of schema 1
        before = read_table(old, table)
        compact(old, table)
        assert [p.name for p in part_files(old, table)] == [
            "part-s000000000000-000000000000.parquet"]
        pd.testing.assert_frame_equal(read_table(old, table), before)
    for table in TABLES:  # a resumed 0.1 search: then numbered parts
        ResultsWriter(tmp_path, "old").append(table, [_row(table, trial_id="new")])
    before = {t: read_table(old, t) for t in TABLES}
    for table in TABLES:
        compact(old, table)
        assert len(part_files(old, table)) == 1
        after = read_table(old, table)
        pd.testing.assert_frame_equal(after, before[table])
        assert set(after["schema_version"]) == {1, SCHEMA_VERSION}  # what wrote each row
        assert set(after["search_id"]) == {"schema1:old", "s0"}
    ResultsWriter(tmp_path, "old").append("trials", [_row("trials", trial_id="newer")])
    assert len(read_table(old, "trials")) == len(before["trials"]) + 1


def _append_and_compact(root: str, n: int) -> None:
    for i in range(n):
        ResultsWriter(root, "s").append("reports", [_row("reports", trial_id=f"t{i}")])
        compact(Path(root) / "s", "reports")


def test_a_reader_racing_a_compactor_never_errs_nor_sees_fewer_rows(tmp_path):
    _write(tmp_path, [("first", 0, 1.0)])
    child = multiprocessing.get_context("spawn").Process(target=_append_and_compact,
                                                         args=(str(tmp_path), 150))
    child.start()
    seen, reads = 1, 0
    while child.is_alive() or reads == 0:
        n = len(read_table(tmp_path / "s", "reports"))
        assert n >= seen  # never a half state: what was read once is read again
        seen, reads = n, reads + 1
    child.join()
    assert child.exitcode == 0
    assert len(read_table(tmp_path / "s", "reports")) == 151
    assert reads > 20  # they raced


def _kill_at(folder: Path, step: str) -> int:
    """Compact ``folder``'s reports in a child process that SIGKILLs itself after ``step``."""
    code = (
        "import os, signal, sys\n"
        "from budgetune.results import _compact\n"
        "def die(step, table):\n"
        "    if step == sys.argv[2]:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "_compact._after_step = die\n"
        "_compact.compact(sys.argv[1], 'reports')\n")
    return subprocess.run([sys.executable, "-c", code, str(folder), step],
                          timeout=120).returncode


@pytest.mark.parametrize("step", ["written", "renamed", "deleted"])
def test_a_compaction_killed_at_any_step_loses_nothing(tmp_path, step):
    folder = _write(tmp_path, [("a", 1, 3.0), ("b", 1, 3.1)], [("a", 1, 2.9)],
                    [("c", 1, 3.2)])
    before = read_table(folder, "reports")
    assert _kill_at(folder, step) == -signal.SIGKILL
    pd.testing.assert_frame_equal(read_table(folder, "reports"), before)
    assert len(part_files(folder, "reports")) == (3 if step == "written" else 1)
    files = sorted(p.name for p in (folder / "reports").iterdir() if p.name != ".seq.lock")
    merged = "part-s000000000001-000000000003.parquet"
    singles = [f"part-s00000000000{k}.parquet" for k in (1, 2, 3)]
    assert [f for f in files if f.startswith("part-")] == {
        "written": singles, "renamed": [merged, *singles],
        "deleted": [merged, *singles[1:]]}[step]
    assert len([f for f in files if f.startswith(".compact-")]) == (step == "written")
    _write(tmp_path, [("a", 1, 1.0)])  # numbered after what the killed compaction merged
    assert ("a", 1, 1.0) in _losses(folder)
    compact(folder, "reports")  # completes, and deletes what the crash left
    assert [p.name for p in (folder / "reports").iterdir() if p.name != ".seq.lock"] == [
        "part-s000000000001-000000000004.parquet"]
    assert sorted(_losses(folder)) == [("a", 1, 1.0), ("b", 1, 3.1), ("c", 1, 3.2)]


def test_a_flush_compacts_a_table_past_the_threshold(tmp_path, monkeypatch):
    from budgetune.search._callback import ResultsCallback

    monkeypatch.setenv(COMPACT_PARTS_ENV, "3")
    callback = ResultsCallback(str(tmp_path), "s", "s0", "e", 1e12)
    counts = []
    for step in range(10):
        callback._rows["reports"].append(_row("reports", step=step))
        callback.flush()
        counts.append(len(part_files(tmp_path / "s", "reports")))
    assert max(counts) <= 3 and counts[-1] < 3
    assert sorted(read_table(tmp_path / "s", "reports")["step"]) == list(range(10))


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_bad_compact_parts_setting_is_refused_in_one_line(monkeypatch, value):
    monkeypatch.setenv(COMPACT_PARTS_ENV, value)
    with pytest.raises(ValueError, match=rf"^The value of `{COMPACT_PARTS_ENV}` is '{value}', "
                                         r"but must be an integer >= 0 \(0 never compacts\)\.$"):
        compact_parts()


def test_a_listing_that_missed_a_compaction_is_read_again(tmp_path, monkeypatch):
    """A directory listing racing a rename and an unlink may hold neither the new compacted
    part nor a part it covers (readdir promises nothing for entries changed meanwhile): the
    reader sees a compacted part its listing lacked, and reads again. The race itself is rare,
    so the stale listing is given here, in a folder a killed compaction really left."""
    from budgetune.results import _store

    folder = _write(tmp_path, [("a", 1, 3.0)], [("b", 1, 3.0)], [("c", 1, 3.0)])
    assert _kill_at(folder, "deleted") == -signal.SIGKILL  # the compacted part, parts 2, 3
    listings = []

    def missed_two(folder, table):  # first: parts 2 and 3, as if listed mid-compaction
        listings.append(_store._live(list((folder / table).glob("part-*.parquet"))))
        if len(listings) > 1:
            return listings[-1]
        return [folder / table / f"part-s00000000000{k}.parquet" for k in (2, 3)]

    monkeypatch.setattr(_store, "part_files", missed_two)
    assert sorted(_losses(folder)) == [("a", 1, 3.0), ("b", 1, 3.0), ("c", 1, 3.0)]
    assert len(listings) == 4  # listed, read, listed again: raced; listed, read, listed


def test_a_compacted_part_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    from budgetune.results import ResultsError
    from budgetune.results._store import SCHEMA_KEY

    folder = _write(tmp_path, [("a", 1, 3.0)], [("b", 1, 3.0)])
    merged = compact(folder, "reports")
    table = pq.read_table(merged)
    pq.write_table(table.replace_schema_metadata({SCHEMA_KEY: b"9"}), merged)
    refusal = (r"^[^\n]*written with results schema \[9\], which this budgetune "
               rf"\(schema {SCHEMA_VERSION}\) cannot read")
    with pytest.raises(ResultsError, match=refusal):
        read_table(folder, "reports")


def test_a_bad_compact_parts_setting_stops_a_search_before_it_starts(tmp_path, monkeypatch):
    from budgetune.search import SearchSpec, run_search

    monkeypatch.setenv(COMPACT_PARTS_ENV, "-1")
    spec = SearchSpec(space="tiny", budgets=(2e8,), results=str(tmp_path), name="x")
    with pytest.raises(ValueError, match=COMPACT_PARTS_ENV):
        run_search(spec, progress=lambda line: None)
    assert not (tmp_path / "x").exists()


def test_a_bad_compact_parts_setting_is_refused_by_a_dry_run_too(tmp_path, monkeypatch):
    """--dry-run says what a run would do: a run would refuse the setting, so it does."""
    from tests.test_bad_input import _assert_one_line_refusal, _cli

    monkeypatch.setenv(COMPACT_PARTS_ENV, "-3")
    code, stderr = _cli("search", "--space", "tiny", "--dry-run", "--results", str(tmp_path))
    _assert_one_line_refusal(code, stderr)
    assert COMPACT_PARTS_ENV in stderr and not any(tmp_path.iterdir())
