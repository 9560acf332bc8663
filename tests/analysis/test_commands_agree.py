"""Item 10: one definition of "best", used by `search`'s summary, `status`, `best` and
`report`, under the search's own size limit, which each of them prints."""

import json

import pytest

from budgetune._cli_search import _print_summary
from budgetune.cli import main
from budgetune.results import SPEC_FILE
from budgetune.search._spec import SearchSpec
from tests.analysis.synthetic import hand_made_rows, write


@pytest.fixture
def search(tmp_path):
    """A search run with --max-mb 1.5: the large model wins only compressed to 4 bits."""
    spec = SearchSpec(space="quick", budgets=(1e12, 1e13), max_mb=1.5, lr_schedule="cosine",
                      results=str(tmp_path), name="demo")
    write(tmp_path, "demo", *hand_made_rows())
    (tmp_path / "demo" / SPEC_FILE).write_text(json.dumps(spec.to_dict()))
    return spec


def _run(capsys, *argv):
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_summary_status_best_and_report_agree_under_the_searchs_size_limit(search, capsys):
    root = search.results
    _print_summary(search)
    summary = capsys.readouterr().out
    status = _run(capsys, "status", "--results", root)
    best = _run(capsys, "best", "--budget", "1e12", "--results", root)
    best_json = json.loads(_run(capsys, "best", "--budget", "1e12", "--results", root,
                                "--json"))
    _run(capsys, "report", "--results", root)
    report = (search.folder().parent / "report" / "report.md").read_text()
    # The winner at 1e12 within 1.5 MB: trial "large" pruned to 0.75 at 4 bits, loss 3.8.
    assert (best_json["trial_id"], best_json["sparsity"], best_json["quant_bits"]) == (
        "large", 0.75, 4)
    assert best_json["max_bytes"] == 1.5e6
    line = "      1e+12     256        4     0.75    4   3.8000"
    for text in (summary, status, report):
        assert line in text, text
    assert "sparsity 0.75 at 4 bits" in best and "3.8000 nats" in best
    for text in (summary, status, best, report):
        assert "1.5 MB (the search's --max-mb)" in text, text
    status_json = json.loads(_run(capsys, "status", "--results", root, "--json"))
    (b12,) = [b for b in status_json[0]["best"] if b["budget_flops"] == 1e12]
    assert (b12["trial_id"], b12["quant_bits"], b12["loss_mean"]) == ("large", 4, 3.8)


def test_best_flags_override_the_searchs_size_limit(search, capsys):
    root = search.results
    free = json.loads(_run(capsys, "best", "--budget", "1e12", "--results", root,
                           "--no-size-limit", "--json"))
    assert (free["trial_id"], free["quant_bits"], free["max_bytes"]) == ("large", 32, None)
    assert free["size_limit"] == "none (--no-size-limit)"
    tight = json.loads(_run(capsys, "best", "--budget", "1e12", "--results", root,
                            "--max-mb", "0.5", "--json"))
    assert (tight["trial_id"], tight["size_limit"]) == ("small", "0.5 MB (--max-mb)")


def test_results_does_not_import_analysis():
    import subprocess
    import sys

    code = ("import sys, budgetune.results; "
            "print(any(m.startswith('budgetune.analysis') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_summary_of_a_search_without_a_budget_point_says_so(tmp_path, capsys):
    from tests.analysis.synthetic import trial_rows

    spec = SearchSpec(space="quick", budgets=(1e12,), results=str(tmp_path), name="cut")
    reports, trial = trial_rows("e", "b", 1e12, 2e5, 3.5, status="stopped", stop_reason="cap",
                                steps=(1,))
    write(tmp_path, "cut", reports, [trial])
    _print_summary(spec)  # the cap stopped every trial before its budget
    assert "no summary: The results hold no budget point yet" in capsys.readouterr().out
