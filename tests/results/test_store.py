"""The results store: write order under the writer's lock, keys per search, schema-1 upgrade."""

import math
import multiprocessing
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from budgetune.results import (
    SCHEMA_VERSION,
    TABLES,
    ResultsError,
    ResultsWriter,
    part_files,
    read_table,
)
from budgetune.spaces import Schedule

V1 = Path(__file__).parents[1] / "data" / "results_v1"  # written by budgetune 0.1


def _row(table: str, **values) -> dict:
    """A row of ``table`` with every column: zeros and empty strings unless given."""
    zero = {pa.bool_(): False, pa.string(): "", pa.int64(): 0, pa.float64(): 0.0}
    row = {f.name: zero[f.type] for f in TABLES[table].schema}
    row.update(Schedule().to_dict(), schema_version=SCHEMA_VERSION, search_id="s0",
               experiment="e", trial_id="t", budget_flops=1e12)
    return {**row, **values}


def test_the_last_written_row_wins_when_the_writers_clocks_run_backwards(tmp_path, monkeypatch):
    clock = iter(range(10**18, 0, -10**15))  # every call is earlier than the one before
    monkeypatch.setattr(time, "time_ns", lambda: next(clock))
    with ResultsWriter(tmp_path, "s"):  # the driver holds the search's lock throughout...
        written = [ResultsWriter(tmp_path, "s").append("reports", [_row("reports", step=1,
                                                                         val_loss=loss)])
                   for loss in (3.0, 2.0, 1.0)]  # ...while its callback appends
    assert part_files(tmp_path / "s", "reports") == written
    reports = read_table(tmp_path / "s", "reports")
    assert list(reports["val_loss"]) == [1.0]


def _append_many(root: str, writer: int, n: int) -> None:
    for i in range(n):
        ResultsWriter(root, "s").append("reports", [_row("reports", trial_id=f"{writer}-{i}")])


