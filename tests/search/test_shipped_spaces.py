"""Every space budgetune ships — the presets and the spaces the README shows — plans a dry run
and runs a real one-trial search. Each once crashed with a traceback (`Choice` handed to
`Schedule`) as soon as a space mixed ranges and choices."""

from __future__ import annotations

import pytest

from budgetune.flops import flops_per_step
from budgetune.results import read_table
from budgetune.search import SearchSpec, run_search
from budgetune.search._spec import MIN_STEPS, extreme_schedules
from budgetune.spaces import PRESETS, load_space
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
