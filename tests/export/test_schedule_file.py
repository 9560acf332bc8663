"""schedule.yaml: written and read back; every bad file is one line and exit status 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from budgetune.export import ScheduleFile, read_schedule_file, write_schedule_file
from budgetune.spaces import Schedule

RUN = [sys.executable, "-m", "budgetune.cli"]


def _file(tmp_path, **changes):
    sf = ScheduleFile(schedule=Schedule(d_model=16, n_layers=2, lr_schedule="wsd").to_dict(),
                      budget_flops=2e10, main_line_flops=6e10, eval_tokens=1024,
                      corpus_id="abc", threads=1, val_loss=5.0)
    path = tmp_path / "schedule.yaml"
    write_schedule_file(path, sf)
    if changes:
        path.write_text(path.read_text().replace(*changes["replace"]))
    return sf, path


def test_a_schedule_file_round_trips(tmp_path):
    sf, path = _file(tmp_path)
    assert read_schedule_file(path) == sf
    assert "budgetune train --schedule schedule.yaml" in path.read_text()


def test_numbers_written_as_yaml_reads_strings_are_numbers(tmp_path):
    """YAML 1.1 reads 6e10 (no dot) as a string: a hand-edited file still means the number."""
    sf, path = _file(tmp_path, replace=("main_line_flops: 60000000000.0",
                                        "main_line_flops: 6e10"))
    assert read_schedule_file(path).main_line_flops == 6e10


@pytest.mark.parametrize("replace, words", [
    (("d_model: 16", "d_model: 15"), "d_model"),  # not divisible by n_heads
    (("d_model: 16", "width: 16"), "unknown fields ['width']"),
    (("budget_flops: 20000000000.0", "budget_flops: -1"), "budget"),
    (("main_line_flops: 60000000000.0", "main_line_flops: 1.0"), "main_line_flops"),
    (("format: budgetune-schedule-1", "format: other"), "is not a budgetune-schedule-1"),
    (("threads: 1", "threads: 1\nextra: 2"), "the keys ['extra'] are unknown"),
    (("budget_flops: 20000000000.0", "budget_flops: abc"), "`budget_flops` is 'abc', but must"),
    (("budget_flops: 20000000000.0\n", ""), "`budget_flops` is missing"),
    (("threads: 1", "threads: abc"), "`threads` is 'abc', but must be an int"),
    (("threads: 1", "threads: 0"), "`threads` is 0, but must be >= 1"),
    (("  d_model: 16", "  d_model: sixteen"), "`schedule.d_model` is 'sixteen'"),
    (("schedule:", "schedule: [\n"), "not valid YAML"),
])
def test_a_bad_schedule_file_is_one_line_and_exit_2(tmp_path, replace, words):
    _, path = _file(tmp_path, replace=replace)
    r = subprocess.run([*RUN, "train", "--schedule", str(path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and words in r.stderr, r.stderr


def test_schedule_flags_beside_a_schedule_file_are_refused(tmp_path):
    _, path = _file(tmp_path)
    r = subprocess.run([*RUN, "train", "--schedule", str(path), "--d-model", "64"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "drop --d-model" in r.stderr, r.stderr
    r = subprocess.run([*RUN, "train", "--schedule", str(tmp_path / "none.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "does not exist" in r.stderr, r.stderr


def test_export_refuses_a_point_searched_before_whole_model_compression(tmp_path):
    """Its size and compressed loss kept the token embedding fp32 (schema <= 3): the export,
    whole-model compressed, could never match them."""
    from tests.test_bad_input import _assert_one_line_refusal, _cli

    v1 = Path(__file__).parents[1] / "data" / "results_v1"  # a search written by 0.1
    code, stderr = _cli("export", "--budget", "2e11", "--results", str(v1), "--out",
                        str(tmp_path / "out"))
    _assert_one_line_refusal(code, stderr)
    assert "before whole-model compression" in stderr and not (tmp_path / "out").exists()
