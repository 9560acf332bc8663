"""Every space budgetune ships — the presets and the spaces the README shows — plans a dry run
and runs a real one-trial search. Each once crashed with a traceback (`Choice` handed to
`Schedule`) as soon as a space mixed ranges and choices."""

from __future__ import annotations

import pytest

from budgetune.flops import flops_per_step
from budgetune.results import read_table
from budgetune.search import DEFAULT_BUDGETS, SearchSpec, run_search
from budgetune.search._spec import MIN_STEPS, default_budgets, extreme_schedules
from budgetune.spaces import PRESETS, load_space
from budgetune.spaces._schedule import MIN_VOCAB
from tests.spaces.shipped import readme_spaces
from tests.test_bad_input import _cli


def test_the_readme_shows_at_least_one_space():
    assert readme_spaces()


@pytest.fixture(params=[*PRESETS, *(f"readme-{i}" for i in range(len(readme_spaces())))])
def space(request, tmp_path) -> str:
    """A preset's name, or the path of a README space written to a file."""
    if request.param in PRESETS:
        return request.param
    kind, text = readme_spaces()[int(request.param.split("-")[1])]
    path = tmp_path / f"readme.{kind}"
    path.write_text(text)
    return str(path)


def _smallest_budget(space: str) -> float:
    """The smallest budget that gives the space's dearest schedule its minimum steps."""
    _, dearest = extreme_schedules(load_space(space))
    return MIN_STEPS * flops_per_step(dearest) * 1.01


def test_a_space_plans_a_dry_run_with_and_without_a_budget(space, tmp_path):
    for budget in ([], ["--budget", f"{_smallest_budget(space):.4g}"]):
        code, stderr = _cli("search", "--space", space, "--dry-run", "--results",
                            str(tmp_path / "r"), *budget)
        assert code == 0, stderr
    assert not (tmp_path / "r").exists()


def test_the_extremes_are_the_real_corners():
    cheapest, dearest = extreme_schedules(load_space("paper"))
    assert (dearest.d_model, dearest.n_layers, dearest.model) == (512, 12, "bert")
    assert (cheapest.d_model, cheapest.n_layers) == (128, 6)


def test_a_space_runs_a_one_trial_search(space, tmp_path):
    """One real trial at the smallest budget the space allows. The paper and README spaces'
    largest models need 1e12–2e13 FLOPs: their trial is cut short by the FLOPs cap at its first
    report (at 2% of the budget), which still builds, trains and evaluates it."""
    budget = _smallest_budget(space)
    cut = {"grace_fraction": 0.02, "max_total_flops": 1.0} if budget > 2e11 else {}
    spec = SearchSpec(space=space, budgets=(budget,), num_samples=1, eval_tokens=1024,
                      results=str(tmp_path), name="one", **cut)
    run_search(spec, progress=lambda line: None)
    trials = read_table(tmp_path / "one", "trials")
    assert len(trials) == 1
    assert trials["status"].iloc[0] == ("stopped" if cut else "done")


def test_tiny_plans_budgets_near_1e8_and_the_demo_spaces_keep_theirs():
    """`--space tiny` without --budget once planned the demo's 2e11–1.8e12: 16,000-step trials
    for a space made for scale tests near 1e8 FLOPs."""
    assert default_budgets("tiny") == (2e8, 6e8, 1.8e9)
    assert default_budgets("default") == default_budgets("quick") == DEFAULT_BUDGETS


def test_the_vocabulary_floor_is_the_bytes_and_the_special_tokens():
    from budgetune.trainables._tokenizer import SPECIAL_TOKENS

    assert MIN_VOCAB == 256 + len(SPECIAL_TOKENS)
    assert load_space("tiny").dims["vocab_size"] >= MIN_VOCAB


def test_a_search_whose_every_trial_failed_says_so_and_exits_1(tmp_path, monkeypatch, capsys):
    """A real failure in every trial (the cache is a file, so no trial can tokenize) once ended
    with exit status 0 and "no summary: ... hold no reports yet"."""
    from budgetune.cli import main

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("BUDGETUNE_CACHE", str(blocker))
    code = main(["search", "--space", "tiny", "--budget", "2e8", "--num-samples", "1",
                 "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1
    assert "no trial reported and 1 failed" in err and "error.txt" in err