def test_concurrent_writers_never_share_a_sequence_number_nor_lose_a_part(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    parts = part_files(tmp_path / "s", "reports")
    assert [p.name for p in parts] == [f"part-s{k:012d}.parquet" for k in range(1, 101)]
    assert len(read_table(tmp_path / "s", "reports")) == 100
    assert not list((tmp_path / "s" / "reports").glob(".*.tmp"))


def test_rows_of_two_searches_in_one_folder_are_never_joined(tmp_path):
    with ResultsWriter(tmp_path, "s") as w:
        for table in TABLES:
            w.append(table, [_row(table, search_id="a", val_loss_compressed=1.0)])
            w.append(table, [_row(table, search_id="b", val_loss_compressed=2.0)])
    for table in TABLES:
        frame = read_table(tmp_path / "s", table)
        assert sorted(zip(frame["search_id"], frame["val_loss_compressed"])) == [
            ("a", 1.0), ("b", 2.0)], table


def test_a_budget_point_and_the_main_line_at_one_step_are_two_rows(tmp_path):
    with ResultsWriter(tmp_path, "s") as w:
        w.append("reports", [_row("reports", step=5, point=False, val_loss=3.0),
                             _row("reports", step=5, point=True, val_loss=2.9),
                             _row("reports", step=5, point=True, budget_flops=2e12)])
    assert len(read_table(tmp_path / "s", "reports")) == 3


def test_a_schema_1_search_reads_with_the_columns_schema_2_added(tmp_path):
    shutil.copytree(V1, tmp_path / "old")
    counts = {"reports": 9, "trials": 3, "grid": 21}  # trials: 12 rows, the newest per trial
    for table, n in counts.items():
        frame = read_table(tmp_path / "old", table)
        assert len(frame) == n
        assert set(frame["search_id"]) == {"schema1:old"}
        assert set(frame["schema_version"]) == {1}  # what wrote them
    reports = read_table(tmp_path / "old", "reports")
    assert list(reports["point"]) == list(reports["completed"]) and reports["point"].sum() == 2
    assert list(reports["spent_flops"]) == list(reports["train_flops"])
    assert reports["val_loss_se"].map(math.isnan).all() and set(reports["eval_tokens"]) == {0}
    assert reports["val_loss_diff_se"].map(math.isnan).all()  # not measured: compared unpaired
    assert read_table(tmp_path / "old", "grid")["val_loss_diff_se"].map(math.isnan).all()
    trials = read_table(tmp_path / "old", "trials")
    assert list(trials["spent_flops"]) == list(trials["train_flops"])
    assert set(trials["status"]) == {"done", "stopped"}  # the "running" rows were older


def test_schema_1_parts_read_as_older_than_every_numbered_part(tmp_path):
    shutil.copytree(V1, tmp_path / "old")
    first = part_files(tmp_path / "old", "reports")[-1]
    first.rename(first.with_name("part-99999999999999999999-1-000000.parquet"))  # far future
    final = read_table(tmp_path / "old", "reports").query("point").iloc[0].to_dict()
    ResultsWriter(tmp_path, "old").append(
        "reports", [{**final, "val_loss": 123.0, "schema_version": SCHEMA_VERSION}])
    reports = read_table(tmp_path / "old", "reports")
    assert len(reports) == 9
    assert (reports["val_loss"] == 123.0).sum() == 1


def _refusal(folder: Path, table: str) -> str:
    with pytest.raises(ResultsError) as caught:
        read_table(folder, table)
    message = str(caught.value)
    assert "\n" not in message and "out of the results directory" in message
    return message


def test_a_part_of_neither_schema_is_refused_in_one_line(tmp_path):
    shutil.copytree(V1, tmp_path / "old")
    part = part_files(tmp_path / "old", "trials")[0]
    table = pq.read_table(part)
    pq.write_table(table.append_column("surprise", pa.array([1] * len(table))), part)
    assert "schema 1 (unknown columns ['surprise'], missing [])" in _refusal(
        tmp_path / "old", "trials")
    pq.write_table(table.drop_columns(["node"]), part)
    assert "missing ['node']" in _refusal(tmp_path / "old", "trials")
    newer = table.set_column(table.schema.get_field_index("schema_version"), "schema_version",
                             pa.array([SCHEMA_VERSION + 1] * len(table)))
    pq.write_table(newer, part)
    assert f"schema [{SCHEMA_VERSION + 1}], which this budgetune" in _refusal(
        tmp_path / "old", "trials")
    ResultsWriter(tmp_path, "new").append("trials", [_row("trials")])
    part = part_files(tmp_path / "new", "trials")[0]
    pq.write_table(pq.read_table(part).drop_columns(["search_id"]), part)  # a damaged current
    assert f"schema {SCHEMA_VERSION} (unknown columns [], missing ['search_id'])" in _refusal(
        tmp_path / "new", "trials")


def test_rows_that_do_not_fit_are_refused_in_one_line_and_nothing_is_written(tmp_path):
    writer = ResultsWriter(tmp_path, "s")
    writer.append("reports", [_row("reports")])
    before = {p: p.read_bytes() for p in (tmp_path / "s" / "reports").iterdir()}
    for bad in ({"val_loss": "x"}, {"step": 2**70}):
        with pytest.raises(ResultsError, match=r"^Rows for table 'reports' do not fit [^\n]*$"):
            writer.append("reports", [_row("reports", **bad)])
    with pytest.raises(ResultsError, match=r"lack columns \['val_loss'\]"):
        writer.append("reports", [{k: v for k, v in _row("reports").items() if k != "val_loss"}])
    assert {p: p.read_bytes() for p in (tmp_path / "s" / "reports").iterdir()} == before


def test_a_schema_2_part_reads_as_the_cosine_it_was():
    """Schema 2 (budgetune 0.2) had no WSD fields: its rows read as cosine, with Schedule's
    WSD defaults, share_fraction_effective = share_fraction, main_line_flops = the budget."""
    import tempfile

    from budgetune.results._schema import ADDED_IN_SCHEMA_3

    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "s" / "reports"
        folder.mkdir(parents=True)
        row = _row("reports", schema_version=2, share_fraction=0.25, budget_flops=3e11)
        table = pa.Table.from_pylist([row], schema=TABLES["reports"].schema)
        pq.write_table(table.drop_columns(list(ADDED_IN_SCHEMA_3["reports"])),
                       folder / "part-s000000000001.parquet")
        got = read_table(Path(root) / "s", "reports").iloc[0]
    defaults = Schedule()
    assert got["lr_schedule"] == "cosine" and got["cooldown_shape"] == defaults.cooldown_shape
    assert got["warmup_steps"] == defaults.warmup_steps
    assert got["cooldown_fraction"] == defaults.cooldown_fraction
    assert got["share_fraction_effective"] == 0.25 and got["main_line_flops"] == 3e11
    assert got["schema_version"] == 2
