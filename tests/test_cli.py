"""The command line as users meet it: a real subprocess, real output, real exit codes."""

import json
import subprocess
import sys

import pytest

TINY = ["--d-model", "32", "--n-layers", "2", "--n-heads", "2", "--seq-len", "32",
        "--batch-size", "8", "--eval-tokens", "512", "--n-reports", "2"]


def _budgetune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "budgetune.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_train_json_prints_one_object_per_report_with_schedule_and_provenance():
    out = _budgetune("train", *TINY, "--budget", "6e9", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 2 and rows[-1]["completed"]
    assert rows[0]["lr"] == 3e-3 and rows[0]["d_model"] == 32 and rows[0]["budget_flops"] == 6e9
    assert len(rows[0]["corpus_id"]) == 16 and rows[-1]["train_flops"] <= 6e9


def test_train_without_json_shows_progress():
    out = _budgetune("train", *TINY, "--budget", "6e9")
    assert out.returncode == 0, out.stderr
    assert "planned" in out.stdout and "val_loss" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--budget", "-5"], "`budget` is -5.0, but must be > 0"),
    (["train", "--budget", "nan"], "`budget` is nan"),
    (["train", "--d-model", "60", "--n-heads", "7"], "`d_model` is 60"),
    (["train", "--share-fraction", "1.5"], "`share_fraction` is 1.5"),
    (["train", "--d-model", "abc"], "invalid int value: 'abc'"),
    (["train", "--no-such-flag"], "unrecognized arguments"),
    (["train", "--corpus", "/no/such/dir"], "does not exist"),
])
def test_bad_input_gets_one_line_and_status_2(args, message):
    out = _budgetune(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_train_with_compression_prints_reports_and_the_grid_as_json():
    out = _budgetune("train", *TINY, "--budget", "1.2e10", "--prune-sparsity", "0.75",
                     "--quant-bits", "4", "--json", "--grid")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    reports = [r for r in rows if r["table"] == "reports"]
    grid = [r for r in rows if r["table"] == "grid"]
    assert abs(reports[-1]["sparsity"] - 0.75) < 0.01
    assert reports[-1]["compressed_bytes"] < 4 * reports[-1]["n_params"]
    assert {(g["sparsity"], g["quant_bits"]) for g in grid} == {
        (s, b) for s in (0.75, 0.9) for b in (32, 8, 4)}
