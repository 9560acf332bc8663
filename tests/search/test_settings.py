"""A search's settings: search.json, its search_id, --resume's refusals, the flags' help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from budgetune.cli import build_parser
from budgetune.results import read_table
from budgetune.search._search import write_settings
from budgetune.search._spec import SearchSpec
from tests.analysis.synthetic import trial_rows, write
from tests.test_bad_input import _assert_one_line_refusal, _cli

CLI = [sys.executable, "-m", "budgetune.cli"]


@pytest.mark.parametrize("budgets", [["1e12", "1e12"], ["1e12", "1.0001e12", "3e12"]])
def test_a_budget_given_twice_is_refused_in_one_line(budgets, tmp_path):
    code, stderr = _cli("search", "--space", "quick", "--budget", *budgets, "--dry-run",
                        "--results", str(tmp_path))
    _assert_one_line_refusal(code, stderr)
    assert "`budgets`" in stderr and "distinct" in stderr


@pytest.mark.parametrize("flags", [["--num-samples", "3"], ["--no-size-limit"],
                                   ["--space", "quick", "--budget", "1e11"]])
def test_resume_refuses_settings_in_one_line(flags, tmp_path):
    code, stderr = _cli("search", "--resume", *flags, "--results", str(tmp_path))
    _assert_one_line_refusal(code, stderr)
    assert "--resume continues a search with its saved settings" in stderr
    for flag in flags:
        if flag.startswith("--"):
            assert flag in stderr
    assert not any(tmp_path.iterdir())


def test_resume_keeps_address_results_and_name_allowed(tmp_path):
    code, stderr = _cli("search", "--resume", "--address", "auto", "--results", str(tmp_path),
                        "--name", "x")
    _assert_one_line_refusal(code, stderr)
    assert "There is no search to resume" in stderr  # not refused for its flags


def _search_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["search"]


def test_every_search_flag_has_help_that_shows_its_default():
    parser = _search_parser()
    formatter = parser._get_formatter()
    checked = 0
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "resume", "dry_run"):
            continue
        text = formatter._expand_help(action) if action.help else ""
        assert "default" in text, action.option_strings
        if action.default not in (None, False):
            forms = [str(action.default)]
            if isinstance(action.default, float):
                forms += [f"{action.default:g}", f"{action.default:.3g}"]
            assert any(form in text for form in forms), text
        checked += 1
    assert checked >= 18
    out = subprocess.run([*CLI, "search", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.count("default") >= checked


def _stale(folder, **settings):
    folder.mkdir(parents=True)
    (folder / "search.json").write_text(json.dumps({"space": "default", "num_samples": 5,
                                                    "search_id": "stale0000000", **settings}))


def test_fresh_settings_replace_what_a_failed_first_attempt_left(tmp_path):
    spec = SearchSpec(space="quick", budgets=(3e10,), num_samples=2, results=str(tmp_path),
                      name="s")
    _stale(spec.folder())
    search_id = write_settings(spec)
    saved = json.loads((spec.folder() / "search.json").read_text())
    assert saved["search_id"] == search_id != "stale0000000"
    assert (saved["space"], saved["num_samples"], saved["budgets"]) == ("quick", 2, [3e10])
    other = SearchSpec(space="quick", budgets=(3e10,), results=str(tmp_path), name="t")
    assert write_settings(other) != search_id  # two searches never share an id


def test_the_search_id_is_kept_when_its_rows_are_in_the_tables(tmp_path):
    spec = SearchSpec(space="quick", budgets=(3e10,), results=str(tmp_path), name="s")
    _stale(spec.folder())
    reports, trial = trial_rows("budget-3e+10", "a", 1e12, 1e5, 3.0)  # any rows of its id
    new = {"search_id": "stale0000000", "spent_flops": 3e10}
    write(tmp_path, "s", [{**r, **new, "point": r["completed"], "eval_tokens": 1024,
                           "val_loss_se": 0.01} for r in reports], [{**trial, **new}])
    assert write_settings(spec) == "stale0000000"


@pytest.mark.slow  # two real searches: ~1-2 min on 2 shared cores
def test_a_search_after_a_failed_first_attempt_runs_with_its_own_settings(tmp_path):
    """A first attempt died before Tune started: its search.json (other settings) and an empty
    tune/ stay. The next `search` runs, and --resume continues, with the new settings."""
    folder = tmp_path / "s"
    _stale(folder, budgets=[2e11])
    (folder / "tune").mkdir()
    base = ["--results", str(tmp_path), "--name", "s"]
    out = subprocess.run([*CLI, "search", "--space", "quick", "--budget", "3e10",
                          "--num-samples", "1", "--eval-tokens", "1024", *base],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    saved = json.loads((folder / "search.json").read_text())
    assert (saved["space"], saved["num_samples"], saved["budgets"]) == ("quick", 1, [3e10])
    assert saved["search_id"] != "stale0000000"
    assert set(read_table(folder, "trials")["search_id"]) == {saved["search_id"]}
    again = subprocess.run([*CLI, "search", "--resume", *base], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((folder / "search.json").read_text())["search_id"] == saved["search_id"]
    trials = read_table(folder, "trials")
    assert len(trials) == 1 and set(trials["search_id"]) == {saved["search_id"]}


def test_a_search_begun_by_0_1_keeps_its_rows_id_when_resumed(tmp_path):
    import shutil
    from pathlib import Path

    from budgetune.search._search import search_id_of

    old = tmp_path / "v1"
    shutil.copytree(Path(__file__).parents[1] / "data" / "results_v1", old)
    assert search_id_of(old) == "schema1:v1"  # not a new id beside its 0.1 rows


def test_several_budgets_default_to_one_wsd_search_and_one_budget_to_cosine():
    many = SearchSpec(space="quick", budgets=(1e11, 3e11))
    one = SearchSpec(space="quick", budgets=(1e11,))
    assert (many.lr_schedule, many.num_samples) == ("wsd", 12)  # 6 per budget, one experiment
    assert (one.lr_schedule, one.num_samples) == ("cosine", 6)
    forced = SearchSpec(space="quick", budgets=(1e11, 3e11), lr_schedule="cosine")
    assert (forced.lr_schedule, forced.num_samples) == ("cosine", 6)  # per budget
    assert many.experiment(1e11) == many.experiment(3e11) == "wsd-3e+11"
    # the size limit: the embedded default's own, any other space the general one
    assert SearchSpec().max_mb == 0.4 and SearchSpec().lr_schedule == "wsd"
    assert many.max_mb == 3.0
    args = build_parser().parse_args(["search"])
    from budgetune._cli_search import _spec_from_args

    spec = _spec_from_args(args)
    assert (spec.space, spec.lr_schedule, spec.num_samples, spec.max_mb, spec.repeats) == (
        "default", "wsd", 18, 0.4, 1)


def test_a_search_saved_before_wsd_resumes_as_the_cosine_search_it_was(tmp_path):
    """search.json of budgetune 0.2 has no lr_schedule: its trials were cosine, one
    experiment per budget; --resume must not turn it into a WSD search."""
    from budgetune._cli_search import _saved_spec

    folder = tmp_path / "old"
    folder.mkdir()
    saved = SearchSpec(space="quick", budgets=(1e11, 3e11), lr_schedule="cosine").to_dict()
    del saved["lr_schedule"]
    (folder / "search.json").write_text(json.dumps(saved))
    args = build_parser().parse_args(["search", "--resume", "--results", str(tmp_path),
                                      "--name", "old"])
    spec = _saved_spec(args)
    assert spec.lr_schedule == "cosine" and spec.num_samples == 6
    assert spec.experiment(1e11) == "budget-1e+11"


def test_resume_continues_the_search_where_it_was_found_not_where_it_was_first_written(
        tmp_path):
    from budgetune._cli_search import _saved_spec

    first = SearchSpec(space="quick", budgets=(1e11,), results="/elsewhere", name="first")
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "search.json").write_text(json.dumps(first.to_dict()))
    args = build_parser().parse_args(["search", "--resume", "--results", str(tmp_path),
                                      "--name", "moved"])
    spec = _saved_spec(args)
    assert spec.folder() == moved and spec.budgets == (1e11,)


def test_no_size_limit_and_a_size_limit_together_are_refused_in_one_line(tmp_path):
    code, stderr = _cli("search", "--no-size-limit", "--max-mb", "2", "--dry-run",
                        "--results", str(tmp_path))
    _assert_one_line_refusal(code, stderr)
    assert "--no-size-limit and --max-mb 2 contradict" in stderr


@pytest.mark.parametrize("name", ["grid", "reports", "trials"])
def test_a_search_named_like_a_table_is_refused_in_one_line(name, tmp_path):
    """A folder results/grid made results/ itself read as one search: load_results(root,
    "grid") then found no search of that name."""
    code, stderr = _cli("search", "--name", name, "--dry-run", "--results", str(tmp_path))
    _assert_one_line_refusal(code, stderr)
    assert f"`name` is {name!r}" in stderr and "tables' names" in stderr


def test_resume_refuses_a_search_written_before_whole_model_compression(tmp_path):
    """Its rows count the token embedding fp32 (schema 3): a resumed run would add rows that
    quantize it, which no analysis may mix. One line, exit 2, nothing written."""
    spec = SearchSpec(space="quick", budgets=(1e11,), results=str(tmp_path), name="old")
    write_settings(spec)
    (spec.folder() / "tune").mkdir()
    r, t = trial_rows("e", "a", 1e11, 1e5, 3.0)
    write(tmp_path, "old", [{**row, "schema_version": 3} for row in r],
          [{**t, "schema_version": 3}])
    before = sorted(p.name for p in (spec.folder() / "reports").iterdir())
    code, stderr = _cli("search", "--resume", "--results", str(tmp_path), "--name", "old")
    _assert_one_line_refusal(code, stderr)
    assert "before whole-model compression" in stderr and "--name" in stderr
    assert sorted(p.name for p in (spec.folder() / "reports").iterdir()) == before
