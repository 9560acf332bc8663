"""Loading results: the evidence rules, and clear errors for every way a table can be wrong."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from budgetune.analysis import budget_points, load_results
from budgetune.flops import plan_steps, tokens_per_step
from budgetune.results import ResultsError, ResultsWriter, part_files, read_table
from budgetune.spaces import Schedule
from tests.analysis.synthetic import trial_rows, write

V1 = Path(__file__).parents[1] / "data" / "results_v1"  # a search written by budgetune 0.1


def _two_trials(root, corpus="c0"):
    r1, t1 = trial_rows("e", "a", 1e12, 1e5, 3.0, corpus_id=corpus)
    r2, t2 = trial_rows("e", "b", 1e12, 2e5, 3.5, status="stopped", stop_reason="asha",
                        steps=(1,), corpus_id=corpus)
    write(root, "s1", r1 + r2, [t1, t2])


def test_only_the_completed_trial_gives_a_budget_point_with_the_trainers_tokens(tmp_path):
    _two_trials(tmp_path)
    results = load_results(tmp_path)
    points = budget_points(results)
    assert list(points["trial_id"]) == ["a"]  # the stopped trial gives curves only
    s = Schedule()
    assert points["tokens"].iloc[0] == plan_steps(s, 1e12) * tokens_per_step(s)
    assert set(results.reports.loc[~results.reports["point"], "trial_id"]) == {"a", "b"}


def test_every_report_of_every_search_folder_is_loaded(tmp_path):
    _two_trials(tmp_path)
    r, t = trial_rows("f", "c", 1e12, 1e5, 3.0)
    write(tmp_path, "s2", r, [t])
    results = load_results(tmp_path)
    assert sorted(results.trials["trial_id"]) == ["a", "b", "c"]
    assert len(results.reports) == 3 + 1 + 3


def test_a_search_written_by_0_1_still_loads_and_answers_best():
    results = load_results(V1)
    assert (len(results.reports), len(results.trials), len(results.grid)) == (9, 3, 21)
    assert set(results.reports["schema_version"]) == {1}
    assert set(results.reports["search_id"]) == {"schema1:results_v1"}
    assert list(results.reports["point"]) == list(results.reports["completed"])
    out = subprocess.run(
        [sys.executable, "-m", "budgetune.cli", "best", "--budget", "2e11", "--results",
         str(V1), "--json"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["trial_id"] in set(results.trials["trial_id"])


def test_duplicate_keys_keep_the_newest_row(tmp_path):
    r, t = trial_rows("e", "a", 1e12, 1e5, 3.0)
    write(tmp_path, "s", r, [t])
    retried = [dict(row, val_loss=9.0) for row in r[1:]]  # a retry re-reports steps 2, 3
    with ResultsWriter(tmp_path, "s") as w:
        w.append("reports", retried)
    reports = read_table(tmp_path / "s", "reports")
    assert len(reports) == 3
    assert list(reports.sort_values("step")["val_loss"])[1:] == [9.0, 9.0]


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    with ResultsWriter(tmp_path, "s"):
        with pytest.raises(ResultsError, match="Another budgetune process is writing"):
            ResultsWriter(tmp_path, "s").lock()


def test_mixed_corpora_are_refused_unless_one_is_chosen(tmp_path):
    _two_trials(tmp_path / "x", corpus="c0")
    r, t = trial_rows("f", "z", 1e12, 1e5, 3.0, corpus_id="c1")
    write(tmp_path / "x", "s2", r, [t])
    with pytest.raises(ResultsError, match=r"mix corpora \['c0', 'c1'\].*--corpus-id"):
        load_results(tmp_path / "x")
    assert set(load_results(tmp_path / "x", corpus_id="c1").reports["trial_id"]) == {"z"}


def test_missing_directory_and_empty_tables_name_the_fix(tmp_path):
    with pytest.raises(ResultsError, match="does not exist; run `budgetune search"):
        load_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="holds no results"):
        load_results(tmp_path / "empty")


def test_a_file_that_is_not_parquet_is_named_in_the_error(tmp_path):
    _two_trials(tmp_path)
    bad = tmp_path / "s1" / "reports" / "part-99999999999999999999-0-000000.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(ResultsError, match="is not a readable Parquet file"):
        load_results(tmp_path)


def test_a_truncated_part_file_is_refused(tmp_path):
    _two_trials(tmp_path)
    part = part_files(tmp_path / "s1", "reports")[0]
    part.write_bytes(part.read_bytes()[:200])
    with pytest.raises(ResultsError, match="not a readable Parquet file"):
        load_results(tmp_path)


def test_unknown_missing_and_mistyped_columns_are_refused(tmp_path):
    _two_trials(tmp_path)
    part = part_files(tmp_path / "s1", "reports")[0]
    table = pq.read_table(part)
    pq.write_table(table.append_column("surprise", pa.array([1] * len(table))), part)
    with pytest.raises(ResultsError, match=r"unknown columns \['surprise'\]"):
        load_results(tmp_path)
    pq.write_table(table.drop_columns(["val_loss"]), part)
    with pytest.raises(ResultsError, match=r"missing \['val_loss'\]"):
        load_results(tmp_path)
    i = table.schema.get_field_index("val_loss")
    pq.write_table(table.set_column(i, "val_loss", pa.array(["x"] * len(table))), part)
    with pytest.raises(ResultsError, match="Column 'val_loss' .* has type string"):
        load_results(tmp_path)


def test_two_model_families_need_a_choice(tmp_path):
    r1, t1 = trial_rows("e", "a", 1e12, 1e5, 3.0)
    r2, t2 = trial_rows("e", "b", 1e12, 1e5, 3.0, schedule=Schedule(model="bert"))
    write(tmp_path, "s", r1 + r2, [t1, t2])
    results = load_results(tmp_path)
    with pytest.raises(ResultsError, match="pass --model"):
        results.for_model(None)
    assert list(results.for_model("bert").trials["trial_id"]) == ["b"]


def test_searches_from_before_whole_model_compression_are_never_analysed_with_newer_ones(
        tmp_path):
    """Schema 3 kept the token embedding fp32 in `compressed_bytes` and `val_loss_compressed`;
    schema 4 quantizes it: each loads alone, together they are refused in one line."""
    def schema(rows, version):
        return [{**row, "schema_version": version} for row in rows]

    r, t = trial_rows("e", "old", 1e12, 1e5, 3.0)
    write(tmp_path, "old", schema(r, 3), schema([t], 3))
    assert set(load_results(tmp_path).reports["schema_version"]) == {3}
    r, t = trial_rows("e", "new", 1e12, 1e5, 3.0)
    write(tmp_path, "new", r, [t])
    with pytest.raises(ResultsError, match="before whole-model compression"):
        load_results(tmp_path)
    assert set(load_results(tmp_path, name="new").reports["schema_version"]) == {4}
    assert set(load_results(tmp_path, name="old").reports["schema_version"]) == {3}
